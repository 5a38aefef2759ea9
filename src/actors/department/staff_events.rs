//! Staff at work on collaboration events waiting in a manual department's inbox: they sign
//! for one, answer it, return it as not theirs, or ask the dispatching centre for more time.

use super::messages::{AnswerCollaboration, RequestExtension, ReturnEvent, SignEvent};
use super::staff::{refuse, StaffAct};
use super::state::{event_of_attempt, ClosedAs, PendingEvent};
use super::{Department, StaffError};
use crate::domain::{
    message_ids, CollaborationResult, Envelope, EventId, EventReturn, EventReturned, EventSigned,
    ExtensionRequest, MessageType,
};
use actix::prelude::*;

impl Department {
    /// A waiting event staff may act on, or why not.
    fn staff_event(&self, event_id: &EventId) -> Result<PendingEvent, StaffError> {
        if let Some(pending) = self.events.get(event_id) {
            return Ok(pending.clone());
        }
        let finished = self
            .closed
            .iter()
            .find(|(key, _)| event_of_attempt(key) == event_id.as_str())
            .map(|(_, (_, how))| *how);
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

    /// Closes a waiting event (`how`: answered, returned) by publishing `envelope`, and reopens
    /// the event if that fails; gives `done` once published.
    fn close_event<T: 'static>(
        &mut self,
        event_id: &EventId,
        how: ClosedAs,
        envelope: Envelope,
        done: T,
    ) -> ResponseActFuture<Self, Result<T, StaffError>> {
        let pending = self.events.remove(event_id);
        let key = pending.as_ref().map(|p| p.event.attempt_key());
        if let (Some(key), Some(p)) = (&key, &pending) {
            self.closed
                .insert(key.clone(), (p.event.case_id.clone(), how));
        }
        let act = StaffAct::new(how.act(), envelope, done);
        self.publish_or_undo(act, move |department| {
            if let (Some(pending), Some(key)) = (pending, key) {
                department.closed.remove(&key);
                department
                    .events
                    .insert(pending.event.event_id.clone(), pending);
            }
        })
    }

    /// Marks a waiting event (signed, extension asked for) and publishes `act`; unmarks the
    /// event if that fails.
    fn mark_event<T: 'static>(
        &mut self,
        event_id: EventId,
        act: StaffAct<T>,
        mark: impl FnOnce(&mut PendingEvent),
        unmark: impl FnOnce(&mut PendingEvent) + 'static,
    ) -> ResponseActFuture<Self, Result<T, StaffError>> {
        if let Some(pending) = self.events.get_mut(&event_id) {
            mark(pending);
        }
        self.publish_or_undo(act, move |department| {
            if let Some(pending) = department.events.get_mut(&event_id) {
                unmark(pending);
            }
        })
    }
}

impl Handler<AnswerCollaboration> for Department {
    type Result = ResponseActFuture<Self, Result<CollaborationResult, StaffError>>;

    fn handle(&mut self, msg: AnswerCollaboration, _: &mut Self::Context) -> Self::Result {
        let pending = match self.staff_event(&msg.event_id) {
            Ok(pending) => pending,
            Err(error) => return refuse(error),
        };
        let (result, envelope) =
            self.answer(&pending.event, &pending.trace_id, msg.outcome, msg.opinion);
        self.close_event(&msg.event_id, ClosedAs::Answered, envelope, result)
    }
}

impl Handler<SignEvent> for Department {
    type Result = ResponseActFuture<Self, Result<EventSigned, StaffError>>;

    fn handle(&mut self, msg: SignEvent, _: &mut Self::Context) -> Self::Result {
        let event_id = msg.event_id;
        let why = || format!("collaboration event {event_id} is already signed for");
        let pending = match self.staff_event_unless(&event_id, |p| p.signed, why) {
            Ok(pending) => pending,
            Err(error) => return refuse(error),
        };
        let signed = EventSigned {
            event: pending.event.clone(),
            signed_by: if msg.officer.is_empty() {
                self.me().to_string()
            } else {
                msg.officer
            },
            signed_at: self.catalog.now(),
        };
        let envelope = self.to_dispatcher(
            &pending.event,
            &pending.trace_id,
            message_ids::signed(&pending.event.attempt_key()),
            MessageType::CollaborationSigned,
            &signed,
        );
        let act = StaffAct::new("signature", envelope, signed);
        self.mark_event(event_id, act, |p| p.signed = true, |p| p.signed = false)
    }
}

impl Handler<ReturnEvent> for Department {
    type Result = ResponseActFuture<Self, Result<EventReturned, StaffError>>;

    fn handle(&mut self, msg: ReturnEvent, _: &mut Self::Context) -> Self::Result {
        let event_id = msg.event_id;
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
            &pending.trace_id,
            message_ids::returned(&key),
            MessageType::CollaborationReturned,
            &returned,
        );
        self.close_event(&event_id, ClosedAs::Returned, envelope, returned)
    }
}

impl Handler<RequestExtension> for Department {
    type Result = ResponseActFuture<Self, Result<ExtensionRequest, StaffError>>;

    fn handle(&mut self, msg: RequestExtension, _: &mut Self::Context) -> Self::Result {
        let event_id = msg.event_id;
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
        let envelope = self.to_dispatcher(
            &pending.event,
            &pending.trace_id,
            message_ids::extension_requested(&pending.event.attempt_key(), number),
            MessageType::CollaborationExtensionRequested,
            &request,
        );
        let act = StaffAct::new("extension request", envelope, request);
        let mark = move |p: &mut PendingEvent| {
            p.extension_pending = true;
            p.extension_requests = number;
        };
        let unmark = move |p: &mut PendingEvent| {
            p.extension_pending = false;
            p.extension_requests = number - 1;
        };
        self.mark_event(event_id, act, mark, unmark)
    }
}
