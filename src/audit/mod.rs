//! The audit trail: who did what through the API, when, from where, to which case, and with
//! what result — one record per state-changing request (every `POST` under `/api/v1`, refused
//! or not) and per read that shows personal data in clear, on the append-only `<prefix>.audit`
//! topic.
//!
//! Tamper evidence: each process is one *writer* (a [`writer_id`] on every record) whose
//! records form a hash chain. A record carries its `seq` (1, 2, …), the `hash` of the writer's
//! previous record as `prev` ([`GENESIS`] for the first), and its own `hash`: SHA-256 over the
//! canonical JSON of the record without `hash` (keys sorted, no spaces). Altering, deleting or
//! reordering a record breaks the chain at that record, which [`verify`] reports. All records
//! of a writer are keyed by its id, so they share one partition, in order.
//!
//! Delivery: records go through the bridge like every other publish (so shutdown drains them);
//! one batch is out at a time, so the chain reaches the partition in order. A record the bus
//! never takes is logged as an error and counted ([`AuditStats::lost`]); the request it
//! describes is not failed for it, and verify later shows the gap.
//!
//! # Layout
//!
//! * `chain` — the canonical form, sealing a record into its writer's chain, and [`verify`].
//! * `trail` — the [`AuditTrail`] actor that seals records in arrival order and publishes them.
//! * `read` — reads the whole audit topic from a bus, for `govfusion audit verify`.
//!
//! What a request's record holds is decided by the HTTP layer (`http::audit`).

mod chain;
mod read;
mod trail;

pub use chain::{
    seal, verify, verify_with, BrokenLink, Link, Start, Summary, WriterSummary, GENESIS,
};
pub use read::{read_topic, verify_configured};
pub use trail::{writer_id, Audit, AuditDesk, AuditStats, AuditTrail, Flush};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// `anonymous` (no valid token), or the token's role: `applicant`, `terminal`, `officer`,
    /// `dispatcher`, `supervisor`, `operator`, `service`.
    pub role: String,
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The token's display name; never an applicant's, which is personal data.
    pub name: Option<String>,
    /// The terminal, department or centre the role is scoped to.
    pub scope: Option<String>,
}

impl Who {
    /// A caller without a valid token.
    pub fn anonymous() -> Self {
        Self {
            role: "anonymous".into(),
            subject: None,
            name: None,
            scope: None,
        }
    }
}

/// The ids a request was about: from its path, and a new submission's case id from the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// The case.
    pub case_id: Option<String>,
    /// The collaboration event.
    pub event_id: Option<String>,
    /// The department.
    pub department: Option<String>,
    /// The governance centre.
    pub centre: Option<String>,
    /// The terminal.
    pub terminal: Option<String>,
}

/// What one audit record says about one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the answer was given (UTC).
    pub at: DateTime<Utc>,
    /// Who asked.
    pub who: Who,
    /// The address it came from: the connection's peer, or the trusted proxy's
    /// `X-Forwarded-For` (`audit.trust_forwarded_for`).
    pub from: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The route pattern, e.g. `/api/v1/departments/{code}/cases/{case_id}/decision`; `None`
    /// when no endpoint serves the path.
    pub route: Option<String>,
    /// What was asked, e.g. `case.decide`.
    pub action: String,
    /// Which case, event, department, centre, terminal.
    pub ids: Ids,
    /// The answer's HTTP status.
    pub status: u16,
    /// The answer's error code (`forbidden`, `invalid_field`, …) when it was refused.
    pub error: Option<String>,
}

/// An audit record as it is on the topic: an [`Entry`] sealed into its writer's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The writing process.
    pub writer: String,
    /// Its place in the writer's chain, from 1.
    pub seq: u64,
    /// The `hash` of the writer's previous record, or [`GENESIS`].
    pub prev: String,
    /// What happened.
    #[serde(flatten)]
    pub entry: Entry,
    /// SHA-256 (lowercase hex) of the canonical form of this record without `hash`.
    pub hash: String,
}
