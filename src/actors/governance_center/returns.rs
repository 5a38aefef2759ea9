//! Returned events (退单): re-routed to the returning department's alternative, passed one
//! tier up, or kept at a centre until its staff reassign them.

use super::messages::{AwaitingEvent, GetAwaiting, ReassignError, ReassignEvent};
use super::state::Awaiting;
use super::GovernanceCenter;
use crate::actors::acts::{self, ActRequest, Acted, Acts, TakesActs};
use crate::actors::{close_if_finished, BusSystem, GetHolding, Holding, KeepsState};
use crate::domain::{
    message_ids, CaseId, CollaborationEvent, DepartmentCode, Envelope, EventReturned, MessageType,
    SystemId, TraceId,
};
use actix::prelude::*;

impl GovernanceCenter {
    /// A department returned an event this centre dispatched (`from_department`), or a child
    /// centre passed a return up. Re-routes it to the returning department's alternative when
    /// there is one that has not returned it yet; else passes it one tier up, or keeps it for
    /// staff when it came from below or there is no tier above.
    pub(super) fn returned(
        &mut self,
        event: CollaborationEvent,
        from_department: bool,
        trace_id: &str,
    ) -> Vec<Envelope> {
        let Some(last) = event.returns.last() else {
            tracing::warn!(event_id = %event.event_id, "a return that records no return; ignored");
            return Vec::new();
        };
        if from_department {
            let alternative = self
                .catalog
                .department(&last.department)
                .and_then(|d| d.return_to.clone())
                .filter(|alt| !event.returns.iter().any(|r| &r.department == alt));
            if let Some(alternative) = alternative {
                return vec![self.reassign(event, &alternative, trace_id).1];
            }
            if let Some(parent) = self.centre.parent.clone() {
                self.mark_back(&event.case_id, &event.event_id);
                return vec![self.sender().message(
                    message_ids::return_passed_up(&event.attempt_key(), &self.centre.code),
                    MessageType::CollaborationReturned,
                    &event.case_id.clone(),
                    SystemId::Governance(parent),
                    trace_id,
                    &EventReturned { event },
                )];
            }
        }
        tracing::info!(event_id = %event.event_id, centre = %self.centre.code, "returned event waits for reassignment");
        self.mark_back(&event.case_id, &event.event_id);
        self.awaiting.insert(
            event.event_id.clone(),
            Awaiting {
                event,
                trace_id: TraceId::from(trace_id),
            },
        );
        Vec::new()
    }

    /// Gives an event to `department` with a fresh deadline and routes it from this centre:
    /// the event as sent, and the message that sends it.
    fn reassign(
        &mut self,
        mut event: CollaborationEvent,
        department: &DepartmentCode,
        trace_id: &str,
    ) -> (CollaborationEvent, Envelope) {
        let now = self.catalog.now();
        let days = self
            .catalog
            .collaboration_days(&event.matter_code, department);
        event.tier = self
            .catalog
            .department(department)
            .map_or(event.tier, |d| d.tier);
        event.department = department.clone();
        event.dispatched_at = now;
        event.deadline = self.catalog.calendar.due_by(now, days);
        event.extensions = 0;
        // The route is the chain of centres down to this one, which `route_down` appends.
        if let Some(mine) = event.route.iter().position(|h| h.code == self.centre.code) {
            event.route.truncate(mine);
        }
        let envelope = self.route_down(&mut event, trace_id);
        (event, envelope)
    }
}

impl Handler<GetAwaiting> for GovernanceCenter {
    type Result = MessageResult<GetAwaiting>;

    fn handle(&mut self, _: GetAwaiting, _: &mut Self::Context) -> Self::Result {
        let mut list: Vec<AwaitingEvent> = self
            .awaiting
            .values()
            .map(|a| AwaitingEvent {
                event: a.event.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
        MessageResult(list)
    }
}

impl Handler<GetHolding> for GovernanceCenter {
    type Result = MessageResult<GetHolding>;

    fn handle(&mut self, _: GetHolding, _: &mut Self::Context) -> Self::Result {
        MessageResult(Holding::of(self))
    }
}

impl Handler<ReassignEvent> for GovernanceCenter {
    type Result = ResponseActFuture<Self, Result<Acted<CollaborationEvent>, ReassignError>>;

    /// Routes the event to the department named, as an act named by the id of its dispatch
    /// (`<attempt>/dispatched/<centre>`); the same request again answers the same event.
    fn handle(&mut self, msg: ReassignEvent, ctx: &mut Self::Context) -> Self::Result {
        let asked = format!("{msg:?}");
        // Once reassigned, the event no longer waits here: the latest act on it is the one a
        // repeat finds.
        let reassigned = (!self.awaiting.contains_key(&msg.event_id))
            .then(|| self.acts.latest(msg.event_id.as_str()))
            .flatten();
        if let Some(repeat) = acts::repeat(self, reassigned, &asked) {
            return repeat;
        }
        if self.catalog.department(&msg.department).is_none() {
            return Box::pin(fut::ready(Err(ReassignError::UnknownDepartment(format!(
                "no department `{}`; GET /api/v1/departments lists them",
                msg.department
            )))));
        }
        let Some(awaiting) = self.awaiting.remove(&msg.event_id) else {
            return Box::pin(fut::ready(Err(ReassignError::NotWaiting(format!(
                "collaboration event {} is not waiting for reassignment at centre {}",
                msg.event_id, self.centre.code
            )))));
        };
        let (event, envelope) =
            self.reassign(awaiting.event, &msg.department, awaiting.trace_id.as_str());
        let request = ActRequest {
            id: envelope.id.clone(),
            asked,
            subject: msg.event_id.to_string(),
            by: Some(msg.officer),
        };
        let case_id = event.case_id.clone();
        acts::take(self, ctx, request, case_id, vec![envelope], event)
    }
}

impl TakesActs for GovernanceCenter {
    fn acts(&mut self) -> &mut Acts {
        &mut self.acts
    }

    fn act_snapshot(&mut self, case_id: &CaseId) -> Option<Envelope> {
        self.snapshot_of(case_id)
    }

    fn act_sent(&mut self, case_id: &CaseId) {
        close_if_finished(self, case_id);
    }
}
