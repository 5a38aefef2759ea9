//! Configuration: the city (departments, matters, governance tree, terminals) and the service
//! (HTTP listener, bus, bridge), read from TOML and validated before anything starts.
//!
//! Layers, later wins: the TOML file given with `--config` (or the default compiled into the
//! binary, `config/default.toml`), then `GOVFUSION__SECTION__KEY` environment variables, e.g.
//! `GOVFUSION__HTTP__BIND=0.0.0.0:8080`. Every field is documented in `config/default.toml`.

use crate::domain::{
    CentreCode, Channel, CollaborationOutcome, Collaborator, DepartmentCode, MatterCode, Mode,
    TerminalId, Tier,
};
use chrono::{FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

mod validate;

pub use validate::Problem;

/// The default configuration, compiled into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// What the service reads at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The message bus.
    pub bus: BusSettings,
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
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub bind: String,
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// HTTP worker threads.
    #[serde(default = "default_http_workers")]
    pub workers: usize,
    /// How long a client may take to send a request's head (line and headers), in
    /// milliseconds; slower clients get 408 and the connection is closed.
    #[serde(default = "default_head_timeout_ms")]
    pub head_timeout_ms: u64,
    /// How long a client may take to send a request's body, counted from the end of its head,
    /// in milliseconds; slower clients get 408 `request_timeout` and the connection is closed,
    /// so a body that never arrives holds no connection for long.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// How long a closing connection may take to shut down cleanly, in milliseconds.
    #[serde(default = "default_disconnect_timeout_ms")]
    pub disconnect_timeout_ms: u64,
    /// How long the answer to a POST with an `Idempotency-Key` is kept to be answered again, in
    /// seconds. Kept in the process: a restart forgets every key.
    #[serde(default = "default_idempotency_ttl_secs")]
    pub idempotency_ttl_secs: u64,
    /// Most idempotency keys kept at once; past it the oldest are forgotten first.
    #[serde(default = "default_idempotency_max_entries")]
    pub idempotency_max_entries: usize,
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_http_workers() -> usize {
    2
}
fn default_head_timeout_ms() -> u64 {
    5000
}
fn default_body_timeout_ms() -> u64 {
    5000
}
fn default_disconnect_timeout_ms() -> u64 {
    1000
}
fn default_idempotency_ttl_secs() -> u64 {
    24 * 60 * 60
}
fn default_idempotency_max_entries() -> usize {
    100_000
}

/// Which bus implementation to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// The in-process, partitioned in-memory bus.
    Memory,
    /// A Kafka cluster at `brokers`.
    Kafka,
    /// librdkafka's mock cluster started inside the process; the real Kafka code path runs
    /// against it. Nothing survives the process.
    Embedded,
}

/// `[bus]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSettings {
    /// `embedded` (the shipped default), `kafka` or `memory`.
    pub kind: BusKind,
    /// Prefix of every topic name: `<prefix>.applications`, …
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Partitions per topic. A case's messages always land on one partition.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Records a consumer may have handed to its system but not yet seen finished: per partition
    /// on the memory bus; on Kafka a group's consumer holds at most this times `partitions`.
    #[serde(default = "default_max_in_flight")]
    pub consumer_max_in_flight: usize,
    /// Pause before a consumer redelivers a record whose handling failed, in milliseconds.
    #[serde(default = "default_redelivery_backoff_ms")]
    pub redelivery_backoff_ms: u64,
    /// The largest record the bus takes, in bytes (key, headers and payload). The Kafka
    /// producer's `message.max.bytes` is set to it and the memory bus refuses bigger records;
    /// the intake system refuses, with 413, an application whose records could exceed it (see
    /// [`BusSettings::max_application_bytes`]). Keep it at or below the broker's limit.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u64,
    /// Kafka bootstrap servers, e.g. `h1:9092,h2:9092` (kind `kafka` only).
    #[serde(default)]
    pub brokers: String,
    /// Kafka client settings (kinds `kafka` and `embedded`).
    #[serde(default)]
    pub kafka: KafkaSettings,
}

/// `[bus.kafka]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Producer `linger.ms`: how long librdkafka waits to fill a batch.
    pub linger_ms: u64,
    /// Producer `batch.num.messages`.
    pub batch_num_messages: u32,
    /// Producer `compression.type` (`none`, `gzip`, `snappy`, `lz4`; this build has no zstd).
    pub compression: String,
    /// Producer `enable.idempotence`. Keep it on: the broker then drops the repeats of
    /// librdkafka's own retries and keeps each partition's order. Turn it off only for a broker
    /// that cannot keep producer state: the producer then sends one request at a time per
    /// connection (order kept, throughput lower), and consumers drop repeated messages by id.
    pub idempotence: bool,
    /// Producer `message.timeout.ms`: how long librdkafka retries a record before it fails.
    pub message_timeout_ms: u64,
    /// Consumer `session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// Consumer `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// Consumer `partition.assignment.strategy`.
    pub assignment_strategy: String,
    /// Consumer `fetch.wait.max.ms`. A real broker answers a fetch as soon as a record arrives;
    /// the embedded mock cluster waits this long, so the embedded kind uses at most 5 ms.
    pub fetch_wait_max_ms: u64,
    /// Replication factor of topics govfusion creates.
    pub replication_factor: i32,
    /// Whether to create missing topics at start-up (with `bus.partitions` partitions).
    pub create_topics: bool,
    /// How long shutdown waits for the producer to flush, in milliseconds.
    pub flush_timeout_ms: u64,
    /// Any librdkafka option, passed to producer, consumers and admin client as given (e.g.
    /// `"security.protocol" = "SASL_SSL"`); applied last, so it overrides the settings above.
    pub options: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            linger_ms: 5,
            batch_num_messages: 10_000,
            compression: "lz4".into(),
            idempotence: true,
            message_timeout_ms: 120_000,
            session_timeout_ms: 6_000,
            heartbeat_interval_ms: 500,
            assignment_strategy: "cooperative-sticky".into(),
            fetch_wait_max_ms: 100,
            replication_factor: 1,
            create_topics: true,
            flush_timeout_ms: 10_000,
            options: Default::default(),
        }
    }
}

fn default_topic_prefix() -> String {
    "govfusion".to_owned()
}
fn default_partitions() -> u32 {
    6
}
fn default_max_in_flight() -> usize {
    256
}
fn default_redelivery_backoff_ms() -> u64 {
    100
}
fn default_max_record_bytes() -> u64 {
    // librdkafka's default `message.max.bytes` (a broker's default is 1,048,588: this fits).
    1_000_000
}

/// The smallest `bus.max_record_bytes`: librdkafka refuses a `message.max.bytes` below it.
pub const MIN_RECORD_BYTES: u64 = 1_000;

impl BusSettings {
    /// The largest application (its JSON) the intake system takes: `max_record_bytes` less a
    /// margin of a quarter of it, at most 64 KiB. The biggest record a case causes carries
    /// its whole application (`application.published`, the intake's snapshot,
    /// `collaboration.requested`, `collaboration.completed`), plus an envelope of a few hundred
    /// bytes and the collaborators' answers; the margin leaves room for those. A record that
    /// still exceeds the limit (very long answers) is dead-lettered, never retried.
    pub fn max_application_bytes(&self) -> u64 {
        let margin = (self.max_record_bytes / 4).min(64 * 1024);
        self.max_record_bytes.saturating_sub(margin)
    }
}

/// `[service]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// How long a shutdown (SIGTERM, Ctrl-C) may take, in milliseconds: finishing HTTP requests,
    /// handled records, offset commits and the producer flush. Past it the process exits anyway
    /// and logs what was left.
    pub shutdown_timeout_ms: u64,
    /// The systems this process runs (`serve --roles` overrides): `all`, `intake`,
    /// `governance`, `department:<code>`.
    pub roles: Vec<Role>,
    /// The intake system's HTTP feed, for a process that runs `governance` but not `intake`,
    /// e.g. `http://intake-host:8080`.
    pub intake_feed_url: String,
    /// How long a submission waits for its record to be on the bus before it is answered, in
    /// milliseconds. Past it the answer says the case is not yet durable; it is kept and
    /// published once the bus takes it. A staff or applicant act (a decision, a rating, …)
    /// waits as long, then is answered `202`: it is recorded and sent once the bus takes it.
    pub submit_timeout_ms: u64,
    /// How long a case must have made no progress to be listed as stalled, in seconds: the
    /// default of `GET /api/v1/operations/stalled` (`?idle_secs=` overrides it).
    pub stalled_after_secs: u64,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            shutdown_timeout_ms: 30_000,
            roles: vec![Role::All],
            intake_feed_url: String::new(),
            submit_timeout_ms: 5_000,
            stalled_after_secs: 600,
        }
    }
}

/// A system (or set of systems) a process runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// Every system.
    All,
    /// The intake system and the terminals.
    Intake,
    /// Every governance centre and the supervision system.
    Governance,
    /// One department's approval system.
    Department(DepartmentCode),
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(Role::All),
            "intake" => Ok(Role::Intake),
            "governance" => Ok(Role::Governance),
            other => match other.split_once(':') {
                Some(("department", code)) if !code.is_empty() => {
                    Ok(Role::Department(DepartmentCode::from_string(code)))
                }
                _ => Err(format!(
                    "`{other}` is not a role (expected all, intake, governance or department:<code>)"
                )),
            },
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::All => f.write_str("all"),
            Role::Intake => f.write_str("intake"),
            Role::Governance => f.write_str("governance"),
            Role::Department(code) => write!(f, "department:{code}"),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What one process runs, resolved from its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// The intake system and terminals.
    pub intake: bool,
    /// The governance centres and supervision.
    pub governance: bool,
    /// The departments (codes) whose approval systems run here.
    pub departments: HashSet<DepartmentCode>,
}

impl Roles {
    /// Whether a department's approval system runs here.
    pub fn runs_department(&self, code: &DepartmentCode) -> bool {
        self.departments.contains(code)
    }
}

/// `[calendar]`: the working calendar (工作日历).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// The city's local time as an offset from UTC, e.g. `+08:00`.
    pub utc_offset: UtcOffset,
    /// When offices open on a working day, local time, e.g. `09:00`.
    pub office_opens: LocalTime,
    /// When they close, e.g. `17:00`; working hours are counted between the two.
    pub office_closes: LocalTime,
    /// Monday-to-Friday dates that are public holidays.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Weekend dates that are working days (调休上班).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

/// An offset from UTC, written `+08:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset(pub FixedOffset);

impl Serialize for UtcOffset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<FixedOffset>().map(UtcOffset).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not a UTC offset; write it like \"+08:00\""
            ))
        })
    }
}

/// A time of day, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub NaiveTime);

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%H:%M"))
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M")
            .map(LocalTime)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a time of day; write it like \"09:00\""
                ))
            })
    }
}

/// `[supervision]`: deadline warnings (预警), escalation (督办) and extensions (延期).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// A yellow warning is raised when this share of the time allowed is used, in percent.
    pub yellow_at_percent: u32,
    /// How often deadlines are checked, in milliseconds.
    pub check_interval_ms: u64,
    /// Working days a collaborating department has to answer an event, unless its matter or
    /// the department sets its own.
    pub collaboration_days: u32,
    /// Most working days one extension may add; a longer request is refused.
    pub max_extension_days: u32,
    /// Extensions one event may get.
    pub max_extensions: u32,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            yellow_at_percent: 80,
            check_interval_ms: 60_000,
            collaboration_days: 3,
            max_extension_days: 5,
            max_extensions: 1,
        }
    }
}

/// `[bridge]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Most records sent to the bus in one batch.
    pub batch_max_records: usize,
    /// How long a batch may wait for more records before it is sent, in milliseconds. With 0 a
    /// batch goes as soon as the previous one is acknowledged (records queue up meanwhile).
    pub linger_ms: u64,
    /// First retry delay after a failed send, in milliseconds; doubles on every retry.
    pub retry_initial_backoff_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_backoff_ms: u64,
    /// Sends of one batch before it fails for good and its publishers are told.
    pub retry_max_attempts: u32,
    /// How long `/readyz` says not ready after the bus refused a record for good (too large,
    /// invalid), in milliseconds: readiness comes back on its own once no record was refused
    /// for this long.
    pub refused_unready_ms: u64,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        Self {
            batch_max_records: 20_000,
            linger_ms: 0,
            retry_initial_backoff_ms: 10,
            retry_max_backoff_ms: 2000,
            retry_max_attempts: 10,
            refused_unready_ms: 30_000,
        }
    }
}

/// `[governance]`: the city centre, its district centres, and the street centres of each
/// district.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceSettings {
    /// The city centre.
    pub city: CenterSettings,
    /// District centres.
    pub districts: Vec<CenterSettings>,
    /// Street centres, each naming its district.
    pub streets: Vec<StreetSettings>,
}

/// A centre: its region code and the region's Chinese name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterSettings {
    /// Region code, unique in the tree; also the centre's bus id (`governance/<code>`).
    pub code: CentreCode,
    /// Region name, e.g. 重庆市.
    pub name: String,
}

/// `[[governance.streets]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreetSettings {
    /// Region code.
    pub code: CentreCode,
    /// Region name, e.g. 解放碑街道.
    pub name: String,
    /// Code of the district centre the street belongs to.
    pub district: CentreCode,
}

/// `[[departments]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentSettings {
    /// Department code, unique; its bus id is `department/<code>`.
    pub code: DepartmentCode,
    /// Chinese name.
    pub name: String,
    /// The tier it sits at.
    pub tier: Tier,
    /// `auto` (rules decide) or `manual` (staff decide through the HTTP API).
    pub mode: Mode,
    /// An outside system plays this department through Kafka alone (see
    /// `docs/asyncapi.yaml`); govfusion starts no actor for it.
    #[serde(default)]
    pub external: bool,
    /// What an `auto` department answers to a collaboration event.
    #[serde(default = "default_collaboration_answer")]
    pub collaboration_answer: CollaborationOutcome,
    /// The opinion sent with that answer.
    #[serde(default = "default_collaboration_opinion")]
    pub collaboration_opinion: String,
    /// Working days this department has to answer a collaboration event, unless the matter
    /// sets its own; default `supervision.collaboration_days`.
    #[serde(default)]
    pub collaboration_days: Option<u32>,
    /// Where a governance centre re-routes an event this department returns (退单) as not its
    /// own; without one, the return goes one tier up for a centre to reassign.
    #[serde(default)]
    pub return_to: Option<DepartmentCode>,
}

fn default_collaboration_answer() -> CollaborationOutcome {
    CollaborationOutcome::Agree
}
fn default_collaboration_opinion() -> String {
    "经核查，符合要求".to_owned()
}

/// `[[matters]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterSettings {
    /// Matter code, unique.
    pub code: MatterCode,
    /// Chinese name.
    pub name: String,
    /// Responsible department code.
    pub department: DepartmentCode,
    /// Materials an application must include.
    pub required_materials: Vec<String>,
    /// Departments that must collaborate, with the tier each sits at.
    #[serde(default)]
    pub collaborators: Vec<Collaborator>,
    /// Promised handling time in working days (承诺时限).
    pub promised_days: u32,
    /// Working days each collaborating department has to answer its event; default: the
    /// department's own `collaboration_days`, else `supervision.collaboration_days`.
    #[serde(default)]
    pub collaboration_days: Option<u32>,
}

/// `[[terminals]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalSettings {
    /// Terminal id, unique; used in the submission URL.
    pub id: TerminalId,
    /// `pc`, `app` or `kiosk`.
    pub channel: Channel,
    /// Where it is (a hall, a web address, an app store name).
    pub location: String,
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
        match path {
            Some(path) => {
                let source_name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Load {
                    source_name: source_name.clone(),
                    message: format!("cannot read the file: {e}"),
                })?;
                Self::from_toml(&text, &source_name, true)
            }
            None => Self::from_toml(
                DEFAULT_CONFIG,
                "<built-in default config/default.toml>",
                true,
            ),
        }
    }

    /// Parses and validates TOML text; `source_name` names it in errors. With `with_env`,
    /// `GOVFUSION__SECTION__KEY` variables override the text's values.
    pub fn from_toml(text: &str, source_name: &str, with_env: bool) -> Result<Self, SettingsError> {
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
                    .with_list_parse_key("service.roles"),
            );
        }
        let settings: Settings = builder
            .build()
            .map_err(load_err)?
            .try_deserialize()
            .map_err(load_err)?;
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
    fn type_errors_name_the_source() {
        let err = default_with("partitions = 6", "partitions = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:"), "{err}");
        assert!(err.contains("partitions"), "{err}");
    }
}
