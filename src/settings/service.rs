//! The service's sections of the configuration: `[http]`, `[bus]` (with `[bus.kafka]`),
//! `[service]` and its roles, `[bridge]`.

use super::RateLimitSettings;
use crate::domain::DepartmentCode;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub bind: String,
    /// Largest accepted request body in bytes; larger bodies get 413. At most
    /// [`BusSettings::max_carried_body_bytes`], so that a body taken fits in a record.
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
    /// How long the answer to a POST with an `Idempotency-Key` is kept to be answered again,
    /// counted from when it was given, in seconds. Kept in the process: a restart forgets every
    /// key.
    #[serde(default = "default_idempotency_ttl_secs")]
    pub idempotency_ttl_secs: u64,
    /// Most idempotency keys kept at once; past it the oldest answers are forgotten first. A key
    /// whose request is still being handled is never forgotten: a new key that finds only such
    /// keys is refused with 503.
    #[serde(default = "default_idempotency_max_entries")]
    pub idempotency_max_entries: usize,
    /// `[http.rate_limit]`: how many requests one client may make.
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    /// Whether responses carry `Strict-Transport-Security`. Only for a deployment where the
    /// browser reaches this service over HTTPS (a TLS-terminating proxy that passes headers
    /// through): this service itself speaks plain HTTP, and HSTS over plain HTTP is ignored by
    /// browsers at best and locks users out of a site with no HTTPS at worst.
    #[serde(default)]
    pub hsts: bool,
    /// The origins (`https://portal.city.gov.cn`, scheme, host and port, no path) whose web
    /// pages may call the API from a browser (CORS). Empty: no cross-origin access.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
}

fn default_max_body_bytes() -> usize {
    // 960 KiB: within what the default `bus.max_record_bytes` carries (see
    // `BusSettings::max_carried_body_bytes`).
    960 * 1024
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
    /// How long the flow topics keep a record, in hours (their `retention.ms` when govfusion
    /// creates them), and so how long a department or centre remembers a case it closed, to
    /// drop the late repeats of its messages: a message of a case closed longer ago is no
    /// longer on the flow topics. At least 1.
    #[serde(default = "default_flow_retention_hours")]
    pub flow_retention_hours: u64,
    /// The in-memory bus (`kind = "memory"`) drops a record once every consumer group that
    /// reads its topic has committed past it, so that its memory follows the records in
    /// flight, not the history; false keeps every record until the process ends (tests read
    /// them). A bus that outlives its systems (tests' `MemoryBus::durable`) keeps every record.
    #[serde(default = "default_memory_trim")]
    pub memory_trim: bool,
    /// On an in-memory bus that trims, a partition of a topic no consumer group reads (the
    /// audit trail, dead letters) keeps its newest records up to this many bytes and drops
    /// older ones, as a broker's `retention.bytes` does; 0 keeps every record. Nothing on the
    /// memory bus outlives the process: a trail that must be kept is kept on Kafka.
    #[serde(default = "default_memory_unread_bytes")]
    pub memory_unread_bytes: u64,
    /// Kafka bootstrap servers, e.g. `h1:9092,h2:9092` (kind `kafka` only).
    #[serde(default)]
    pub brokers: String,
    /// Kafka client settings (kinds `kafka` and `embedded`).
    #[serde(default)]
    pub kafka: KafkaSettings,
}

/// `[bus.kafka]`. Its `Debug` (in `kafka_secret`) hides passwords.
#[derive(Clone, Serialize, Deserialize)]
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
    /// This process's stable name among the processes of its roles (e.g. the pod's name in a
    /// StatefulSet; each instance its own). When set, the process joins the shared groups of
    /// governance and departments as a static member (`group.instance.id`, KIP-345): started
    /// again within `session_timeout_ms` of dying, it takes its partitions back at once instead
    /// of waiting for the broker to drop the dead member and rebalance. The price: a process
    /// stopped for good, even by SIGTERM, keeps its partitions until its session runs out.
    /// Empty (the default): dynamic membership. The broker must support it (Kafka 2.3+).
    pub instance_id: String,
    /// Consumer `partition.assignment.strategy`.
    pub assignment_strategy: String,
    /// Consumer `fetch.wait.max.ms`. A real broker answers a fetch as soon as a record arrives;
    /// the embedded mock cluster waits this long, so the embedded kind uses at most 5 ms.
    pub fetch_wait_max_ms: u64,
    /// Consumer `queued.max.messages.kbytes`: how much a consumer fetches ahead of its
    /// handlers. librdkafka's default (64 MiB per consumer, each fetch up to 50 MB) let the
    /// groups that read a topic from the start hold hundreds of megabytes at once; fetching
    /// ahead a few megabytes keeps a start-up's memory flat at a small cost in speed (README,
    /// "Case repository").
    pub consumer_queue_kbytes: u32,
    /// Replication factor of topics govfusion creates.
    pub replication_factor: i32,
    /// Whether to create missing topics at start-up (with `bus.partitions` partitions).
    pub create_topics: bool,
    /// How long shutdown waits for the producer to flush, in milliseconds.
    pub flush_timeout_ms: u64,
    /// Any librdkafka option, passed to producer, consumers and admin client as given (e.g.
    /// `"security.protocol" = "SASL_SSL"`); applied last, so it overrides the settings above.
    pub options: std::collections::BTreeMap<String, String>,
    /// The name of an environment variable that holds the SASL password (librdkafka's
    /// `sasl.password`), so that it need not be written in the config file. At most one of
    /// this, `sasl_password_file` and `options."sasl.password"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_password_env: Option<String>,
    /// A file that holds the SASL password (a mounted secret; a trailing newline is ignored),
    /// read whenever a Kafka client is made. At most one source, as for `sasl_password_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_password_file: Option<std::path::PathBuf>,
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
            instance_id: String::new(),
            assignment_strategy: "cooperative-sticky".into(),
            fetch_wait_max_ms: 100,
            consumer_queue_kbytes: 8192,
            replication_factor: 1,
            create_topics: true,
            flush_timeout_ms: 10_000,
            options: Default::default(),
            sasl_password_env: None,
            sasl_password_file: None,
        }
    }
}

fn default_topic_prefix() -> String {
    "govfusion".to_owned()
}
fn default_partitions() -> u32 {
    6
}
fn default_memory_trim() -> bool {
    true
}
fn default_memory_unread_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_max_in_flight() -> usize {
    256
}
fn default_redelivery_backoff_ms() -> u64 {
    100
}
fn default_flow_retention_hours() -> u64 {
    // A week: ample for a redelivery, a re-drive or an operator's look at a case's records.
    168
}

fn default_max_record_bytes() -> u64 {
    // librdkafka's default `message.max.bytes` (a broker's default is 1,048,588: this fits).
    1_000_000
}

/// Room a record needs beyond the request body it carries, in bytes: the envelope's fields
/// (message id, type, case id, source, target, time, trace id, schema), the application's
/// fields the intake system adds (case id, terminal, channel, time of submission), the record's
/// key and its headers (the W3C `traceparent` among them). Measured at about 1.05 KiB with
/// codes of 64 characters (the test `an_applications_record_adds_less_than_the_envelope_overhead`
/// in `bus::bridge`); over twice that leaves room for longer codes. Re-encoding can also make a body longer (a number written `1e15`
/// comes back as `1000000000000000.0`); the intake system's own size check catches that one
/// ([`BusSettings::max_application_bytes`]) before any case exists.
pub const ENVELOPE_OVERHEAD_BYTES: u64 = 2560;

/// The smallest `bus.max_record_bytes`: librdkafka refuses a `message.max.bytes` below it.
pub const MIN_RECORD_BYTES: u64 = 1_000;

impl BusSettings {
    /// `flow_retention_hours` as the flow topics' `retention.ms`.
    pub fn flow_retention_ms(&self) -> i64 {
        i64::try_from(self.flow_retention_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX)
    }

    /// `flow_retention_hours` as how long a system remembers a case it closed.
    pub fn flow_retention(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.flow_retention_ms())
    }

    /// The largest request body whose record fits on the bus: `max_record_bytes` less
    /// [`ENVELOPE_OVERHEAD_BYTES`]. `http.max_body_bytes` must not exceed it.
    pub fn max_carried_body_bytes(&self) -> u64 {
        self.max_record_bytes
            .saturating_sub(ENVELOPE_OVERHEAD_BYTES)
    }

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
    /// How many intake processes the city runs (README, "Running across several machines").
    /// Each issues the case ids of its share of the partitions, feeds them and builds their
    /// views; all serve every case from the case repository, which must then be PostgreSQL.
    pub intake_instances: u32,
    /// Which of the `intake_instances` this process is, from 0 (e.g.
    /// `GOVFUSION__SERVICE__INTAKE_INSTANCE=1`).
    pub intake_instance: u32,
    /// With several intake processes, the city centre's process reads each one's feed: the
    /// base URL of instance 0, 1, … in that order.
    pub intake_feed_urls: Vec<String>,
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
            intake_instances: 1,
            intake_instance: 0,
            intake_feed_urls: Vec::new(),
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

/// `[bridge]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Most records sent to the bus in one batch.
    pub batch_max_records: usize,
    /// How long a batch may wait for more records before it is sent, in milliseconds. With 0 a
    /// batch goes at once, with the publishes that arrived together.
    pub linger_ms: u64,
    /// Most records on their way to the bus (handed over, not yet acknowledged) at once; below
    /// the producer's local queue (`queue.buffering.max.messages`, 100,000 by default). On a
    /// bus that cannot keep the order of what is in flight, one batch is.
    pub max_in_flight_records: usize,
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
            max_in_flight_records: 20_000,
            retry_initial_backoff_ms: 10,
            retry_max_backoff_ms: 2000,
            retry_max_attempts: 10,
            refused_unready_ms: 30_000,
        }
    }
}
