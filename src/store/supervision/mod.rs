//! What the supervision system keeps, in the case repository: one row per supervised case
//! ([`SupervisedCaseRow`]), one per dispatch of a collaboration event to a department
//! ([`AssignmentRow`], with the centres of its route), one per message applied to a case's
//! records ([`AppliedMessage`]), the figures' counts over them ([`tally`]), and the records
//! read back ([`read`]).
//!
//! The supervisor hands a record's row to the [`CaseWriter`](super::CaseWriter) after every
//! change; the writer writes the latest row of each record ([`SupervisionBatch`]) in the same
//! transaction as the case rows of its batch. Each row is the record as it now stands, so a
//! later write replaces it whole, and writing it again changes nothing.
//!
//! # Layout
//!
//! * this file — the rows, and their upserts on a [`CaseTx`].
//! * [`tally`] — the figures' counts and sorted handling times, by SQL.
//! * [`read`] — one case's records, or every open case's, read back for the supervisor.

pub mod read;
pub mod tally;

pub use read::SupervisedRecords;
pub use tally::{CentreTally, DepartmentTally, FigureScope, Tally};

use super::tx::on_engine_tx;
use super::{CaseTx, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{HashMap, HashSet};

/// A supervised case: its deadline, its clock, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisedCaseRow {
    /// Case id.
    pub case_id: String,
    /// The case's trace id.
    pub trace_id: String,
    /// The department that accepted it.
    pub department: String,
    /// When it was accepted: its clock starts here.
    pub accepted_at: DateTime<Utc>,
    /// The city's local date of `accepted_at`: what a period selects on.
    pub accepted_on: NaiveDate,
    /// The promised deadline, moved on by every resumption.
    pub due_by: DateTime<Utc>,
    /// Set while it is suspended.
    pub suspended_since: Option<DateTime<Utc>>,
    /// Working hours of the suspensions that ended.
    pub paused_hours: f64,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Working hours from acceptance to decision, less `paused_hours` (never below zero);
    /// none until decided.
    pub handling_hours: Option<f64>,
    /// The applicant's score, 1–5, once rated.
    pub rating: Option<u8>,
    /// A yellow warning was raised.
    pub warned_yellow: bool,
    /// A red warning was raised.
    pub warned_red: bool,
}

/// One dispatch of an event to one department: the first, and one more per return.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentRow {
    /// The event.
    pub event_id: String,
    /// Returns before this dispatch: 0 for the first.
    pub dispatch: i64,
    /// The case the event helps.
    pub case_id: String,
    /// The case's trace id.
    pub trace_id: String,
    /// The department it was dispatched to.
    pub department: String,
    /// The centre that dispatched it to the department.
    pub dispatched_by: String,
    /// Every centre on its route, from the city down.
    pub route: Vec<String>,
    /// When it was dispatched: its clock starts here.
    pub dispatched_at: DateTime<Utc>,
    /// The city's local date of `dispatched_at`: what a period selects on.
    pub dispatched_on: NaiveDate,
    /// Its deadline, moved by approved extensions.
    pub deadline: DateTime<Utc>,
    /// Extensions granted.
    pub extensions: u32,
    /// When the department answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// Working hours from dispatch to answer; none until answered.
    pub handling_hours: Option<f64>,
    /// The department returned it (退单).
    pub returned: bool,
    /// A yellow warning was raised for the current deadline.
    pub warned_yellow: bool,
    /// A red warning was raised for the current deadline.
    pub warned_red: bool,
    /// The centre it was escalated to (督办), once it was.
    pub escalated_to: Option<String>,
}

/// A message applied to a case's supervision records: kept so that a repeat of it, met after
/// the case left the supervisor's memory, is recognised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppliedMessage {
    /// The case.
    pub case_id: String,
    /// The message's id.
    pub message_id: String,
}

/// A supervision record's row, as the supervisor hands it to the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisionRow {
    /// A supervised case.
    Case(SupervisedCaseRow),
    /// A dispatch of an event.
    Assignment(AssignmentRow),
    /// A message applied to a case's records.
    Applied(AppliedMessage),
}

impl SupervisionRow {
    /// What the row is of, for logs.
    pub fn key(&self) -> String {
        match self {
            Self::Case(row) => row.case_id.clone(),
            Self::Assignment(row) => format!("{}#{}", row.event_id, row.dispatch),
            Self::Applied(row) => format!("{}@{}", row.message_id, row.case_id),
        }
    }
}

/// The latest row of every supervision record changed since the last write.
#[derive(Debug, Default)]
pub struct SupervisionBatch {
    /// Cases by case id.
    cases: HashMap<String, SupervisedCaseRow>,
    /// Dispatches by event id and dispatch number.
    assignments: HashMap<(String, i64), AssignmentRow>,
    /// Messages applied.
    applied: HashSet<AppliedMessage>,
}

impl SupervisionBatch {
    /// Keeps `row`, replacing an earlier row of the same record.
    pub fn add(&mut self, row: SupervisionRow) {
        match row {
            SupervisionRow::Case(row) => {
                self.cases.insert(row.case_id.clone(), row);
            }
            SupervisionRow::Assignment(row) => {
                let key = (row.event_id.clone(), row.dispatch);
                self.assignments.insert(key, row);
            }
            SupervisionRow::Applied(row) => {
                self.applied.insert(row);
            }
        }
    }

    /// How many rows wait.
    pub fn len(&self) -> usize {
        self.cases.len() + self.assignments.len() + self.applied.len()
    }

    /// No row waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every row through `tx`.
    pub async fn write_in(&self, tx: &mut CaseTx) -> Result<(), StoreError> {
        for row in self.cases.values() {
            tx.upsert_supervised_case(row).await?;
        }
        for row in self.assignments.values() {
            tx.upsert_assignment(row).await?;
        }
        for row in &self.applied {
            tx.insert_applied(row).await?;
        }
        Ok(())
    }

    /// Forgets every row (once written).
    pub fn clear(&mut self) {
        self.cases.clear();
        self.assignments.clear();
        self.applied.clear();
    }
}

/// Writes a supervised case, replacing the row of the same case id.
const UPSERT_SUPERVISED_CASE: &str = "\
    INSERT INTO supervision_cases (case_id, trace_id, department, accepted_at_us, accepted_on, \
        due_by_us, suspended_since_us, paused_hours, decided_at_us, handling_hours, rating, \
        warned_yellow, warned_red) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
    ON CONFLICT (case_id) DO UPDATE SET \
        trace_id = excluded.trace_id, department = excluded.department, \
        accepted_at_us = excluded.accepted_at_us, accepted_on = excluded.accepted_on, \
        due_by_us = excluded.due_by_us, suspended_since_us = excluded.suspended_since_us, \
        paused_hours = excluded.paused_hours, decided_at_us = excluded.decided_at_us, \
        handling_hours = excluded.handling_hours, rating = excluded.rating, \
        warned_yellow = excluded.warned_yellow, warned_red = excluded.warned_red";

/// Writes a dispatch, replacing the row of the same event and dispatch number.
const UPSERT_ASSIGNMENT: &str = "\
    INSERT INTO supervision_assignments (event_id, dispatch, case_id, trace_id, department, \
        dispatched_by, dispatched_at_us, dispatched_on, deadline_us, extensions, answered_at_us, \
        handling_hours, returned, warned_yellow, warned_red, escalated_to) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
    ON CONFLICT (event_id, dispatch) DO UPDATE SET \
        case_id = excluded.case_id, trace_id = excluded.trace_id, \
        department = excluded.department, dispatched_by = excluded.dispatched_by, \
        dispatched_at_us = excluded.dispatched_at_us, dispatched_on = excluded.dispatched_on, \
        deadline_us = excluded.deadline_us, extensions = excluded.extensions, \
        answered_at_us = excluded.answered_at_us, handling_hours = excluded.handling_hours, \
        returned = excluded.returned, warned_yellow = excluded.warned_yellow, \
        warned_red = excluded.warned_red, escalated_to = excluded.escalated_to";

/// Records a centre on a dispatch's route; a dispatch's route never changes once known.
const INSERT_ROUTE_HOP: &str = "\
    INSERT INTO supervision_routes (event_id, dispatch, centre, hop) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (event_id, dispatch, centre) DO NOTHING";

/// Records a message applied to a case's records; applied again, it is there already.
const INSERT_APPLIED: &str = "\
    INSERT INTO supervision_messages (case_id, message_id) VALUES ($1, $2) \
    ON CONFLICT (case_id, message_id) DO NOTHING";

/// A time as the database holds it: microseconds since the Unix epoch.
fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

impl CaseTx {
    /// Writes `row`, replacing what the repository held for its case.
    pub async fn upsert_supervised_case(
        &mut self,
        row: &SupervisedCaseRow,
    ) -> Result<(), StoreError> {
        on_engine_tx!(&mut self.inner, tx => {
            sqlx::query(UPSERT_SUPERVISED_CASE)
                .bind(&row.case_id)
                .bind(&row.trace_id)
                .bind(&row.department)
                .bind(micros(row.accepted_at))
                .bind(row.accepted_on)
                .bind(micros(row.due_by))
                .bind(row.suspended_since.map(micros))
                .bind(row.paused_hours)
                .bind(row.decided_at.map(micros))
                .bind(row.handling_hours)
                .bind(row.rating.map(i16::from))
                .bind(row.warned_yellow)
                .bind(row.warned_red)
                .execute(&mut **tx)
                .await
                .map(drop)?
        });
        Ok(())
    }

    /// Writes `row` and its route, replacing what the repository held for its dispatch.
    pub async fn upsert_assignment(&mut self, row: &AssignmentRow) -> Result<(), StoreError> {
        on_engine_tx!(&mut self.inner, tx => {
            sqlx::query(UPSERT_ASSIGNMENT)
                .bind(&row.event_id)
                .bind(row.dispatch)
                .bind(&row.case_id)
                .bind(&row.trace_id)
                .bind(&row.department)
                .bind(&row.dispatched_by)
                .bind(micros(row.dispatched_at))
                .bind(row.dispatched_on)
                .bind(micros(row.deadline))
                .bind(i64::from(row.extensions))
                .bind(row.answered_at.map(micros))
                .bind(row.handling_hours)
                .bind(row.returned)
                .bind(row.warned_yellow)
                .bind(row.warned_red)
                .bind(&row.escalated_to)
                .execute(&mut **tx)
                .await
                .map(drop)?
        });
        for (hop, centre) in (0_i64..).zip(&row.route) {
            on_engine_tx!(&mut self.inner, tx => {
                sqlx::query(INSERT_ROUTE_HOP)
                    .bind(&row.event_id)
                    .bind(row.dispatch)
                    .bind(centre)
                    .bind(hop)
                    .execute(&mut **tx)
                    .await
                    .map(drop)?
            });
        }
        Ok(())
    }

    /// Records that `row`'s message was applied to its case's records.
    pub async fn insert_applied(&mut self, row: &AppliedMessage) -> Result<(), StoreError> {
        on_engine_tx!(&mut self.inner, tx => {
            sqlx::query(INSERT_APPLIED)
                .bind(&row.case_id)
                .bind(&row.message_id)
                .execute(&mut **tx)
                .await
                .map(drop)?
        });
        Ok(())
    }
}
