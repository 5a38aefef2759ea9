//! Staff at work on collaboration events waiting in a manual department's inbox: they sign
//! for one, answer it, return it as not theirs, or ask the dispatching centre for more time.
//! Each is an act named by the id of the message it sends to the dispatching centre
//! (`<attempt>/signed`, `/answered`, `/returned`, `/extension-requested/<n>`).

use super::messages::{AnswerCollaboration, RequestExtension, ReturnEvent, SignEvent};
use super::staff::refuse;
use super::state::{ClosedAs, PendingEvent};
use super::{Department, StaffError};
use crate::actors::acts::{self, ActRequest, Acted};
use crate::domain::{
    message_ids, CollaborationResult, Envelope, EventId, EventReturn, EventReturned, EventSigned,
    ExtensionRequest, MessageId, MessageType, Officer,
};
use actix::prelude::*;

impl Department {
    /// A waiting event staff may act on, or why not.
    fn staff_event(&self, event_id: &EventId) -> Result<PendingEvent, StaffError> {
        if let Some(pending) = self.events.get(event_id) {
            return Ok(pending.clone());
        }
        let finished = self.closed.latest(event_id, |_| true).map(|(_, how)| how);
        Err(match finished {
            Some(how) => StaffError::Conflict(format!(
                "collaboration event {event_id} was already {how} by department {}",
                self.settings.code
            )),
            None => StaffError::NotFound(format!(
                "collaboration event {event_id} is not waiting at department {}",
                self.settings.code
            )),
        })
    }

    /// A waiting event staff may act on unless `refused_if` it, when `why` says why not.
    fn staff_event_unless(
        &self,
        event_id: &EventId,
        refused_if: impl FnOnce(&PendingEvent) -> bool,
        why: impl FnOnce() -> String,
    ) -> Result<PendingEvent, StaffError> {
        let pending = self.staff_event(event_id)?;
        if refused_if(&pending) {
            return Err(StaffError::Conflict(why()));
        }
        Ok(pending)
    }

    /// The act that closed `event_id` the way `how` says, if one did: what a repeat of the
    /// answer or return finds.
    fn closing_act(&self, event_id: &EventId, how: ClosedAs) -> Option<MessageId> {
        let (key, _) = self.closed.latest(event_id, |closed| closed == how)?;
        Some(match how {
            ClosedAs::Answered => message_ids::answered(key),
            ClosedAs::Returned => message_ids::returned(key),
        })
    }

    /// Closes a waiting event (`how`: answered, returned) by the act `request` that sends
    /// `envelope`; answers `done`.
    fn close_event<T: Clone + Send + 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        event_id: &EventId,
        how: ClosedAs,
        request: ActRequest,
        envelope: Envelope,
        done: T,
    ) -> ResponseActFuture<Self, Result<Acted<T>, StaffError>> {
        let case_id = envelope.case_id.clone();
        if let Some(pending) = self.events.remove(event_id) {
            self.closed
                .insert(&case_id, pending.event.attempt_key(), how);
        }
        acts::take(self, ctx, request, case_id, vec![envelope], done)
    }
}

/// The request for an act on `event_id` by the officer `by` that sends the message `id`, as
/// `asked`.
fn event_act(event_id: &EventId, id: MessageId, asked: String, by: Officer) -> ActRequest {
    ActRequest {
        id,
        asked,
        subject: event_id.to_string(),
        by: Some(by),
    }
}

impl Handler<AnswerCollaboration> for Department {
    type Result = ResponseActFuture<Self, Result<Acted<CollaborationResult>, StaffError>>;

    fn handle(&mut self, msg: AnswerCollaboration, ctx: &mut Self::Context) -> Self::Result {
        let asked = format!("{msg:?}");
        let answered = self.closing_act(&msg.event_id, ClosedAs::Answered);
        if let Some(repeat) = acts::repeat(self, answered, &asked) {
            return repeat;
        }
        let pending = match self.staff_event(&msg.event_id) {
            Ok(pending) => pending,
            Err(error) => return refuse(error),
        };
        let (result, envelope) = self.answer(
            &pending.event,
            pending.trace_id.as_str(),
            msg.outcome,
            msg.opinion,
        );
        let request = event_act(&msg.event_id, envelope.id.clone(), asked, msg.officer);
        let how = ClosedAs::Answered;
        self.close_event(ctx, &msg.event_id, how, request, envelope, result)
    }
}

impl Handler<SignEvent> for Department {
    type Result = ResponseActFuture<Self, Result<Acted<EventSigned>, StaffError>>;

    fn handle(&mut self, msg: SignEvent, ctx: &mut Self::Context) -> Self::Result {
        let asked = format!("{msg:?}");
        let event_id = msg.event_id;
        let signed = self
            .events
            .get(&event_id)
            .filter(|p| p.signed)
            .map(|p| message_ids::signed(&p.event.attempt_key()));
        if let Some(repeat) = acts::repeat(self, signed, &asked) {
            return repeat;
        }
        let why = || format!("collaboration event {event_id} is already signed for");
        let pending = match self.staff_event_unless(&event_id, |p| p.signed, why) {
            Ok(pending) => pending,
            Err(error) => return refuse(error),
        };
        let signed = EventSigned {
            event: pending.event.clone(),
            signed_by: msg.officer.id.clone(),
            signed_at: self.catalog.now(),
        };
        let request = event_act(
            &event_id,
            message_ids::signed(&pending.event.attempt_key()),
            asked,
            msg.officer,
        );
        let envelope = self.to_dispatcher(
            &pending.event,
            pending.trace_id.as_str(),
            request.id.clone(),
            MessageType::CollaborationSigned,
            &signed,
        );
        if let Some(pending) = self.events.get_mut(&event_id) {
            pending.signed = true;
        }
        let case_id = envelope.case_id.clone();
        acts::take(self, ctx, request, case_id, vec![envelope], signed)
    }
}

impl Handler<ReturnEvent> for Department {
    type Result = ResponseActFuture<Self, Result<Acted<EventReturned>, StaffError>>;

    fn handle(&mut self, msg: ReturnEvent, ctx: &mut Self::Context) -> Self::Result {
        let asked = format!("{msg:?}");
        let event_id = msg.event_id;
        let returned = self.closing_act(&event_id, ClosedAs::Returned);
        if let Some(repeat) = acts::repeat(self, returned, &asked) {
            return repeat;
        }
        let why = || {
            format!(
                "collaboration event {event_id} was signed for; \
                 a signed event is answered, not returned"
            )
        };
        let pending = match self.staff_event_unless(&event_id, |p| p.signed, why) {
            Ok(pending) => pending,
            Err(error) => return refuse(error),
        };
        let key = pending.event.attempt_key();
        let mut event = pending.event;
        event.returns.push(EventReturn {
            department: self.settings.code.clone(),
            reason: msg.reason,
            returned_at: self.catalog.now(),
        });
        let returned = EventReturned { event };
        let envelope = self.to_dispatcher(
            &returned.event,
            pending.trace_id.as_str(),
            message_ids::returned(&key),
            MessageType::CollaborationReturned,
            &returned,
        );
        let request = event_act(&event_id, envelope.id.clone(), asked, msg.officer);
        let how = ClosedAs::Returned;
        self.close_event(ctx, &event_id, how, request, envelope, returned)
    }
}

impl Handler<RequestExtension> for Department {
    type Result = ResponseActFuture<Self, Result<Acted<ExtensionRequest>, StaffError>>;

    fn handle(&mut self, msg: RequestExtension, ctx: &mut Self::Context) -> Self::Result {
        let asked = format!("{msg:?}");
        let event_id = msg.event_id;
        // A repeat finds the request it repeats still waiting for the centre.
        let waiting = self
            .events
            .get(&event_id)
            .filter(|p| p.extension_pending)
            .map(|p| {
                message_ids::extension_requested(&p.event.attempt_key(), p.extension_requests)
            });
        if let Some(repeat) = acts::repeat(self, waiting, &asked) {
            return repeat;
        }
        let why = || {
            format!(
                "an extension of collaboration event {event_id} \
                 is already waiting for the centre's decision"
            )
        };
        let pending = match self.staff_event_unless(&event_id, |p| p.extension_pending, why) {
            Ok(pending) => pending,
            Err(error) => return refuse(error),
        };
        let request = ExtensionRequest {
            event: pending.event.clone(),
            days: msg.days,
            reason: msg.reason,
            requested_at: self.catalog.now(),
        };
        let number = pending.extension_requests + 1;
        let act = event_act(
            &event_id,
            message_ids::extension_requested(&pending.event.attempt_key(), number),
            asked,
            msg.officer,
        );
        let envelope = self.to_dispatcher(
            &pending.event,
            pending.trace_id.as_str(),
            act.id.clone(),
            MessageType::CollaborationExtensionRequested,
            &request,
        );
        if let Some(pending) = self.events.get_mut(&event_id) {
            pending.extension_pending = true;
            pending.extension_requests = number;
        }
        let case_id = envelope.case_id.clone();
        acts::take(self, ctx, act, case_id, vec![envelope], request)
    }
}
