//! The case repository's rows of what the supervisor keeps, handed to the [`CaseWriter`] after
//! every change: after each message applied (with the message's id) and after each deadline
//! check whose warnings are published; and the records rebuilt from those rows when a case is
//! taken back or read back.
//!
//! A row carries, besides the record, what the figures select and sum on and SQL cannot work
//! out: the city's local date the item was received, and its handling hours on the city's
//! working calendar (the very [`handling_hours`] the supervisor's own figures use).

use super::figures::handling_hours;
use super::records::{Assignment, CaseWatch, EventWatch, Warned};
use super::Supervisor;
use crate::calendar::WorkingCalendar;
use crate::domain::{
    CaseId, CentreCode, DepartmentCode, Envelope, EventId, MessageId, TraceId, WarningLevel,
};
use crate::maps::{FewIds, Map, Set};
use crate::store::supervision::{AppliedMessage, AssignmentRow, SupervisedCaseRow};
use crate::store::{CaseWriter, SupervisionRow};

/// The records changed since their rows were last handed on.
#[derive(Debug, Default)]
pub(super) struct Changed {
    /// Cases by id.
    cases: Set<CaseId>,
    /// Events by id: every dispatch of a changed event is handed on.
    events: Set<EventId>,
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

    /// Hands on that `envelope` was applied to its case's records, so that a repeat met after
    /// the case left memory is recognised.
    pub(super) fn note_applied(&mut self, envelope: &Envelope) {
        if let Some(writer) = &self.rows {
            writer.write_supervision(SupervisionRow::Applied(AppliedMessage {
                case_id: envelope.case_id.to_string(),
                message_id: envelope.id.to_string(),
            }));
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
        trace_id: case.trace_id.to_string(),
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
        warned_yellow: case.warned.contains(WarningLevel::Yellow),
        warned_red: case.warned.contains(WarningLevel::Red),
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
        trace_id: watch.trace_id.to_string(),
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
        warned_yellow: assignment.warned.contains(WarningLevel::Yellow),
        warned_red: assignment.warned.contains(WarningLevel::Red),
        escalated_to: assignment.escalated_to.as_ref().map(ToString::to_string),
    }
}

/// The ids of the messages `rows` say were applied.
pub(super) fn applied_ids(rows: &[String]) -> FewIds<MessageId> {
    rows.iter().map(MessageId::from_string).collect()
}

/// A supervised case as its row holds it.
pub(super) fn case_watch(row: &SupervisedCaseRow) -> CaseWatch {
    CaseWatch {
        department: DepartmentCode::from_string(&row.department),
        trace_id: TraceId::from(row.trace_id.as_str()),
        accepted_at: row.accepted_at,
        due_by: row.due_by,
        suspended_since: row.suspended_since,
        paused_hours: row.paused_hours,
        decided_at: row.decided_at,
        warned: Warned::from_flags(row.warned_yellow, row.warned_red),
        rating: row.rating,
    }
}

/// The events of `rows`, each with its dispatches at their numbers (a number no row holds
/// stays an empty slot, as when no message of that dispatch was seen).
pub(super) fn event_watches(rows: &[AssignmentRow]) -> Map<EventId, EventWatch> {
    let mut events: Map<EventId, EventWatch> = Map::default();
    for row in rows {
        let Ok(number) = usize::try_from(row.dispatch) else {
            tracing::error!(event_id = %row.event_id, dispatch = row.dispatch, "the case repository holds a dispatch number below zero; left out");
            continue;
        };
        let watch = events
            .entry(EventId::from_string(&row.event_id))
            .or_insert_with(|| EventWatch {
                case_id: CaseId::from_string(&row.case_id),
                trace_id: TraceId::from(row.trace_id.as_str()),
                assignments: Vec::new(),
            });
        *watch.slot(number) = Some(assignment(row));
    }
    events
}

/// A dispatch as its row holds it.
fn assignment(row: &AssignmentRow) -> Assignment {
    Assignment {
        department: DepartmentCode::from_string(&row.department),
        dispatched_by: CentreCode::from_string(&row.dispatched_by),
        route: row.route.iter().map(CentreCode::from_string).collect(),
        dispatched_at: row.dispatched_at,
        deadline: row.deadline,
        extensions: row.extensions,
        answered_at: row.answered_at,
        returned: row.returned,
        warned: Warned::from_flags(row.warned_yellow, row.warned_red),
        escalated_to: row.escalated_to.as_ref().map(CentreCode::from_string),
    }
}
