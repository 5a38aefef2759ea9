//! The periodic deadline check: yellow and red warnings for cases and for events, escalation
//! (督办) of events unanswered at their deadline. Each is marked raised before it is published,
//! and unmarked if the publish fails, so the next check raises it again with the same id; its
//! record's row is handed on once it is published. Each check also lets the cases whose
//! supervision is over leave memory (see `resident`).

use super::messages::Check;
use super::records::{Assignment, CaseWatch, Warned};
use super::Supervisor;
use crate::actors::Sender;
use crate::catalog::Catalog;
use crate::domain::{
    message_ids, CaseId, Envelope, Escalation, EventId, MessageId, MessageType, SystemId, Warning,
    WarningLevel,
};
use crate::port::publish;
use actix::prelude::*;
use chrono::{DateTime, Utc};

impl Handler<Check> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Check, ctx: &mut Self::Context) -> Self::Result {
        self.let_over_cases_leave(ctx);
        // One check publishes at a time: a second one now would raise nothing new but could
        // unmark what the first is still publishing.
        if self.checking {
            return Box::pin(fut::ready(()));
        }
        let (outputs, raised) = self.check();
        if outputs.is_empty() {
            return Box::pin(fut::ready(()));
        }
        tracing::info!(
            count = outputs.len(),
            "deadline warnings and escalations raised"
        );
        self.checking = true;
        Box::pin(
            publish(&self.bridge, outputs)
                .into_actor(self)
                .map(|published, supervisor, _| {
                    supervisor.checking = false;
                    match published {
                        Ok(()) => supervisor.note_raised(&raised),
                        Err(error) => {
                            tracing::warn!(%error, "warnings not published; the next check raises them again");
                            supervisor.unraise(raised);
                        }
                    }
                    supervisor.hand_on_changes();
                }),
        )
    }
}

/// A warning or escalation raised by a check, to unmark if its publish fails.
enum Raised {
    /// A case's warning.
    Case(CaseId, WarningLevel),
    /// A warning of an event's dispatch after so many returns.
    Event(EventId, usize, WarningLevel),
    /// The escalation of an event's dispatch after so many returns.
    Escalation(EventId, usize),
}

/// What one check compares with: the clock, read once, and the rules.
struct Due<'a> {
    /// The time of the check.
    now: DateTime<Utc>,
    /// The share of working hours used that earns a yellow warning.
    yellow_at: f64,
    /// The calendar, the governance tree and the rules.
    catalog: &'a Catalog,
}

/// The dispatch of an event a check looks at, and where its messages belong.
struct Attempt<'a> {
    /// The event.
    event_id: &'a EventId,
    /// Returns before this dispatch.
    number: usize,
    /// The event's case: its messages are keyed by it.
    case_id: &'a CaseId,
    /// The case's trace id.
    trace_id: &'a str,
}

impl Supervisor {
    /// The warnings and escalations due now, marked as raised, with what to unmark if
    /// publishing them fails.
    fn check(&mut self) -> (Vec<Envelope>, Vec<Raised>) {
        // A clone of the `Arc`, so that `due` does not borrow `self` while the records change.
        let catalog = self.catalog.clone();
        let due = Due {
            now: catalog.now(),
            yellow_at: f64::from(catalog.supervision.yellow_at_percent) / 100.0,
            catalog: &catalog,
        };
        let mut raised: Vec<(Envelope, Raised)> = self
            .cases
            .iter_mut()
            .filter_map(|(case_id, case)| case_warning(&due, case_id, case))
            .collect();
        for (event_id, watch) in &mut self.events {
            let Some((number, Some(assignment))) =
                watch.assignments.iter_mut().enumerate().next_back()
            else {
                continue;
            };
            if !assignment.is_open() {
                continue;
            }
            let attempt = Attempt {
                event_id,
                number,
                case_id: &watch.case_id,
                trace_id: watch.trace_id.as_str(),
            };
            raised.extend(event_warning(&due, &attempt, assignment));
            raised.extend(escalation(&due, &attempt, assignment));
        }
        raised.into_iter().unzip()
    }

    /// Notes the records of published warnings and escalations as changed: their rows are
    /// handed on once they are on the bus (unless another change to the same record is handed
    /// on meanwhile), so that a restart after a crash before the publish raises them again,
    /// with the same ids, rather than never.
    fn note_raised(&mut self, raised: &[Raised]) {
        for item in raised {
            match item {
                Raised::Case(case_id, _) => self.case_changed(case_id),
                Raised::Event(event_id, ..) | Raised::Escalation(event_id, _) => {
                    self.event_changed(event_id)
                }
            }
        }
    }

    /// Forgets warnings and escalations whose publish failed, so the next check raises them
    /// again (with the same ids).
    fn unraise(&mut self, raised: Vec<Raised>) {
        for item in raised {
            match item {
                Raised::Case(case_id, level) => {
                    if let Some(case) = self.case_mut(&case_id) {
                        case.warned.remove(level);
                    }
                }
                Raised::Event(event_id, attempt, level) => {
                    if let Some(a) = self.assignment_mut(&event_id, attempt) {
                        a.warned.remove(level);
                    }
                }
                Raised::Escalation(event_id, attempt) => {
                    if let Some(a) = self.assignment_mut(&event_id, attempt) {
                        a.escalated_to = None;
                    }
                }
            }
        }
    }
}

/// The warning a case has earned now, if any: none while it is decided or suspended (its clock
/// is stopped).
fn case_warning(due: &Due, case_id: &CaseId, case: &mut CaseWatch) -> Option<(Envelope, Raised)> {
    if case.decided_at.is_some() || case.suspended_since.is_some() {
        return None;
    }
    let share = due.catalog.calendar.share_used_pausing(
        case.accepted_at,
        case.due_by,
        due.now,
        case.paused_hours,
    );
    let level = due_level(due.now, case.due_by, share, due.yellow_at, case.warned)?;
    case.warned.insert(level);
    let warning = Warning {
        level,
        event_id: None,
        department: case.department.clone(),
        due_by: case.due_by,
        share_used: share,
        raised_at: due.now,
    };
    Some((
        warning_envelope(
            message_ids::case_warning(case_id, level),
            case_id,
            case.trace_id.as_str(),
            &warning,
        ),
        Raised::Case(case_id.clone(), level),
    ))
}

/// The warning an open dispatch of an event has earned now, if any.
fn event_warning(
    due: &Due,
    attempt: &Attempt,
    assignment: &mut Assignment,
) -> Option<(Envelope, Raised)> {
    let share =
        due.catalog
            .calendar
            .share_used(assignment.dispatched_at, assignment.deadline, due.now);
    let level = due_level(
        due.now,
        assignment.deadline,
        share,
        due.yellow_at,
        assignment.warned,
    )?;
    assignment.warned.insert(level);
    let key = message_ids::attempt_key(attempt.event_id, attempt.number);
    let deadline_key = message_ids::deadline_key(&key, assignment.extensions);
    let warning = Warning {
        level,
        event_id: Some(attempt.event_id.clone()),
        department: assignment.department.clone(),
        due_by: assignment.deadline,
        share_used: share,
        raised_at: due.now,
    };
    Some((
        warning_envelope(
            message_ids::event_warning(&deadline_key, level),
            attempt.case_id,
            attempt.trace_id,
            &warning,
        ),
        Raised::Event(attempt.event_id.clone(), attempt.number, level),
    ))
}

/// The escalation of an open dispatch past its deadline, once: to the centre above the one
/// that dispatched it, or to the dispatching centre itself when none is above (the city).
fn escalation(
    due: &Due,
    attempt: &Attempt,
    assignment: &mut Assignment,
) -> Option<(Envelope, Raised)> {
    if due.now < assignment.deadline || assignment.escalated_to.is_some() {
        return None;
    }
    let to = due
        .catalog
        .centre(&assignment.dispatched_by)
        .and_then(|c| c.parent.clone())
        .unwrap_or_else(|| assignment.dispatched_by.clone());
    assignment.escalated_to = Some(to.clone());
    let escalation = Escalation {
        event_id: attempt.event_id.clone(),
        department: assignment.department.clone(),
        dispatched_by: assignment.dispatched_by.clone(),
        escalated_to: to.clone(),
        deadline: assignment.deadline,
        escalated_at: due.now,
    };
    let key = message_ids::attempt_key(attempt.event_id, attempt.number);
    let envelope = Sender::new(SystemId::Supervision, due.now).message(
        message_ids::escalated(&key),
        MessageType::CollaborationEscalated,
        attempt.case_id,
        SystemId::Governance(to),
        attempt.trace_id,
        &escalation,
    );
    Some((
        envelope,
        Raised::Escalation(attempt.event_id.clone(), attempt.number),
    ))
}

/// The warning due now, if one is and it was not raised yet: red once overdue, yellow once
/// `yellow_at` of the time is used. A red warning supersedes a yellow one not yet raised.
fn due_level(
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    share: f64,
    yellow_at: f64,
    warned: Warned,
) -> Option<WarningLevel> {
    if warned.contains(WarningLevel::Red) {
        return None;
    }
    if now >= deadline {
        return Some(WarningLevel::Red);
    }
    (share >= yellow_at && !warned.contains(WarningLevel::Yellow)).then_some(WarningLevel::Yellow)
}

/// A `supervision.warning` to the department that must act, stamped when it was raised.
fn warning_envelope(
    id: MessageId,
    case_id: &CaseId,
    trace_id: &str,
    warning: &Warning,
) -> Envelope {
    Sender::new(SystemId::Supervision, warning.raised_at).message(
        id,
        MessageType::SupervisionWarning,
        case_id,
        SystemId::Department(warning.department.clone()),
        trace_id,
        warning,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_supersedes_a_yellow_not_yet_raised_and_each_is_raised_once() {
        let deadline = Utc::now();
        let before = deadline - chrono::Duration::hours(1);
        let mut warned = Warned::default();
        assert_eq!(due_level(before, deadline, 0.5, 0.8, warned), None);
        assert_eq!(
            due_level(before, deadline, 0.85, 0.8, warned),
            Some(WarningLevel::Yellow)
        );
        warned.insert(WarningLevel::Yellow);
        assert_eq!(due_level(before, deadline, 0.9, 0.8, warned), None);
        assert_eq!(
            due_level(deadline, deadline, 1.0, 0.8, warned),
            Some(WarningLevel::Red)
        );
        warned.insert(WarningLevel::Red);
        assert_eq!(due_level(deadline, deadline, 1.0, 0.8, warned), None);
        warned.remove(WarningLevel::Red);
        assert_eq!(
            due_level(deadline, deadline, 1.0, 0.8, warned),
            Some(WarningLevel::Red),
            "a red warning whose publish failed is raised again"
        );
    }
}
