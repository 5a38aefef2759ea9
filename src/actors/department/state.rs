//! What a department remembers about a case, and how it writes that to the state topic and
//! reads it back ([`KeepsState`]), so that a restarted process picks up open work.

use super::Department;
use crate::actors::{KeepsState, Versions};
use crate::domain::{
    Application, ApprovalStep, CaseId, CollaborationEvent, CollaborationResult, EventId, Receipt,
    TraceId,
};
use crate::maps::Set;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a case stands at the department.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Stage {
    /// Waiting for `collaboration.completed`.
    Collaborating,
    /// Waiting for staff (manual departments).
    AwaitingDecision,
    /// Waiting for the applicant's supplementary materials; the clock is stopped.
    Suspended {
        /// Which suspension of the case.
        sequence: u32,
        /// When the clock stopped.
        since: DateTime<Utc>,
    },
    /// Decided; the approval is published.
    Decided,
}

/// A case the department accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DeptCase {
    /// The application, with any materials supplied since.
    pub(super) application: Application,
    /// The trace the case's messages carry.
    pub(super) trace_id: TraceId,
    /// The receipt issued, with the current due date.
    pub(super) receipt: Receipt,
    /// Required materials the application still lacks.
    pub(super) missing: Vec<String>,
    /// The approval's steps so far.
    pub(super) steps: Vec<ApprovalStep>,
    /// The collaborators' answers, once collaboration completed.
    pub(super) results: Vec<CollaborationResult>,
    /// Where the case stands.
    pub(super) stage: Stage,
    /// Suspensions so far.
    pub(super) suspensions: u32,
}

impl DeptCase {
    /// Adds `step` to the approval's steps. They grow one at a time: a case takes a few steps
    /// while it is open, and a vector's growth would double its room.
    pub(super) fn add_step(&mut self, step: ApprovalStep) {
        self.steps.reserve_exact(1);
        self.steps.push(step);
    }
}

/// A collaboration event waiting for staff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PendingEvent {
    /// The event, with its current deadline.
    pub(super) event: CollaborationEvent,
    /// The trace the event's messages carry.
    pub(super) trace_id: TraceId,
    /// Whether staff signed for it.
    pub(super) signed: bool,
    /// Extension requests sent so far.
    pub(super) extension_requests: u32,
    /// Whether an extension request waits for the centre's decision.
    pub(super) extension_pending: bool,
}

/// How staff closed a collaboration event. Serialised as `answered` / `returned`: the words
/// snapshots on the state topic have always held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ClosedAs {
    /// Staff answered it.
    Answered,
    /// Staff returned it as not theirs.
    Returned,
}

impl fmt::Display for ClosedAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClosedAs::Answered => "answered",
            ClosedAs::Returned => "returned",
        })
    }
}

/// The event an attempt key (`<event id>` or `<event id>/r<returns>`, see
/// [`message_ids::attempt_key`](crate::domain::message_ids::attempt_key)) belongs to.
pub(super) fn event_of_attempt(key: &str) -> &str {
    // `split` always yields at least one piece, so the fallback is never taken.
    key.split('/').next().unwrap_or(key)
}

/// What a department remembers about one case (its `state.snapshot`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepartmentCaseState {
    /// The case, if the department accepted it.
    case: Option<DeptCase>,
    /// Its collaboration events waiting for staff.
    events: Vec<PendingEvent>,
    /// Its events staff finished: attempt key and how.
    closed: Vec<(String, ClosedAs)>,
}

impl KeepsState for Department {
    type CaseState = DepartmentCaseState;

    fn persists(&self) -> bool {
        self.persist_state
    }

    fn versions(&mut self) -> &mut Versions {
        &mut self.versions
    }

    fn closed_states(&self) -> Option<&crate::store::ClosedStates> {
        self.closed_states.as_ref()
    }

    fn case_state(&self, case_id: &CaseId) -> Option<DepartmentCaseState> {
        let state = DepartmentCaseState {
            case: self.cases.get(case_id).map(|case| DeptCase::clone(case)),
            events: self.events.of_case(case_id).cloned().collect(),
            closed: self.closed.of_case(case_id).to_vec(),
        };
        (state.case.is_some() || !state.events.is_empty() || !state.closed.is_empty())
            .then_some(state)
    }

    /// A case is finished at the department when its own case, if it took one, is decided
    /// (its approval, approving or rejecting, is published), and no collaboration event of the
    /// case waits for its staff.
    fn finished(&self, case_id: &CaseId) -> bool {
        let decided = self
            .cases
            .get(case_id)
            .is_none_or(|case| matches!(case.stage, Stage::Decided));
        decided && !self.events.has_case(case_id)
    }

    /// Events staff finished stay listed until the closed case is forgotten: staff acting on
    /// one again are told it is finished, and the same answer again answers the same.
    fn forget_case(&mut self, case_id: &CaseId) {
        self.cases.remove(case_id);
        self.events.remove_case(case_id);
    }

    fn open_cases(&self) -> usize {
        let mut open: Set<&CaseId> = self.cases.keys().collect();
        open.extend(self.events.cases());
        open.len()
    }

    fn forget_closed(&mut self, case_ids: &[CaseId]) {
        self.acts.forget_cases(case_ids);
        let me = &self.settings.code;
        for case_id in case_ids {
            for event_id in self.closed.forget(case_id) {
                self.event_index
                    .remove_if(&event_id, |_, holder| holder == me);
            }
        }
    }

    /// A case whose applicant the department could not show its staff is refused.
    fn check_restored(&self, state: &DepartmentCaseState) -> Result<(), String> {
        match &state.case {
            Some(case) => case
                .application
                .check_sealed(&self.catalog.keyring)
                .map_err(|e| format!("the applicant of case {}: {e}", case.application.case_id)),
            None => Ok(()),
        }
    }

    fn restore_case(&mut self, case_id: &CaseId, state: DepartmentCaseState) {
        match state.case {
            Some(case) => self.cases.insert(case_id.clone(), Box::new(case)),
            None => self.cases.remove(case_id),
        };
        self.events.remove_case(case_id);
        for pending in state.events {
            self.event_index
                .insert(pending.event.event_id.clone(), self.settings.code.clone());
            self.events.insert(pending);
        }
        // The HTTP API finds a finished event's department through the index too, so that
        // staff acting on it again are told it is finished rather than unknown.
        for (key, how) in state.closed {
            self.event_index.insert(
                EventId::from_string(event_of_attempt(&key)),
                self.settings.code.clone(),
            );
            self.closed.insert(case_id, key, how);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClosedAs;

    #[test]
    fn how_an_event_was_closed_keeps_the_words_snapshots_have_always_held() {
        // Arrange: snapshots written before this was an enum held these strings.
        let written = r#"["answered","returned"]"#;

        // Act
        let read: Vec<ClosedAs> = serde_json::from_str(written).unwrap();
        let rewritten = serde_json::to_string(&read).unwrap();

        // Assert
        assert_eq!(read, [ClosedAs::Answered, ClosedAs::Returned]);
        assert_eq!(rewritten, written);
        assert_eq!(ClosedAs::Answered.to_string(), "answered");
        assert_eq!(ClosedAs::Returned.to_string(), "returned");
    }
}
