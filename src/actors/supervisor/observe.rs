//! What the supervisor learns from the bus: one function per message type that says something
//! about a deadline. Each message is applied once (by id, per case); a message it cannot read
//! is poison.

use super::records::{Assignment, CaseWatch, EarlyAnswer, EventWatch, Warned};
use super::Supervisor;
use crate::domain::{
    Approval, CaseId, CollaborationEvent, CollaborationResult, Envelope, EnvelopeError, EventId,
    EventReturned, ExtensionDecision, MessageType, Rating, Receipt, Resumption, StepKind, SystemId,
    TraceId,
};
use crate::port::{HandleError, Inbound};
use actix::prelude::*;

impl Handler<Inbound> for Supervisor {
    type Result = AtomicResponse<Self, Result<(), HandleError>>;

    /// Applies the message once its case is in memory: a case that left memory is read back
    /// first, and meanwhile no other message is handled, so that each case's messages are
    /// applied in the order they came. The cases whose supervision earlier messages ended
    /// leave memory once their rows are written (see `let_over_cases_leave_soon`).
    #[tracing::instrument(parent = &msg.1, skip_all, fields(system = "supervision", case_id = %msg.0.case_id, kind = %msg.0.kind, trace_id = %msg.0.trace_id))]
    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) -> Self::Result {
        self.let_over_cases_leave_soon(ctx);
        self.with_case(msg.0)
    }
}

impl Supervisor {
    /// Resolves once the repository's writer has room for more rows (at once without one):
    /// the next record waits while the writer is behind.
    pub(super) fn writer_room(&self) -> impl std::future::Future<Output = ()> + 'static {
        let room = self.rows.as_ref().map(|rows| rows.room());
        async move {
            if let Some(room) = room {
                room.await;
            }
        }
    }
}

/// Whether a message says something about a deadline: only those change the records (each
/// once, by id), and only for those must the case's records be in memory.
pub(super) fn concerns_records(envelope: &Envelope) -> bool {
    // Events count from their dispatch to a department and end with that department's
    // answer or return: the same messages between centres say nothing new.
    let to_department = matches!(envelope.target, SystemId::Department(_));
    let from_department = matches!(envelope.source, SystemId::Department(_));
    match envelope.kind {
        MessageType::ApplicationAccepted
        | MessageType::CaseSuspended
        | MessageType::CaseResumed
        | MessageType::ApprovalPublished
        | MessageType::CaseRated
        | MessageType::CollaborationExtensionDecided => true,
        MessageType::CollaborationDispatched => to_department,
        MessageType::CollaborationAnswered | MessageType::CollaborationReturned => from_department,
        _ => false,
    }
}

impl Supervisor {
    /// Applies a message whose case is in memory (or new), once, and hands on what changed.
    pub(super) fn apply(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        if !concerns_records(envelope) {
            return self.pass(envelope);
        }
        let case_id = &envelope.case_id;
        let held = self.held.entry(case_id.clone()).or_default();
        if !held.seen.insert(envelope.id.clone()) {
            return Ok(());
        }
        let observed = self.observe(envelope);
        match &observed {
            Ok(()) => self.note_applied(envelope),
            // Forget the id, so that a redelivery is read again rather than skipped.
            Err(_) => self.forget_applied(envelope),
        }
        self.hand_on_changes();
        self.settle(case_id);
        observed.map_err(|error| HandleError::Poison(error.to_string()))
    }

    /// A message that changes no record: refused when unreadable if this system is the one
    /// reader that can refuse it.
    fn pass(&self, envelope: &Envelope) -> Result<(), HandleError> {
        match envelope.kind {
            // Addressed to departments and centres, whose groups do not read the supervision
            // topic: this system is the one reader that can refuse them when unreadable.
            MessageType::SupervisionWarning | MessageType::CollaborationEscalated => envelope
                .check_data()
                .map_err(|error| HandleError::Poison(error.to_string())),
            _ => Ok(()),
        }
    }

    /// Forgets that `envelope` was applied to its case.
    fn forget_applied(&mut self, envelope: &Envelope) {
        if let Some(held) = self.held.get_mut(&envelope.case_id) {
            held.seen.remove(&envelope.id);
        }
    }

    /// Records what a message that concerns the records says about deadlines.
    fn observe(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        match envelope.kind {
            MessageType::ApplicationAccepted => self.accepted(envelope),
            MessageType::CaseSuspended => {
                self.suspended(envelope);
                Ok(())
            }
            MessageType::CaseResumed => self.resumed(envelope),
            MessageType::ApprovalPublished => self.decided(envelope),
            MessageType::CaseRated => self.rated(envelope),
            MessageType::CollaborationDispatched => self.dispatched(envelope),
            MessageType::CollaborationAnswered => self.answered(envelope),
            MessageType::CollaborationReturned => self.returned(envelope),
            MessageType::CollaborationExtensionDecided => self.extension_decided(envelope),
            _ => Ok(()),
        }
    }

    /// `application.accepted`: the case's clock starts.
    fn accepted(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let receipt: Receipt = envelope.data()?;
        self.learn_case(&envelope.case_id, &receipt, &envelope.trace_id);
        Ok(())
    }

    /// `case.suspended`: the case's clock stops.
    fn suspended(&mut self, envelope: &Envelope) {
        if let Some(case) = self.case_mut(&envelope.case_id) {
            case.suspended_since = Some(envelope.occurred_at);
        }
    }

    /// `case.resumed`: the clock runs again towards the new deadline; the working hours it was
    /// stopped count neither as used nor as allowed time.
    fn resumed(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let resumption: Resumption = envelope.data()?;
        let case_id = &envelope.case_id;
        self.learn_case(case_id, &resumption.receipt, &envelope.trace_id);
        let paused = self
            .catalog
            .calendar
            .working_hours(resumption.suspended_at, resumption.resumed_at);
        if let Some(case) = self.case_mut(case_id) {
            case.due_by = resumption.receipt.due_by;
            case.suspended_since = None;
            case.paused_hours += paused;
        }
        Ok(())
    }

    /// `approval.published`: the case is finished when its last `decided` step says.
    fn decided(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let approval: Approval = envelope.data()?;
        let case_id = &envelope.case_id;
        if let Some(receipt) = &approval.receipt {
            self.learn_case(case_id, receipt, &envelope.trace_id);
        }
        let decided = approval
            .steps
            .iter()
            .rev()
            .find(|s| s.step == StepKind::Decided)
            .map_or(envelope.occurred_at, |s| s.at);
        if let Some(case) = self.case_mut(case_id) {
            case.decided_at.get_or_insert(decided);
            case.suspended_since = None;
        }
        Ok(())
    }

    /// `case.rated`: the applicant's first score counts.
    fn rated(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let rating: Rating = envelope.data()?;
        if let Some(case) = self.case_mut(&envelope.case_id) {
            case.rating.get_or_insert(rating.score);
        }
        Ok(())
    }

    /// `collaboration.dispatched` to a department: the event's clock starts.
    fn dispatched(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let event: CollaborationEvent = envelope.data()?;
        self.learn_dispatch(&event, &envelope.trace_id);
        Ok(())
    }

    /// `collaboration.answered` by a department: its latest dispatch is finished. An answer
    /// read before any dispatch to that department is kept until the dispatch is learnt.
    fn answered(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let result: CollaborationResult = envelope.data()?;
        if let Some(assignment) =
            self.latest_assignment_mut(&result.event_id, |a| a.department == result.department)
        {
            assignment.answered_at.get_or_insert(result.answered_at);
        } else {
            self.held
                .entry(envelope.case_id.clone())
                .or_default()
                .early_answers
                .push(EarlyAnswer {
                    event_id: result.event_id,
                    department: result.department,
                    answered_at: result.answered_at,
                });
        }
        Ok(())
    }

    /// `collaboration.returned` by a department: the attempt it returned is no longer open.
    /// The event carries its dispatch as it was before the return, should that dispatch not
    /// have been seen.
    fn returned(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let returned: EventReturned = envelope.data()?;
        let attempt = returned.event.returns.len().saturating_sub(1);
        let mut before = returned.event.clone();
        before.returns.truncate(attempt);
        self.learn_dispatch(&before, &envelope.trace_id);
        if let Some(assignment) = self.assignment_mut(&returned.event.event_id, attempt) {
            assignment.returned = true;
        }
        Ok(())
    }

    /// `collaboration.extension_decided`: an approved extension moves the open dispatch's
    /// deadline.
    fn extension_decided(&mut self, envelope: &Envelope) -> Result<(), EnvelopeError> {
        let decision: ExtensionDecision = envelope.data()?;
        if !decision.approved {
            return Ok(());
        }
        if let Some(assignment) = self.latest_assignment_mut(&decision.event_id, |a| {
            a.department == decision.department && a.is_open()
        }) {
            assignment.deadline = decision.deadline;
            // The new deadline gets its own warnings (ids with the extension count, so
            // that they are new messages and not repeats of the old deadline's).
            assignment.extensions = decision.extensions;
            assignment.warned = Warned::default();
        }
        Ok(())
    }

    /// Starts following a case, unless already known.
    fn learn_case(&mut self, case_id: &CaseId, receipt: &Receipt, trace_id: &str) {
        self.case_changed(case_id);
        self.cases
            .entry(case_id.clone())
            .or_insert_with(|| CaseWatch {
                department: receipt.department.clone(),
                trace_id: TraceId::from(trace_id),
                accepted_at: receipt.accepted_at,
                due_by: receipt.due_by,
                suspended_since: None,
                paused_hours: 0.0,
                decided_at: None,
                warned: Warned::default(),
                rating: None,
            });
    }

    /// Records the dispatch of `event` to its department, unless already known.
    fn learn_dispatch(&mut self, event: &CollaborationEvent, trace_id: &str) {
        self.event_changed(&event.event_id);
        let held = self.held.entry(event.case_id.clone()).or_default();
        held.events.insert(event.event_id.clone());
        let watch = self
            .events
            .entry(event.event_id.clone())
            .or_insert_with(|| EventWatch {
                case_id: event.case_id.clone(),
                trace_id: TraceId::from(trace_id),
                assignments: Vec::new(),
            });
        let attempt = event.returns.len();
        let assignment = watch.slot(attempt).get_or_insert_with(|| Assignment {
            department: event.department.clone(),
            dispatched_by: event
                .route
                .last()
                .map_or_else(|| self.catalog.city.clone(), |h| h.code.clone()),
            route: event.route.iter().map(|h| h.code.clone()).collect(),
            dispatched_at: event.dispatched_at,
            deadline: event.deadline,
            extensions: event.extensions,
            answered_at: None,
            returned: false,
            warned: Warned::default(),
            escalated_to: None,
        });
        // An answer read before this dispatch finishes it.
        let early = &mut held.early_answers;
        if let Some(at) = early
            .iter()
            .position(|a| a.event_id == event.event_id && a.department == assignment.department)
        {
            let answer = early.swap_remove(at);
            if !assignment.returned {
                assignment.answered_at.get_or_insert(answer.answered_at);
            }
        }
    }

    /// The case `case_id`, noted as changed.
    pub(super) fn case_mut(&mut self, case_id: &CaseId) -> Option<&mut CaseWatch> {
        self.case_changed(case_id);
        self.cases.get_mut(case_id)
    }

    /// The latest dispatch of an event that matches `which`, its event noted as changed.
    fn latest_assignment_mut(
        &mut self,
        event_id: &EventId,
        which: impl Fn(&Assignment) -> bool,
    ) -> Option<&mut Assignment> {
        self.event_changed(event_id);
        self.events
            .get_mut(event_id)?
            .assignments
            .iter_mut()
            .flatten()
            .rev()
            .find(|a| which(a))
    }

    /// The dispatch of an event after `attempt` returns, its event noted as changed.
    pub(super) fn assignment_mut(
        &mut self,
        event_id: &EventId,
        attempt: usize,
    ) -> Option<&mut Assignment> {
        self.event_changed(event_id);
        self.events
            .get_mut(event_id)?
            .assignments
            .get_mut(attempt)?
            .as_mut()
    }
}
