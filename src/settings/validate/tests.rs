//! The rules' own tests; the file-level ones are in `settings/mod.rs` and `tests/cli.rs`.

use crate::settings::{Settings, SettingsError, DEFAULT_CONFIG};

/// The default configuration with a `message.max.bytes` of `bytes` under
/// `[bus.kafka.options]`.
fn with_producer_limit(bytes: &str) -> Result<Settings, SettingsError> {
    // The table's header at the start of a line, not a comment naming it.
    let table = "\n[bus.kafka.options]";
    assert!(
        DEFAULT_CONFIG.contains(table),
        "the default config has {table}"
    );
    let text = DEFAULT_CONFIG.replacen(
        table,
        &format!("{table}\n\"message.max.bytes\" = \"{bytes}\""),
        1,
    );
    Settings::from_toml(&text, "test.toml", false)
}

#[test]
fn a_producer_limit_below_the_record_limit_is_refused_naming_both_keys() {
    // Act
    let error = with_producer_limit("500000").expect_err("below bus.max_record_bytes");

    // Assert
    let error = error.to_string();
    assert!(
        error.contains("bus.kafka.options.\"message.max.bytes\""),
        "{error}"
    );
    assert!(error.contains("500000"), "{error}");
    assert!(error.contains("bus.max_record_bytes (1000000)"), "{error}");
}

#[test]
fn a_producer_limit_at_or_above_the_record_limit_is_taken() {
    for bytes in ["1000000", "2000000"] {
        let settings = with_producer_limit(bytes).expect("not below the record limit");
        assert_eq!(settings.bus.kafka.options["message.max.bytes"], bytes);
    }
}

#[test]
fn a_producer_limit_that_is_not_a_number_is_refused() {
    let error = with_producer_limit("1MB").expect_err("not a number");
    assert!(
        error.to_string().contains("whole number of bytes"),
        "{error}"
    );
}

/// The default configuration with `from` replaced by `to` (once).
fn default_with(from: &str, to: &str) -> Result<Settings, SettingsError> {
    assert!(
        DEFAULT_CONFIG.contains(from),
        "`{from}` not in the default config"
    );
    Settings::from_toml(&DEFAULT_CONFIG.replacen(from, to, 1), "test.toml", false)
}

#[test]
fn a_rate_limit_of_nothing_is_refused_with_both_keys_unless_it_is_off() {
    let zero = DEFAULT_CONFIG
        .replacen("per_second = 100.0", "per_second = 0.0", 1)
        .replacen("burst = 1000", "burst = 0", 1);
    let off = zero.replacen("enabled = true", "enabled = false", 1);

    let error = Settings::from_toml(&zero, "test.toml", false)
        .expect_err("a rate of 0")
        .to_string();
    let off = Settings::from_toml(&off, "test.toml", false);

    assert_eq!(error.lines().count(), 2, "{error}");
    assert!(
        error.contains("http.rate_limit.per_second = \"0\""),
        "{error}"
    );
    assert!(error.contains("http.rate_limit.burst = \"0\""), "{error}");
    assert!(off.is_ok(), "limits off need no rate: {off:?}");
}

#[test]
fn cors_origins_must_be_what_a_browser_sends() {
    let listed = r#"cors_allowed_origins = ["https://zwfw.city.gov.cn", "http://localhost:3000", "https://a.gov.cn/", "*", "zwfw.city.gov.cn", "https://Portal.gov.cn"]"#;
    let error = default_with("cors_allowed_origins = []", listed)
        .expect_err("four are not origins")
        .to_string();

    assert_eq!(error.lines().count(), 4, "{error}");
    for (i, origin) in [
        (2, "https://a.gov.cn/"),
        (3, "*"),
        (4, "zwfw.city.gov.cn"),
        (5, "https://Portal.gov.cn"),
    ] {
        let key = format!("http.cors_allowed_origins[{i}] = \"{origin}\"");
        assert!(error.contains(&key), "no `{key}` in {error}");
    }
}

#[test]
fn a_sasl_password_from_two_sources_is_reported_with_the_other_mistakes() {
    let text = DEFAULT_CONFIG
        .replacen(
            "\n[bus.kafka.options]",
            "\nsasl_password_env = \"GOVFUSION_TEST_SASL_A\"\n\
             \n[bus.kafka.options]\n\"sasl.password\" = \"inline-secret\"",
            1,
        )
        .replacen("partitions = 6", "partitions = 0", 1);

    let error = Settings::from_toml(&text, "test.toml", false)
        .expect_err("two sources of the password")
        .to_string();

    assert_eq!(error.lines().count(), 2, "{error}");
    assert!(error.contains("bus.partitions"), "{error}");
    assert!(error.contains("bus.kafka = "), "{error}");
    assert!(error.contains("at most one"), "{error}");
    assert!(
        !error.contains("inline-secret"),
        "the password is shown: {error}"
    );
}

#[test]
fn a_sasl_password_file_that_cannot_be_read_is_named() {
    let error = default_with(
        "\n[bus.kafka.options]",
        "\nsasl_password_file = \"/nonexistent/govfusion-kafka-password\"\n\n[bus.kafka.options]",
    )
    .expect_err("no such file")
    .to_string();

    assert!(
        error.contains("bus.kafka.sasl_password_file = \"/nonexistent/govfusion-kafka-password\""),
        "{error}"
    );
    assert!(error.contains("cannot read the file"), "{error}");
}

/// The default configuration with `instances` intake processes, as the governance process
/// would run it.
fn with_intake_instances(instances: u32) -> Settings {
    let mut settings = Settings::from_toml(DEFAULT_CONFIG, "test.toml", false).expect("default");
    settings.service.intake_instances = instances;
    settings
}

#[test]
fn several_intake_processes_without_a_shared_bus_and_database_or_the_feeds_are_refused() {
    // Arrange: the defaults (memory bus, SQLite, every role) with two intake processes.
    let settings = with_intake_instances(2);

    // Act
    let error = settings
        .validate("test.toml")
        .expect_err("refused")
        .to_string();

    // Assert
    for needed in ["bus kind `kafka`", "PostgreSQL", "service.intake_feed_urls"] {
        assert!(error.contains(needed), "{needed} in {error}");
    }
}

#[test]
fn several_intake_processes_on_kafka_and_postgresql_with_every_feed_are_taken() {
    // Arrange
    let mut settings = with_intake_instances(2);
    settings.bus.kind = crate::settings::BusKind::Kafka;
    settings.bus.brokers = "kafka:9092".into();
    settings.store.url = "postgres://govfusion@db/govfusion".into();
    settings.service.intake_instance = 1;
    settings.service.intake_feed_urls =
        vec!["http://intake-0:8080".into(), "http://intake-1:8080".into()];

    // Act
    let taken = settings.validate("test.toml");

    // Assert
    assert!(taken.is_ok(), "{taken:?}");
    settings.service.intake_instance = 2;
    let error = settings
        .validate("test.toml")
        .expect_err("no instance 2 of 2")
        .to_string();
    assert!(error.contains("service.intake_instance"), "{error}");
}
