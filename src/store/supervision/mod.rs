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

use super::tx::write_rows;
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
        tx.upsert_supervised_cases(&self.cases.values().collect::<Vec<_>>())
            .await?;
        tx.upsert_assignments(&self.assignments.values().collect::<Vec<_>>())
            .await?;
        tx.insert_applied(&self.applied.iter().collect::<Vec<_>>())
            .await
    }

    /// Forgets every row (once written).
    pub fn clear(&mut self) {
        self.cases.clear();
        self.assignments.clear();
        self.applied.clear();
    }
}

/// Writes supervised cases (the rows follow, of distinct case ids), each replacing the row of
/// the same case id.
const INSERT_SUPERVISED_CASES: &str = "\
    INSERT INTO supervision_cases (case_id, trace_id, department, accepted_at_us, accepted_on, \
        due_by_us, suspended_since_us, paused_hours, decided_at_us, handling_hours, rating, \
        warned_yellow, warned_red) ";
/// What follows [`INSERT_SUPERVISED_CASES`]'s rows.
const ON_SUPERVISED_CASE_CONFLICT: &str = " \
    ON CONFLICT (case_id) DO UPDATE SET \
        trace_id = excluded.trace_id, department = excluded.department, \
        accepted_at_us = excluded.accepted_at_us, accepted_on = excluded.accepted_on, \
        due_by_us = excluded.due_by_us, suspended_since_us = excluded.suspended_since_us, \
        paused_hours = excluded.paused_hours, decided_at_us = excluded.decided_at_us, \
        handling_hours = excluded.handling_hours, rating = excluded.rating, \
        warned_yellow = excluded.warned_yellow, warned_red = excluded.warned_red";

/// Writes dispatches (the rows follow, of distinct events and dispatch numbers), each replacing
/// the row of the same event and dispatch number.
const INSERT_ASSIGNMENTS: &str = "\
    INSERT INTO supervision_assignments (event_id, dispatch, case_id, trace_id, department, \
        dispatched_by, dispatched_at_us, dispatched_on, deadline_us, extensions, answered_at_us, \
        handling_hours, returned, warned_yellow, warned_red, escalated_to) ";
/// What follows [`INSERT_ASSIGNMENTS`]'s rows.
const ON_ASSIGNMENT_CONFLICT: &str = " \
    ON CONFLICT (event_id, dispatch) DO UPDATE SET \
        case_id = excluded.case_id, trace_id = excluded.trace_id, \
        department = excluded.department, dispatched_by = excluded.dispatched_by, \
        dispatched_at_us = excluded.dispatched_at_us, dispatched_on = excluded.dispatched_on, \
        deadline_us = excluded.deadline_us, extensions = excluded.extensions, \
        answered_at_us = excluded.answered_at_us, handling_hours = excluded.handling_hours, \
        returned = excluded.returned, warned_yellow = excluded.warned_yellow, \
        warned_red = excluded.warned_red, escalated_to = excluded.escalated_to";

/// Records centres on dispatches' routes (the rows follow); a dispatch's route never changes
/// once known.
const INSERT_ROUTE_HOPS: &str = "INSERT INTO supervision_routes (event_id, dispatch, centre, hop) ";
/// What follows [`INSERT_ROUTE_HOPS`]'s rows.
const ON_ROUTE_HOP_CONFLICT: &str = " ON CONFLICT (event_id, dispatch, centre) DO NOTHING";

/// Records messages applied to cases' records (the rows follow); applied again, one is there
/// already.
const INSERT_APPLIED: &str = "INSERT INTO supervision_messages (case_id, message_id) ";
/// What follows [`INSERT_APPLIED`]'s rows.
const ON_APPLIED_CONFLICT: &str = " ON CONFLICT (case_id, message_id) DO NOTHING";

/// A time as the database holds it: microseconds since the Unix epoch.
fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

impl CaseTx {
    /// Writes `rows` (of distinct cases), each replacing what the repository held for its case.
    pub async fn upsert_supervised_cases(
        &mut self,
        rows: &[&SupervisedCaseRow],
    ) -> Result<(), StoreError> {
        write_rows!(
            &mut self.inner,
            rows,
            INSERT_SUPERVISED_CASES,
            ON_SUPERVISED_CASE_CONFLICT,
            |values, row| {
                values
                    .push_bind(&row.case_id)
                    .push_bind(&row.trace_id)
                    .push_bind(&row.department)
                    .push_bind(micros(row.accepted_at))
                    .push_bind(row.accepted_on)
                    .push_bind(micros(row.due_by))
                    .push_bind(row.suspended_since.map(micros))
                    .push_bind(row.paused_hours)
                    .push_bind(row.decided_at.map(micros))
                    .push_bind(row.handling_hours)
                    .push_bind(row.rating.map(i16::from))
                    .push_bind(row.warned_yellow)
                    .push_bind(row.warned_red)
            }
        );
        Ok(())
    }

    /// Writes `rows` (of distinct dispatches) and their routes, each replacing what the
    /// repository held for its dispatch.
    pub async fn upsert_assignments(&mut self, rows: &[&AssignmentRow]) -> Result<(), StoreError> {
        write_rows!(
            &mut self.inner,
            rows,
            INSERT_ASSIGNMENTS,
            ON_ASSIGNMENT_CONFLICT,
            |values, row| {
                values
                    .push_bind(&row.event_id)
                    .push_bind(row.dispatch)
                    .push_bind(&row.case_id)
                    .push_bind(&row.trace_id)
                    .push_bind(&row.department)
                    .push_bind(&row.dispatched_by)
                    .push_bind(micros(row.dispatched_at))
                    .push_bind(row.dispatched_on)
                    .push_bind(micros(row.deadline))
                    .push_bind(i64::from(row.extensions))
                    .push_bind(row.answered_at.map(micros))
                    .push_bind(row.handling_hours)
                    .push_bind(row.returned)
                    .push_bind(row.warned_yellow)
                    .push_bind(row.warned_red)
                    .push_bind(&row.escalated_to)
            }
        );
        let hops: Vec<(&AssignmentRow, i64, &String)> = rows
            .iter()
            .flat_map(|row| {
                (0_i64..)
                    .zip(&row.route)
                    .map(move |(hop, centre)| (*row, hop, centre))
            })
            .collect();
        write_rows!(
            &mut self.inner,
            &hops,
            INSERT_ROUTE_HOPS,
            ON_ROUTE_HOP_CONFLICT,
            |values, (row, hop, centre)| {
                values
                    .push_bind(&row.event_id)
                    .push_bind(row.dispatch)
                    .push_bind(*centre)
                    .push_bind(*hop)
            }
        );
        Ok(())
    }

    /// Records that `rows`' messages were applied to their cases' records.
    pub async fn insert_applied(&mut self, rows: &[&AppliedMessage]) -> Result<(), StoreError> {
        write_rows!(
            &mut self.inner,
            rows,
            INSERT_APPLIED,
            ON_APPLIED_CONFLICT,
            |values, row| { values.push_bind(&row.case_id).push_bind(&row.message_id) }
        );
        Ok(())
    }
}
