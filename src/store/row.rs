//! [`CaseRow`]: one case as the repository keeps it.

use super::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::types::Json;

/// The columns every query reads, in [`Record`]'s order.
pub(super) const COLUMNS: &str = "case_id, owner, terminal_id, matter_code, department, status, \
                                  submitted_at_us, updated_at_us, revision, trace_id, view, trail";

/// One case: the columns a query filters and orders on, and the whole view as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    /// Case id.
    pub case_id: String,
    /// The applicant's account, when the application was made signed in.
    pub owner: Option<String>,
    /// The terminal it was submitted from.
    pub terminal_id: String,
    /// The matter (事项) applied for.
    pub matter_code: String,
    /// The responsible department, once the application is accepted.
    pub department: Option<String>,
    /// Where the case stands, as its JSON name (`submitted`, `accepted`, …).
    pub status: String,
    /// When the application was submitted. Kept to the microsecond, as both engines keep it.
    pub submitted_at: DateTime<Utc>,
    /// When the case last changed. Kept to the microsecond.
    pub updated_at: DateTime<Utc>,
    /// Rises with every change to the case: a write never replaces a newer revision.
    pub revision: i64,
    /// The trace id every message of the case carries.
    pub trace_id: String,
    /// The whole case view.
    pub view: JsonText,
    /// The messages of the case's current step while it is open (for a re-drive), none
    /// once it is completed.
    pub trail: Option<JsonText>,
}

/// A row's JSON (the case view, the current step's messages) as text, serialized once: the
/// repository stores it as it is, and the intake system hands a case's row to the writer after
/// every change, of which a batch writes only the last — a tree of JSON values built for each
/// would be built mostly to be dropped, and held meanwhile at several times the text's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonText(Box<RawValue>);

impl JsonText {
    /// `value` serialized.
    pub fn of(value: &impl Serialize) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON read as `T`.
    pub fn read<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

/// Two texts are equal when they hold the same JSON, however it is spaced or its keys ordered
/// (PostgreSQL's `jsonb` orders them its own way).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        match (
            self.read::<serde_json::Value>(),
            other.read::<serde_json::Value>(),
        ) {
            (Ok(mine), Ok(theirs)) => mine == theirs,
            _ => self.get() == other.get(),
        }
    }
}

impl CaseRow {
    /// `submitted_at` as the database holds it: microseconds since the Unix epoch.
    pub(super) fn submitted_at_us(&self) -> i64 {
        self.submitted_at.timestamp_micros()
    }

    /// `updated_at` as the database holds it: microseconds since the Unix epoch.
    pub(super) fn updated_at_us(&self) -> i64 {
        self.updated_at.timestamp_micros()
    }
}

/// A row as the database gives it, before its times are read back.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Record {
    /// Case id.
    case_id: String,
    /// The applicant's account.
    owner: Option<String>,
    /// The terminal.
    terminal_id: String,
    /// The matter.
    matter_code: String,
    /// The responsible department.
    department: Option<String>,
    /// The status.
    status: String,
    /// Submitted, in microseconds since the epoch.
    pub(super) submitted_at_us: i64,
    /// Last changed, in microseconds since the epoch.
    updated_at_us: i64,
    /// The revision.
    revision: i64,
    /// The trace id.
    trace_id: String,
    /// The view.
    view: Json<JsonText>,
    /// The current step's messages.
    trail: Option<Json<JsonText>>,
}

/// The time `micros` microseconds after the epoch, or why `case_id`'s row cannot hold it.
pub(super) fn time(case_id: &str, column: &str, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::Corrupt {
        case_id: case_id.to_owned(),
        what: format!("{column} = {micros}, not a time"),
    })
}

impl TryFrom<Record> for CaseRow {
    type Error = StoreError;

    fn try_from(record: Record) -> Result<Self, StoreError> {
        let submitted_at = time(&record.case_id, "submitted_at_us", record.submitted_at_us)?;
        let updated_at = time(&record.case_id, "updated_at_us", record.updated_at_us)?;
        Ok(Self {
            case_id: record.case_id,
            owner: record.owner,
            terminal_id: record.terminal_id,
            matter_code: record.matter_code,
            department: record.department,
            status: record.status,
            submitted_at,
            updated_at,
            revision: record.revision,
            trace_id: record.trace_id,
            view: record.view.0,
            trail: record.trail.map(|trail| trail.0),
        })
    }
}

/// The statuses after which nothing changes a case any more but its rating: a case in any
/// other status is open.
pub const CLOSED_STATUSES: [&str; 2] = ["completed", "failed"];
