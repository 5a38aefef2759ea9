//! The case as the applicant sees it: what GET /cases/{id} answers and what a terminal shows.
//!
//! The intake system builds it from the bus messages it follows (see `observe.rs`). Topics are
//! read independently, so a view must come out the same whatever order its messages arrive in:
//! hence an event's [`Progress`], which never moves back.

use crate::crypto::{CryptoError, Keyring};
use crate::domain::{
    message_ids, Application, Approval, CaseId, CaseStatus, CollaborationOutcome, EventReturn,
    EventStatus, HistoryStep, MessageId, Officer, Party, Rating, Receipt, StepKind, Suspension,
    SystemId, Tier, Warning,
};
use crate::domain::{Applicant, SealedApplicant};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A case as the applicant sees it. The intake system keeps it with the applicant sealed, as
/// the bus brought it; [`CaseView::opened`] is the view with the applicant in clear.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    description = "A case as the people with a part in it see it: where it stands, its \
    application, receipt, collaboration events, approval, warnings, rating and history."
)]
pub struct CaseView<A = SealedApplicant> {
    /// Case id.
    pub case_id: CaseId,
    /// Where the case stands.
    pub status: CaseStatus,
    /// The application.
    pub application: Application<A>,
    /// The receipt, once accepted.
    pub receipt: Option<Receipt>,
    /// Collaboration events, in dispatch order.
    pub collaboration_events: Vec<EventView>,
    // Boxed, as are the suspension and the rating: most cases in memory are open and have none
    // of the three, and a view is kept for each case.
    /// The approval, once decided.
    pub approval: Option<Box<Approval>>,
    /// Whether it was decided by the receipt's due date, once decided.
    pub on_time: Option<bool>,
    /// The open request for supplementary materials, while the case is suspended.
    pub suspension: Option<Box<Suspension>>,
    /// Deadline warnings raised on the case and its events, oldest first.
    pub warnings: Vec<Warning>,
    /// The applicant's rating, once given.
    pub rating: Option<Box<Rating>>,
    /// Every step, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Why the case failed, when its status is `failed`; for the applicant to read.
    pub failure: Option<String>,
}

/// A collaboration event as the applicant sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventView {
    /// Event id.
    pub event_id: String,
    /// Collaborating department code.
    pub department: crate::domain::DepartmentCode,
    /// Tier at which it is handled.
    pub tier: Tier,
    /// The centres it passed, by name (e.g. 重庆市 → 渝中区 → 解放碑街道).
    pub tier_path: Vec<String>,
    /// `routing` (on its way down), `dispatched` (at the department), `signed` (the department
    /// took it on), `returned` (the department returned it; being re-routed or waiting for a
    /// centre to reassign it) or `answered`.
    pub status: EventStatus,
    /// When the current department must answer by.
    pub deadline: Option<DateTime<Utc>>,
    /// Extensions granted.
    pub extensions: u32,
    /// Returns (退单): who returned it and why.
    pub returns: Vec<EventReturn>,
    /// The centre it was escalated to (督办), if it was.
    pub escalated_to: Option<crate::domain::CentreCode>,
    /// The answer, once given.
    pub result: Option<EventResultView>,
    /// How far the event has come, so that messages read out of order never move it back.
    /// Only this process needs it: it is not part of the view's JSON.
    #[serde(skip)]
    pub(super) progress: Progress,
}

/// How far a collaboration event has come. Later is greater: every attempt (one more return
/// made) is further than any stage of the attempts before it, the stages of one attempt follow
/// in order, and an answer is furthest of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Progress {
    /// The attempt after `returns` returns, at `stage`.
    Attempt {
        /// Returns made before this attempt (the length of the event's `returns`).
        returns: usize,
        /// How far this attempt has come.
        stage: Stage,
    },
    /// The department answered: final.
    Answered,
}

/// How far one attempt of a collaboration event has come, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    /// Not on its way yet: just seen for the first time, or just returned by its department
    /// (the return starts the next attempt).
    Unrouted,
    /// A centre routed it one tier down.
    Routing,
    /// It reached the collaborating department.
    AtDepartment,
    /// The department signed for it.
    Signed,
}

impl Default for Progress {
    /// A new event: the first attempt, not yet routed.
    fn default() -> Self {
        Progress::at(0, Stage::Unrouted)
    }
}

impl Progress {
    /// The attempt after `returns` returns, at `stage`.
    pub(super) fn at(returns: usize, stage: Stage) -> Self {
        Progress::Attempt { returns, stage }
    }

    /// Where `event` stands, read from its status and returns: the progress of an event read
    /// back from the case repository, whose JSON does not carry it. A routing or returned
    /// event is taken to be unrouted, the least it can be, so no message of its attempt is
    /// refused.
    pub(super) fn of(event: &EventView) -> Self {
        let returns = event.returns.len();
        match event.status {
            EventStatus::Answered => Progress::Answered,
            EventStatus::Signed => Progress::at(returns, Stage::Signed),
            EventStatus::Dispatched => Progress::at(returns, Stage::AtDepartment),
            _ => Progress::at(returns, Stage::Unrouted),
        }
    }

    /// Whether the event stands at an attempt before the one after `returns` returns. An
    /// answered event is behind no attempt.
    pub(super) fn behind_attempt(self, returns: usize) -> bool {
        matches!(self, Progress::Attempt { returns: seen, .. } if seen < returns)
    }
}

impl EventView {
    /// A new event, first seen in a message about it.
    fn new(event_id: &str, department: &crate::domain::DepartmentCode, tier: Tier) -> Self {
        EventView {
            event_id: event_id.to_owned(),
            department: department.clone(),
            tier,
            tier_path: Vec::new(),
            status: EventStatus::Routing,
            deadline: None,
            extensions: 0,
            returns: Vec::new(),
            escalated_to: None,
            result: None,
            progress: Progress::default(),
        }
    }

    /// Moves the event's progress to `to` if that is not behind where it stands; says whether
    /// it moved. An answer is final.
    pub(super) fn advance(&mut self, to: Progress) -> bool {
        if self.result.is_some() || to < self.progress {
            return false;
        }
        self.progress = to;
        true
    }
}

/// A collaborating department's answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventResultView {
    /// Agree or disagree.
    pub outcome: CollaborationOutcome,
    /// Opinion.
    pub opinion: String,
    /// When.
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub answered_at: DateTime<Utc>,
}

/// One step of a case's history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// When it happened.
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// The message type (or `submitted`).
    pub step: HistoryStep,
    /// Who did it: the system.
    #[schema(value_type = String)]
    pub by: Party,
    /// The officer whose act it was, when a person acted (see `Envelope::acted_by`).
    // Boxed: most steps have none, and every open case keeps its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<Box<Officer>>,
    /// To whom.
    #[schema(value_type = String)]
    pub to: Party,
    /// The bus message id.
    pub message_id: MessageId,
    /// What it said, where there is more to say: a reason, materials, a new due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CaseView {
    /// The view with the applicant opened with `keyring`: what a person asking for the case
    /// is shown. The one place the intake system's view gets the applicant in clear.
    pub fn opened(&self, keyring: &Keyring) -> Result<CaseView<Applicant>, CryptoError> {
        Ok(CaseView {
            case_id: self.case_id.clone(),
            status: self.status,
            application: self.application.opened(keyring)?,
            receipt: self.receipt.clone(),
            collaboration_events: self.collaboration_events.clone(),
            approval: self.approval.clone(),
            on_time: self.on_time,
            suspension: self.suspension.clone(),
            warnings: self.warnings.clone(),
            rating: self.rating.clone(),
            history: self.history.clone(),
            failure: self.failure.clone(),
        })
    }

    /// A new case, just submitted at `terminal_id`: its history holds the submission.
    pub(super) fn submitted(application: Application, terminal_id: &str) -> Self {
        let case_id = application.case_id.clone();
        CaseView {
            case_id: case_id.clone(),
            status: CaseStatus::Submitted,
            history: vec![HistoryEntry {
                at: application.submitted_at,
                step: HistoryStep::SUBMITTED,
                by: Party::terminal(terminal_id),
                officer: None,
                to: Party::from(&SystemId::Intake),
                message_id: message_ids::submitted(&case_id),
                note: None,
            }],
            application,
            receipt: None,
            collaboration_events: Vec::new(),
            approval: None,
            on_time: None,
            suspension: None,
            warnings: Vec::new(),
            rating: None,
            failure: None,
        }
    }

    /// The view of an event, created on first sight.
    pub(super) fn event_mut(
        &mut self,
        event_id: &str,
        department: &crate::domain::DepartmentCode,
        tier: Tier,
    ) -> &mut EventView {
        let index = match self
            .collaboration_events
            .iter()
            .position(|e| e.event_id == event_id)
        {
            Some(index) => index,
            None => {
                self.collaboration_events
                    .push(EventView::new(event_id, department, tier));
                self.collaboration_events.len() - 1
            }
        };
        &mut self.collaboration_events[index]
    }

    /// The view of an event already seen.
    pub(super) fn known_event_mut(&mut self, event_id: &str) -> Option<&mut EventView> {
        self.collaboration_events
            .iter_mut()
            .find(|e| e.event_id == event_id)
    }

    /// Whether a decided case met its receipt's deadline.
    pub(super) fn decided_on_time(&self) -> Option<bool> {
        let approval = self.approval.as_ref()?;
        let receipt = self.receipt.as_ref()?;
        let decided = approval
            .steps
            .iter()
            .rev()
            .find(|s| s.step == StepKind::Decided)?;
        Some(decided.at < receipt.due_by)
    }
}

#[cfg(test)]
mod tests {
    use super::{Progress, Stage};

    #[test]
    fn an_event_moves_forward_through_its_attempts_and_ends_answered() {
        // Arrange: every stage of two attempts, in the order they happen, then the answer.
        let stages = [
            Stage::Unrouted,
            Stage::Routing,
            Stage::AtDepartment,
            Stage::Signed,
        ];
        let mut order: Vec<Progress> = (0..2)
            .flat_map(|returns| stages.map(|stage| Progress::at(returns, stage)))
            .collect();
        order.push(Progress::Answered);

        // Act: sort a shuffled copy.
        let mut sorted = order.clone();
        sorted.reverse();
        sorted.sort();

        // Assert: the order of events is the order of progress; a new event is the least.
        assert_eq!(sorted, order);
        assert_eq!(Progress::default(), order[0]);
        assert!(Progress::at(0, Stage::Signed).behind_attempt(1));
        assert!(!Progress::Answered.behind_attempt(usize::MAX));
    }
}
