//! Multi-process tests: the city spread over `govfusion serve` processes with their own roles —
//! intake, governance, two instances of the market department, fire with the street office —
//! sharing one Kafka-protocol broker, while processes are killed, stopped and restarted and the
//! broker freezes or restarts. Every case must complete exactly once.
//!
//! They need a real broker (`GOVFUSION_TEST_KAFKA=host:port`), and for the broker faults a
//! tansu binary the test starts itself (`GOVFUSION_TEST_TANSU`, and
//! `GOVFUSION_TEST_DURABLE_TANSU` for one built with sqlite storage), so every test here is
//! `#[ignore = "needs …"]`: a plain `cargo test` reports them as ignored, and
//! `cargo test -- --include-ignored` runs them and fails one whose variable is missing.
//! `.ci/run` provides all three; the durable-broker test runs within the limits of tansu
//! 0.6.0's sqlite engine (README, "Limits of this version").
//!
//! * [`common`] — shared by every test binary: the broker variables, waiting, raw rdkafka
//!   clients, "exactly once" on the bus.
//! * [`harness`] — processes, the city, and what "exactly once" means to the applicant.
//! * [`kills`] — kill -9 and SIGTERM of each role mid-run.
//! * [`broker`] — the broker frozen past the clients' timeouts, and a durable broker restarted.
//! * [`stuck`] — a department killed with collaborations open; an application too large for
//!   the bus (issue 12, items 1 and 2).
//! * [`intakes`] — two intake processes on one PostgreSQL case repository (issue 14, item 3).

#[path = "../common/mod.rs"]
mod common;
use common::{env, raw};
// A fresh PostgreSQL database for the test of several intake processes; the rest of the
// module (its SQLite half, the suite of both engines) serves the repository's own tests.
#[allow(dead_code, unused_macros)]
#[path = "../common/test_store.rs"]
mod test_store;

mod broker;
mod harness;
mod intakes;
mod kills;
mod stuck;

/// How long a wait looks before the test fails. A bound on waiting, not a performance claim:
/// a restarted process joins its consumer groups in a few seconds, and clients that lost the
/// broker reconnect with a backoff of up to 10 s.
const POLL_FOR: std::time::Duration = std::time::Duration::from_secs(90);
