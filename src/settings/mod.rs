//! Configuration: the city (departments, matters, governance tree, terminals) and the service
//! (HTTP listener, input limits, bus, bridge), read from TOML and validated before anything starts.
//!
//! Layers, later wins: the TOML file given with `--config` (or the default compiled into the
//! binary, `config/default.toml`), then `GOVFUSION__SECTION__KEY` environment variables, e.g.
//! `GOVFUSION__HTTP__BIND=0.0.0.0:8080`. Every field is documented in `config/default.toml`.

use serde::{Deserialize, Serialize};
use std::path::Path;

mod audit;
mod auth;
mod city;
mod crypto;
mod input;
mod kafka_secret;
mod log;
mod rate_limit;
mod service;
mod store;
mod telemetry;
mod validate;

pub use audit::{AuditSettings, MIN_AUDIT_RETENTION_DAYS};
pub use auth::{AuthSettings, KeySource, OidcSettings};
pub use city::{
    CalendarSettings, CenterSettings, DepartmentSettings, GovernanceSettings, LocalTime,
    MatterSettings, StreetSettings, SupervisionSettings, TerminalSettings, UtcOffset,
};
pub use crypto::{
    CryptoSettings, KeyProblem, KeySettings, DEVELOPMENT_KEY, DEVELOPMENT_KEY_ID, KEY_BYTES,
};
pub use input::InputSettings;
pub use kafka_secret::SecretProblem;
pub use log::{LogFormat, LogSettings};
pub use rate_limit::RateLimitSettings;
pub use service::{
    BridgeSettings, BusKind, BusSettings, HttpSettings, KafkaSettings, Role, Roles,
    ServiceSettings, ENVELOPE_OVERHEAD_BYTES, MIN_RECORD_BYTES,
};
pub use store::StoreSettings;
pub use telemetry::{OtlpEndpoint, TelemetrySettings};
pub use validate::Problem;

/// The default configuration, compiled into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// What the service reads at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The limits of what a request's fields may hold.
    #[serde(default)]
    pub input: InputSettings,
    /// The message bus.
    pub bus: BusSettings,
    /// Who signs the bearer tokens the HTTP API accepts.
    #[serde(default)]
    pub auth: AuthSettings,
    /// The bridge actor between the systems and the bus.
    #[serde(default)]
    pub bridge: BridgeSettings,
    /// Start-up and shutdown.
    #[serde(default)]
    pub service: ServiceSettings,
    /// The working calendar that deadlines are counted on.
    pub calendar: CalendarSettings,
    /// Deadline warnings, escalation and extensions.
    #[serde(default)]
    pub supervision: SupervisionSettings,
    /// The three-tier governance tree.
    pub governance: GovernanceSettings,
    /// Department approval systems.
    pub departments: Vec<DepartmentSettings>,
    /// Matters (事项) and their rules.
    pub matters: Vec<MatterSettings>,
    /// Terminals people submit from.
    pub terminals: Vec<TerminalSettings>,
    /// The keys that seal personal data on the bus; the development key when left out.
    #[serde(default)]
    pub crypto: CryptoSettings,
    /// The audit trail of the API's requests.
    #[serde(default)]
    pub audit: AuditSettings,
    /// The case repository's database.
    #[serde(default)]
    pub store: StoreSettings,
    /// How log lines are written.
    #[serde(default)]
    pub log: LogSettings,
    /// Where spans are exported (OpenTelemetry, OTLP/HTTP); nowhere by default.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file cannot be read or parsed, or a value has the wrong type.
    #[error("{source_name}: {message}")]
    Load {
        /// The file (or `<built-in default>`).
        source_name: String,
        /// What the parser said.
        message: String,
    },
    /// Values break rules of the configuration: each one, a line apiece.
    #[error("{}", render(source_name, problems))]
    Invalid {
        /// The file (or `<built-in default>`).
        source_name: String,
        /// Every rule broken.
        problems: Vec<Problem>,
    },
}

/// One line per problem: `file: key = "value": what is wrong`.
fn render(source_name: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{source_name}: {} = {:?}: {}", p.key, p.value, p.problem))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Settings {
    /// Reads the file at `path` (or the built-in default), applies `GOVFUSION__…` environment
    /// overrides, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_adjusted(path, |_| {})
    }

    /// [`load`](Self::load), with `adjust` (the command line's overrides) applied before the
    /// result is validated.
    pub fn load_adjusted(
        path: Option<&Path>,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Self, SettingsError> {
        match path {
            Some(path) => {
                let source_name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Load {
                    source_name: source_name.clone(),
                    message: format!("cannot read the file: {e}"),
                })?;
                Self::from_toml_adjusted(&text, &source_name, true, adjust)
            }
            None => Self::from_toml_adjusted(
                DEFAULT_CONFIG,
                "<built-in default config/default.toml>",
                true,
                adjust,
            ),
        }
    }

    /// Parses and validates TOML text; `source_name` names it in errors. With `with_env`,
    /// `GOVFUSION__SECTION__KEY` variables override the text's values.
    pub fn from_toml(text: &str, source_name: &str, with_env: bool) -> Result<Self, SettingsError> {
        Self::from_toml_adjusted(text, source_name, with_env, |_| {})
    }

    /// [`from_toml`](Self::from_toml), with `adjust` applied before validation.
    fn from_toml_adjusted(
        text: &str,
        source_name: &str,
        with_env: bool,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Self, SettingsError> {
        let load_err = |e: config::ConfigError| SettingsError::Load {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        };
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        if with_env {
            builder = builder.add_source(
                config::Environment::with_prefix("GOVFUSION")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("service.roles")
                    .with_list_parse_key("service.intake_feed_urls")
                    .with_list_parse_key("http.cors_allowed_origins"),
            );
        }
        let mut settings: Settings = builder
            .build()
            .map_err(load_err)?
            .try_deserialize()
            .map_err(load_err)?;
        adjust(&mut settings);
        settings.validate(source_name)?;
        Ok(settings)
    }

    /// What this process runs: `all` expands to every system (external departments excepted).
    pub fn roles(&self) -> Roles {
        let all = self.service.roles.contains(&Role::All);
        Roles {
            intake: all || self.service.roles.contains(&Role::Intake),
            governance: all || self.service.roles.contains(&Role::Governance),
            departments: self
                .departments
                .iter()
                .filter(|d| !d.external)
                .filter(|d| {
                    all || self
                        .service
                        .roles
                        .contains(&Role::Department(d.code.clone()))
                })
                .map(|d| d.code.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_with(from: &str, to: &str) -> Result<Settings, SettingsError> {
        assert!(
            DEFAULT_CONFIG.contains(from),
            "fixture text `{from}` not in default config"
        );
        Settings::from_toml(&DEFAULT_CONFIG.replacen(from, to, 1), "test.toml", false)
    }

    #[test]
    fn default_config_is_valid() {
        let settings = Settings::from_toml(DEFAULT_CONFIG, "default", false).unwrap();
        assert!(settings.departments.len() >= 6);
        assert!(settings.matters.len() >= 8);
    }

    #[test]
    fn unknown_department_in_a_matter_names_file_key_and_value() {
        let err = default_with("department = \"market\"", "department = \"markt\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml: matters["), "{err}");
        assert!(err.contains("].department = \"markt\""), "{err}");
        assert!(err.contains("no department has this code"), "{err}");
    }

    #[test]
    fn a_flow_retention_of_no_hours_is_refused_and_the_default_is_a_week() {
        let err = default_with("flow_retention_hours = 168", "flow_retention_hours = 0")
            .unwrap_err()
            .to_string();
        let shipped = Settings::from_toml(DEFAULT_CONFIG, "default", false).unwrap();
        assert!(err.contains("bus.flow_retention_hours = \"0\""), "{err}");
        assert!(err.contains("must be between 1 and"), "{err}");
        assert_eq!(shipped.bus.flow_retention_ms(), 7 * 24 * 3_600_000);
    }

    #[test]
    fn a_record_limit_librdkafka_cannot_take_is_refused() {
        let err = default_with("max_record_bytes = 1000000", "max_record_bytes = 10")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bus.max_record_bytes = \"10\""), "{err}");
        assert!(err.contains("message.max.bytes"), "{err}");
    }

    #[test]
    fn duplicate_department_code_is_refused() {
        let err = default_with("code = \"fire\"", "code = \"market\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("departments["), "{err}");
        assert!(err.contains("duplicate department code"), "{err}");
    }

    #[test]
    fn street_in_an_unknown_district_is_refused() {
        let err = default_with("district = \"500105\"", "district = \"599999\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("governance.streets["), "{err}");
        assert!(err.contains("].district = \"599999\""), "{err}");
        assert!(err.contains("no district centre has this code"), "{err}");
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let text = DEFAULT_CONFIG
            .replacen("department = \"market\"", "department = \"markt\"", 1)
            .replacen("district = \"500105\"", "district = \"599999\"", 1)
            .replacen("partitions = 6", "partitions = 0", 1);
        let err = Settings::from_toml(&text, "test.toml", false)
            .unwrap_err()
            .to_string();
        let lines: Vec<_> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(lines.iter().all(|l| l.starts_with("test.toml: ")), "{err}");
        for key in [
            "bus.partitions",
            "].department = \"markt\"",
            "].district = \"599999\"",
        ] {
            assert!(err.contains(key), "no `{key}` in {err}");
        }
    }

    #[test]
    fn a_store_of_another_engine_is_refused_with_the_other_mistakes() {
        let text = DEFAULT_CONFIG
            .replacen(
                "url = \"\"\n# Where this process keeps its files",
                "url = \"mysql://root:secret@db/govfusion\"\n# Where this process keeps its files",
                1,
            )
            .replacen("max_connections = 5", "max_connections = 0", 1);

        let err = Settings::from_toml(&text, "test.toml", false)
            .unwrap_err()
            .to_string();

        assert!(
            err.contains("test.toml: store.url = \"mysql:…\": the case repository speaks"),
            "{err}"
        );
        assert!(err.contains("store.max_connections = \"0\""), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn a_zero_body_timeout_is_refused() {
        let err = default_with("body_timeout_ms = 5000", "body_timeout_ms = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.body_timeout_ms = \"0\""), "{err}");
        assert!(err.contains("must be at least 1"), "{err}");
    }

    #[test]
    fn a_zero_stalled_time_is_refused() {
        let err = default_with("stalled_after_secs = 600", "stalled_after_secs = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("service.stalled_after_secs = \"0\""), "{err}");
        assert!(err.contains("must be at least 1"), "{err}");
    }

    #[test]
    fn an_empty_idempotency_store_is_refused() {
        let err = default_with(
            "idempotency_max_entries = 100000",
            "idempotency_max_entries = 0",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("http.idempotency_max_entries"), "{err}");
    }

    #[test]
    fn a_body_limit_over_what_a_record_carries_is_refused_saying_the_most_it_may_be() {
        let err = default_with("max_body_bytes = 983040", "max_body_bytes = 1048576")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.max_body_bytes = \"1048576\""), "{err}");
        assert!(err.contains("bus.max_record_bytes (1000000)"), "{err}");
        assert!(err.contains("Lower it to 997440"), "{err}");
    }

    #[test]
    fn a_record_limit_lowered_below_the_body_limit_is_refused() {
        let err = default_with("max_record_bytes = 1000000", "max_record_bytes = 500000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.max_body_bytes = \"983040\""), "{err}");
        assert!(err.contains("Lower it to 497440"), "{err}");
    }

    #[test]
    fn a_zero_input_limit_is_refused_and_an_unknown_one_named() {
        let zero = default_with("materials_max = 100", "materials_max = 0")
            .unwrap_err()
            .to_string();
        let unknown = default_with("materials_max = 100", "material_max = 100")
            .unwrap_err()
            .to_string();
        assert!(zero.contains("input.materials_max = \"0\""), "{zero}");
        assert!(unknown.contains("material_max"), "{unknown}");
    }

    #[test]
    fn crypto_mistakes_are_each_reported_with_their_key() {
        let text = DEFAULT_CONFIG.replacen("current = \"dev\"", "current = \"2027\"", 1)
            + "\n[[crypto.keys]]\nid = \"short\"\nkey = \"c2hvcnQ=\"\n\
               \n[[crypto.keys]]\nid = \"garbled\"\nkey = \"not base64!\"\n";
        let err = Settings::from_toml(&text, "test.toml", false)
            .unwrap_err()
            .to_string();
        let lines: Vec<_> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(err.contains("crypto.current = \"2027\""), "{err}");
        assert!(err.contains("known: `dev`, `short`, `garbled`"), "{err}");
        assert!(err.contains("crypto.keys[1].key"), "{err}");
        assert!(err.contains("is 5 bytes, but AES-256 needs 32"), "{err}");
        assert!(err.contains("crypto.keys[2].key"), "{err}");
        assert!(err.contains("is not standard base64"), "{err}");
    }

    #[test]
    fn a_key_from_a_missing_variable_names_the_variable() {
        let text = DEFAULT_CONFIG.replacen(
            "key = \"rleeFG4SHsD/gdGxiQEcfOrMIfHlV1KZqxN0Jlg7hwc=\"",
            "key_env = \"GOVFUSION_TEST_NO_SUCH_KEY_VARIABLE\"",
            1,
        );
        let err = Settings::from_toml(&text, "test.toml", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("crypto.keys[0].key_env = \"GOVFUSION_TEST_NO_SUCH_KEY_VARIABLE\""),
            "{err}"
        );
        assert!(
            err.contains("cannot read the environment variable"),
            "{err}"
        );
    }

    #[test]
    fn the_built_in_config_seals_with_the_development_key_and_a_missing_section_too() {
        let built_in = Settings::from_toml(DEFAULT_CONFIG, "default", false).unwrap();
        assert!(built_in.crypto.uses_development_key());
        let start = DEFAULT_CONFIG.find("[crypto]").unwrap();
        let end = DEFAULT_CONFIG.find("[governance.city]").unwrap();
        let without = format!("{}{}", &DEFAULT_CONFIG[..start], &DEFAULT_CONFIG[end..]);
        let settings = Settings::from_toml(&without, "test.toml", false).unwrap();
        assert!(settings.crypto.uses_development_key());
    }

    #[test]
    fn type_errors_name_the_source() {
        let err = default_with("partitions = 6", "partitions = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:"), "{err}");
        assert!(err.contains("partitions"), "{err}");
    }
}
