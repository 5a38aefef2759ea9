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
