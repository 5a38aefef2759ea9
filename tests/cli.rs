//! The `govfusion` command as an operator runs it.

use govfusion::settings::{Settings, DEFAULT_CONFIG};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built binary with `args` and `env` (name, value) pairs.
fn govfusion(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_govfusion"));
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .output()
        .expect("Failed to run the govfusion binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A config file in the temp dir, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    /// Writes `text` to a file named after the test and this process.
    fn new(test: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("govfusion-cli-{}-{test}.toml", std::process::id()));
        std::fs::write(&path, text).expect("Failed to write the temp config");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temp dir paths are UTF-8 here")
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The default config with the first `from` replaced by `to`.
fn default_with(from: &str, to: &str) -> String {
    assert!(
        DEFAULT_CONFIG.contains(from),
        "fixture `{from}` not in the default config"
    );
    DEFAULT_CONFIG.replacen(from, to, 1)
}

fn default_settings() -> Settings {
    Settings::from_toml(DEFAULT_CONFIG, "default", false).expect("the default config is valid")
}

#[test]
fn openapi_prints_the_document_committed_in_docs() {
    // Act
    let output = govfusion(&["openapi"], &[]);

    // Assert
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"),
    )
    .expect("docs/openapi.json is committed");
    assert!(
        stdout(&output) == committed,
        "docs/openapi.json is not what `govfusion openapi` prints: run `{}`",
        govfusion::http::openapi::REGENERATE
    );
}

#[test]
fn check_config_accepts_the_built_in_default() {
    let output = govfusion(&["check-config"], &[]);

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("config OK"), "{}", stdout(&output));
}

/// Runs `check-config` on the default config with each `(from, to)` edit made once; asserts
/// that it fails and names the file; returns what it printed on stderr.
fn check_config_refuses(test: &str, edits: &[(&str, &str)]) -> String {
    let text = edits
        .iter()
        .fold(DEFAULT_CONFIG.to_owned(), |text, (from, to)| {
            assert!(
                text.contains(from),
                "fixture `{from}` not in the default config"
            );
            text.replacen(from, to, 1)
        });
    let config = TempConfig::new(test, &text);
    let output = govfusion(&["check-config", "--config", config.path()], &[]);
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "an invalid config passed: {}",
        stdout(&output)
    );
    assert!(err.contains(config.path()), "no file path in: {err}");
    err
}

/// Where the first matter handled by `market` is, and the edit that names a department that
/// does not exist in its place.
fn unknown_department() -> (usize, (&'static str, &'static str)) {
    let index = default_settings()
        .matters
        .iter()
        .position(|m| m.department == "market")
        .expect("a matter of market");
    (
        index,
        ("department = \"market\"", "department = \"nonexistent\""),
    )
}

/// Where the first street of 江北区 is, and the edit that names a district that does not exist
/// in its place.
fn unknown_district() -> (usize, (&'static str, &'static str)) {
    let index = default_settings()
        .governance
        .streets
        .iter()
        .position(|s| s.district == "500105")
        .expect("a street of 500105");
    (index, ("district = \"500105\"", "district = \"599999\""))
}

#[test]
fn check_config_names_file_key_and_value_of_an_unknown_department() {
    let (index, edit) = unknown_department();

    let err = check_config_refuses("unknown-department", &[edit]);

    assert!(
        err.contains(&format!("matters[{index}].department")),
        "no key in: {err}"
    );
    assert!(err.contains("nonexistent"), "no value in: {err}");
}

#[test]
fn check_config_refuses_a_street_in_an_unknown_district() {
    let (index, edit) = unknown_district();

    let err = check_config_refuses("unknown-district", &[edit]);

    assert!(
        err.contains(&format!("governance.streets[{index}].district")),
        "no key in: {err}"
    );
    assert!(err.contains("599999"), "no value in: {err}");
}

#[test]
fn check_config_reports_every_mistake_of_a_file_at_once() {
    // Arrange: two mistakes in one file.
    let (matter, department) = unknown_department();
    let (street, district) = unknown_district();

    // Act
    let err = check_config_refuses("two-mistakes", &[department, district]);

    // Assert: one `error:` line for each.
    let errors: Vec<_> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{err}");
    for key in [
        format!("matters[{matter}].department"),
        format!("governance.streets[{street}].district"),
    ] {
        assert!(
            errors.iter().any(|l| l.contains(&key)),
            "no `{key}` in: {err}"
        );
    }
}

#[test]
fn check_config_explains_a_missing_file() {
    let path = std::env::temp_dir().join(format!(
        "govfusion-cli-{}-does-not-exist.toml",
        std::process::id()
    ));
    let path = path.to_str().unwrap();

    let output = govfusion(&["check-config", "--config", path], &[]);

    let err = stderr(&output);
    assert!(!output.status.success(), "a missing file passed");
    assert!(err.contains(path), "no file path in: {err}");
    assert!(err.contains("cannot read the file"), "unclear error: {err}");
}

#[test]
fn an_environment_override_is_validated_too() {
    let output = govfusion(&["check-config"], &[("GOVFUSION__BUS__PARTITIONS", "0")]);

    let err = stderr(&output);
    assert!(!output.status.success(), "zero partitions passed");
    assert!(err.contains("bus.partitions"), "no key in: {err}");
}

#[test]
fn check_config_refuses_a_key_of_the_wrong_length_and_an_unknown_current_key() {
    let err = check_config_refuses(
        "crypto",
        &[
            ("current = \"dev\"", "current = \"2027\""),
            (
                "key = \"rleeFG4SHsD/gdGxiQEcfOrMIfHlV1KZqxN0Jlg7hwc=\"",
                "key = \"c2hvcnQ=\"",
            ),
        ],
    );

    assert!(err.contains("crypto.keys[0].key"), "{err}");
    assert!(err.contains("AES-256 needs 32"), "{err}");
    assert!(err.contains("crypto.current = \"2027\""), "{err}");
    assert!(
        !err.contains("c2hvcnQ="),
        "the key itself is never shown: {err}"
    );
}

#[test]
fn a_key_read_from_a_variable_is_checked_too() {
    let config = TempConfig::new(
        "crypto-env",
        &default_with(
            "key = \"rleeFG4SHsD/gdGxiQEcfOrMIfHlV1KZqxN0Jlg7hwc=\"",
            "key_env = \"GOVFUSION_TEST_CLI_KEY\"",
        ),
    );

    let good = govfusion(
        &["check-config", "--config", config.path()],
        &[(
            "GOVFUSION_TEST_CLI_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )],
    );
    let bad = govfusion(
        &["check-config", "--config", config.path()],
        &[("GOVFUSION_TEST_CLI_KEY", "not base64")],
    );

    assert!(good.status.success(), "{}", stderr(&good));
    assert!(!bad.status.success(), "a garbled key passed");
    let err = stderr(&bad);
    assert!(err.contains("crypto.keys[0].key_env"), "{err}");
    assert!(err.contains("is not standard base64"), "{err}");
}

/// The default config with `line` added to `[bus.kafka]`, before its options table.
fn with_kafka_line(line: &str) -> String {
    default_with(
        "\n[bus.kafka.options]",
        &format!("\n{line}\n\n[bus.kafka.options]"),
    )
}

#[test]
fn the_sasl_password_can_come_from_a_variable_and_a_missing_one_is_named() {
    let config = TempConfig::new(
        "sasl-env",
        &with_kafka_line("sasl_password_env = \"GOVFUSION_TEST_CLI_SASL\""),
    );

    let good = govfusion(
        &["check-config", "--config", config.path()],
        &[("GOVFUSION_TEST_CLI_SASL", "kafka-pass-from-env")],
    );
    let missing = govfusion(&["check-config", "--config", config.path()], &[]);

    assert!(good.status.success(), "{}", stderr(&good));
    assert!(!missing.status.success(), "an unset variable passed");
    let err = stderr(&missing);
    assert!(
        err.contains("bus.kafka.sasl_password_env = \"GOVFUSION_TEST_CLI_SASL\""),
        "{err}"
    );
    assert!(
        err.contains("cannot read the environment variable"),
        "{err}"
    );
}

#[test]
fn the_sasl_password_can_come_from_a_file_and_two_sources_are_refused_unshown() {
    let secret = TempConfig::new("sasl-password", "kafka-pass-from-file\n");
    let from_file = TempConfig::new(
        "sasl-file",
        &with_kafka_line(&format!("sasl_password_file = {:?}", secret.path())),
    );
    let both = TempConfig::new(
        "sasl-both",
        &default_with(
            "\n[bus.kafka.options]",
            &format!(
                "\nsasl_password_file = {:?}\n\n[bus.kafka.options]\n\
                 \"sasl.password\" = \"inline-kafka-pass\"",
                secret.path()
            ),
        ),
    );

    let good = govfusion(&["check-config", "--config", from_file.path()], &[]);
    let refused = govfusion(&["check-config", "--config", both.path()], &[]);

    assert!(good.status.success(), "{}", stderr(&good));
    assert!(!refused.status.success(), "two sources passed");
    let err = stderr(&refused);
    assert!(err.contains("bus.kafka = "), "{err}");
    assert!(err.contains("at most one"), "{err}");
    for output in [&good, &refused] {
        let shown = format!("{}{}", stdout(output), stderr(output));
        for password in ["kafka-pass-from-file", "inline-kafka-pass"] {
            assert!(!shown.contains(password), "{password} shown: {shown}");
        }
    }
}

#[test]
fn simulate_completes_its_cases_and_prints_a_summary() {
    let output = govfusion(&["simulate", "--cases", "50"], &[]);

    let out = stdout(&output);
    assert!(
        output.status.success(),
        "simulate failed: {out}\n{}",
        stderr(&output)
    );
    for prefix in ["cases", "throughput", "latency"] {
        assert!(
            out.lines().any(|line| line.starts_with(prefix)),
            "no `{prefix}` line in:\n{out}"
        );
    }
}

#[test]
fn the_memory_benches_print_their_readings_also_when_ending_with_the_city_running() {
    let memory = [("GOVFUSION__BUS__KIND", "memory")];
    for args in [
        &["bench", "--resident", "--cases", "40", "--exit-holding"][..],
        &["bench", "--completed", "--cases", "40", "--exit-holding"][..],
        &["bench", "--resident", "--cases", "40"][..],
    ] {
        let output = govfusion(args, &memory);

        let out = stdout(&output);
        assert!(
            output.status.success(),
            "{args:?} failed: {out}\n{}",
            stderr(&output)
        );
        let reading = if args.contains(&"--resident") {
            "per case"
        } else {
            "settled"
        };
        assert!(
            out.lines().any(|line| line.starts_with(reading)),
            "no `{reading}` line from {args:?} in:\n{out}"
        );
    }
}

#[test]
fn simulate_plays_an_external_department_over_the_bus() {
    // Arrange: the fire brigade, a collaborator of four of the six collaborative matters, is
    // played by an outside system in this city.
    let config = TempConfig::new(
        "external-fire",
        &default_with(
            "code = \"fire\"\nname = \"消防救援支队\"\ntier = \"district\"\nmode = \"auto\"",
            "code = \"fire\"\nname = \"消防救援支队\"\ntier = \"district\"\nmode = \"auto\"\nexternal = true",
        ),
    );

    // Act: every case needs collaboration.
    let output = govfusion(
        &[
            "simulate",
            "--cases",
            "50",
            "--collaboration-ratio",
            "1.0",
            "--config",
            config.path(),
        ],
        &[("GOVFUSION__BUS__KIND", "memory")],
    );

    // Assert: every case completed, and the summary says who played the fire brigade.
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "simulate failed: {out}\n{}",
        stderr(&output)
    );
    assert!(
        out.lines()
            .any(|line| line.starts_with("external") && line.contains("fire")),
        "the summary does not name the external department it played:\n{out}"
    );
}

#[test]
fn a_config_that_names_no_token_keys_is_refused_and_says_why() {
    // The operator removed the development setting and named no identity provider.
    let err = check_config_refuses(
        "no-token-keys",
        &[("\ndevelopment_keys = true", "\ndevelopment_keys = false")],
    );

    assert!(err.contains("auth = \"\""), "{err}");
    assert!(err.contains("auth.jwks_url"), "{err}");
    assert!(err.contains("anyone who can read that file"), "{err}");
}

#[test]
fn token_mints_a_development_token_the_service_accepts_and_refuses_a_scope_the_city_lacks() {
    let dir = std::env::temp_dir().join(format!("govfusion-cli-token-{}", std::process::id()));
    let key_file = dir.join("key.pem");
    let key_file = key_file.to_str().expect("temp dir paths are UTF-8 here");
    let env = [("GOVFUSION__AUTH__DEVELOPMENT_KEY_FILE", key_file)];

    let minted = govfusion(
        &[
            "token",
            "--role",
            "officer",
            "--department",
            "market",
            "--sub",
            "li",
            "--name",
            "李四",
        ],
        &env,
    );
    let unknown = govfusion(
        &[
            "token",
            "--role",
            "officer",
            "--department",
            "markt",
            "--sub",
            "li",
        ],
        &env,
    );
    let unscoped = govfusion(&["token", "--role", "dispatcher", "--sub", "li"], &env);

    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted).trim().to_owned();
    let key = govfusion::auth::development::DevelopmentKey::load_or_create(key_file.as_ref())
        .expect("the key the command made");
    let set = jsonwebtoken::jwk::JwkSet {
        keys: vec![key.public_jwk().expect("a public key")],
    };
    let settings = default_settings();
    let authenticator = govfusion::auth::Authenticator::trusting(
        &set,
        &settings.auth.issuer,
        &settings.auth.audience,
    )
    .expect("a usable key");
    let principal = actix_rt::System::new()
        .block_on(authenticator.verify(&token))
        .expect("the service takes the token");
    assert_eq!(principal.subject, "li");
    assert_eq!(principal.name, "李四");
    assert_eq!(
        principal.grant,
        govfusion::auth::Grant::Officer("market".into())
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no department `markt`"),
        "{}",
        stderr(&unknown)
    );
    assert!(!unscoped.status.success());
    assert!(
        stderr(&unscoped).contains("`centre`"),
        "{}",
        stderr(&unscoped)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_is_refused_where_an_identity_provider_signs_tokens() {
    let text = default_with(
        "\ndevelopment_keys = true",
        "\ndevelopment_keys = false\njwks_file = \"/etc/govfusion/jwks.json\"",
    );
    let config = TempConfig::new("token-idp", &text);

    let output = govfusion(
        &[
            "token",
            "--role",
            "supervisor",
            "--sub",
            "x",
            "--config",
            config.path(),
        ],
        &[],
    );

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("tokens come from its identity provider"),
        "{}",
        stderr(&output)
    );
}

/// `govfusion serve` on the embedded cluster, with its log lines as they come.
struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Serving {
    fn start(env: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        let mut command = Command::new(env!("CARGO_BIN_EXE_govfusion"));
        command
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("Failed to start govfusion serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The value of `field=` on the first log line containing `message`, waiting for it.
    fn logged(&mut self, message: &str, field: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let found = self
                .seen
                .iter()
                .filter(|l| l.contains(message))
                .find_map(|l| {
                    l.split_whitespace()
                        .find_map(|word| word.strip_prefix(&format!("{field}=")))
                        .map(str::to_owned)
                });
            if let Some(value) = found {
                return value;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(without_colours(&line)),
                Err(_) => panic!("`{message}` never logged:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `line` without its ANSI colour codes (the log colours fields even into a pipe).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape runs to its final letter, e.g. `ESC[2m`.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// `POST path` with an empty JSON object and no token; the answer's status.
fn post_anonymously(port: &str, path: &str) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut stream =
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("Failed to connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .expect("Failed to send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("Failed to read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

/// Runs `audit verify` against `brokers` until it reports `records` records or fails.
fn verify_until(brokers: &str, records: usize) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let output = govfusion(
            &["audit", "verify", "--timeout-secs", "20"],
            &[
                ("GOVFUSION__BUS__KIND", "kafka"),
                ("GOVFUSION__BUS__BROKERS", brokers),
            ],
        );
        let done = stdout(&output).contains(&format!("{records} record(s) from"));
        if done || !output.status.success() || std::time::Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn audit_verify_reads_a_serving_process_s_trail_and_names_a_forged_record() {
    // Arrange: a service on its embedded cluster, three refused POSTs in its trail.
    let mut serving = Serving::start(&[
        ("GOVFUSION__BUS__KIND", "embedded"),
        ("GOVFUSION__HTTP__BIND", "127.0.0.1:0"),
    ]);
    let brokers = serving.logged("connected to Kafka", "brokers");
    let port = serving.logged("govfusion is serving", "port");
    for _ in 0..3 {
        let status = post_anonymously(&port, "/api/v1/terminals/pc-web/applications");
        assert_eq!(status, 401);
    }

    // Act
    let good = verify_until(&brokers, 3);

    // Assert
    assert!(good.status.success(), "{}", stderr(&good));
    let report = stdout(&good);
    assert!(
        report.contains("audit trail OK: 3 record(s) from 1 writer(s)"),
        "{report}"
    );
    let writer = report
        .lines()
        .nth(1)
        .and_then(|line| line.trim().split(':').next())
        .expect("the writer is listed")
        .to_owned();

    // Act: a record forged into the writer's chain.
    let producer: rdkafka::producer::BaseProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        // govfusion's partitioner: the forged record joins the writer's partition.
        .set("partitioner", "murmur2_random")
        .create()
        .expect("a producer");
    let forged = serde_json::json!({
        "writer": writer, "seq": 4, "prev": "0".repeat(64), "hash": "0".repeat(64)
    })
    .to_string();
    producer
        .send(
            rdkafka::producer::BaseRecord::to("govfusion.audit")
                .key(&writer)
                .payload(&forged),
        )
        .map_err(|(e, _)| e)
        .expect("the forged record is queued");
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(10))
        .expect("the forged record is written");
    let broken = verify_until(&brokers, 4);

    // Assert
    assert_eq!(broken.status.code(), Some(2), "{}", stdout(&broken));
    assert!(
        stderr(&broken).contains(&format!("writer `{writer}`, seq 4")),
        "{}",
        stderr(&broken)
    );
}

#[test]
fn audit_verify_on_an_in_process_bus_says_where_to_point_it() {
    let output = govfusion(&["audit", "verify"], &[]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("bus.brokers"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_config_refuses_an_audit_retention_shorter_than_six_months() {
    let errors = check_config_refuses(
        "audit-retention",
        &[("retention_days = 180", "retention_days = 30")],
    );

    assert!(errors.contains("audit.retention_days"), "{errors}");
}
