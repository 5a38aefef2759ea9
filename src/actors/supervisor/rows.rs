//! The case repository's rows of what the supervisor keeps, handed to the [`CaseWriter`] after
//! every change: after each message observed and after each deadline check.
//!
//! A row carries, besides the record, what the figures select and sum on and SQL cannot work
//! out: the city's local date the item was received, and its handling hours on the city's
//! working calendar (the very [`handling_hours`] the supervisor's own figures use).

use super::figures::handling_hours;
use super::records::{Assignment, CaseWatch, EventWatch};
use super::Supervisor;
use crate::calendar::WorkingCalendar;
use crate::domain::{CaseId, EventId, WarningLevel};
use crate::store::supervision::{AssignmentRow, SupervisedCaseRow};
use crate::store::{CaseWriter, SupervisionRow};
use std::collections::HashSet;

/// The records changed since their rows were last handed on.
#[derive(Debug, Default)]
pub(super) struct Changed {
    /// Cases by id.
    cases: HashSet<CaseId>,
    /// Events by id: every dispatch of a changed event is handed on.
    events: HashSet<EventId>,
}

impl Supervisor {
    /// The same supervisor, handing the rows of the records it changes to `writer`.
    pub fn writing_rows_to(mut self, writer: CaseWriter) -> Self {
        self.rows = Some(writer);
        self
    }

    /// Notes that the case `case_id` changed.
    pub(super) fn case_changed(&mut self, case_id: &CaseId) {
        if self.rows.is_some() {
            self.changed.cases.insert(case_id.clone());
        }
    }

    /// Notes that a dispatch of the event `event_id` changed.
    pub(super) fn event_changed(&mut self, event_id: &EventId) {
        if self.rows.is_some() {
            self.changed.events.insert(event_id.clone());
        }
    }

    /// Hands the rows of the records changed since the last call to the writer.
    pub(super) fn hand_on_changes(&mut self) {
        let changed = std::mem::take(&mut self.changed);
        let Some(writer) = &self.rows else {
            return;
        };
        let calendar = &self.catalog.calendar;
        for (case_id, case) in changed
            .cases
            .iter()
            .filter_map(|id| self.cases.get(id).map(|case| (id, case)))
        {
            writer.write_supervision(SupervisionRow::Case(case_row(calendar, case_id, case)));
        }
        for (event_id, watch) in changed
            .events
            .iter()
            .filter_map(|id| self.events.get(id).map(|watch| (id, watch)))
        {
            for (number, assignment) in watch.assignments.iter().enumerate() {
                if let Some(assignment) = assignment {
                    let row = assignment_row(calendar, event_id, watch, number, assignment);
                    writer.write_supervision(SupervisionRow::Assignment(row));
                }
            }
        }
    }
}

/// The row of a supervised case.
fn case_row(calendar: &WorkingCalendar, case_id: &CaseId, case: &CaseWatch) -> SupervisedCaseRow {
    SupervisedCaseRow {
        case_id: case_id.to_string(),
        trace_id: case.trace_id.clone(),
        department: case.department.to_string(),
        accepted_at: case.accepted_at,
        accepted_on: calendar.local_date(case.accepted_at),
        due_by: case.due_by,
        suspended_since: case.suspended_since,
        paused_hours: case.paused_hours,
        decided_at: case.decided_at,
        handling_hours: case
            .decided_at
            .map(|at| handling_hours(calendar, case.accepted_at, at, case.paused_hours)),
        rating: case.rating,
        warned_yellow: case.warned.contains(&WarningLevel::Yellow),
        warned_red: case.warned.contains(&WarningLevel::Red),
    }
}

/// The row of the dispatch of an event after `number` returns.
fn assignment_row(
    calendar: &WorkingCalendar,
    event_id: &EventId,
    watch: &EventWatch,
    number: usize,
    assignment: &Assignment,
) -> AssignmentRow {
    AssignmentRow {
        event_id: event_id.to_string(),
        // A vector's index is at most `isize::MAX`, which an `i64` holds on every platform
        // Rust supports.
        dispatch: number as i64,
        case_id: watch.case_id.to_string(),
        trace_id: watch.trace_id.clone(),
        department: assignment.department.to_string(),
        dispatched_by: assignment.dispatched_by.to_string(),
        route: assignment.route.iter().map(ToString::to_string).collect(),
        dispatched_at: assignment.dispatched_at,
        dispatched_on: calendar.local_date(assignment.dispatched_at),
        deadline: assignment.deadline,
        extensions: assignment.extensions,
        answered_at: assignment.answered_at,
        handling_hours: assignment
            .answered_at
            .map(|at| handling_hours(calendar, assignment.dispatched_at, at, 0.0)),
        returned: assignment.returned,
        warned_yellow: assignment.warned.contains(&WarningLevel::Yellow),
        warned_red: assignment.warned.contains(&WarningLevel::Red),
        escalated_to: assignment.escalated_to.as_ref().map(ToString::to_string),
    }
}
