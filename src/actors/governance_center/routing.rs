//! A centre's bus messages, one function per type: a collaboration request split into events
//! (city), events routed down the tiers, answers passed up and gathered (city), approvals
//! delivered to the intake system (city). Returns and extensions have files of their own.

use super::state::OpenRequest;
use super::GovernanceCenter;
use crate::actors::BusSystem;
use crate::domain::{
    message_ids, Approval, CollaborationCompleted, CollaborationEvent, CollaborationRequest,
    CollaborationResult, Collaborator, Envelope, EventReturned, EventSigned, ExtensionRequest, Hop,
    MessageType, SystemId, Tier, TraceId,
};
use crate::maps::Map;
use crate::port::HandleError;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

impl GovernanceCenter {
    /// What a bus message makes this centre send. A message a centre of this tier does not
    /// handle, or cannot read, is poison.
    pub(super) fn route(&mut self, envelope: &Envelope) -> Result<Vec<Envelope>, HandleError> {
        let is_city = self.centre.tier == Tier::City;
        let trace_id = &envelope.trace_id;
        match envelope.kind {
            MessageType::CollaborationRequested if is_city => {
                Ok(self.open_request(data(envelope)?, trace_id))
            }
            MessageType::CollaborationDispatched => {
                Ok(vec![self.route_down(&mut data(envelope)?, trace_id)])
            }
            MessageType::CollaborationAnswered => {
                let result: CollaborationResult = data(envelope)?;
                self.check_addressed(envelope, &result.route)?;
                Ok(self.pass_up(result, trace_id))
            }
            // Recorded by the intake system and supervision; nothing for the centre to route.
            MessageType::CollaborationSigned => {
                let signed: EventSigned = data(envelope)?;
                self.check_addressed(envelope, &signed.event.route)?;
                Ok(Vec::new())
            }
            MessageType::CollaborationReturned => {
                let returned: EventReturned = data(envelope)?;
                self.check_addressed(envelope, &returned.event.route)?;
                let from_department = matches!(envelope.source, SystemId::Department(_));
                Ok(self.returned(returned.event, from_department, trace_id))
            }
            MessageType::CollaborationExtensionRequested => {
                let request: ExtensionRequest = data(envelope)?;
                self.check_addressed(envelope, &request.event.route)?;
                Ok(vec![self.decide_extension(request, &envelope.id, trace_id)])
            }
            MessageType::ApprovalPublished if is_city => Ok(vec![self.deliver(envelope)?]),
            other => Err(HandleError::Poison(format!(
                "a {} centre does not handle `{other}` messages",
                self.centre.tier
            ))),
        }
    }

    /// Refuses a department's word on an event (an answer, a signature, a return, an extension
    /// request) sent to a centre other than the one that dispatched the event to it — the last
    /// centre of the event's route: that centre alone waits for it, and accepting it elsewhere
    /// would hide a mistaken integration until a case is found stuck or done twice.
    fn check_addressed(&self, envelope: &Envelope, route: &[Hop]) -> Result<(), HandleError> {
        if !matches!(envelope.source, SystemId::Department(_)) {
            return Ok(());
        }
        match route.last() {
            Some(dispatcher) if dispatcher.code == self.centre.code => Ok(()),
            Some(dispatcher) => Err(HandleError::Poison(format!(
                "`{}` from {} is addressed to {}, but the event was dispatched to it by centre \
                 {} ({}): send it to governance/{}",
                envelope.kind,
                envelope.source,
                envelope.target,
                dispatcher.code,
                dispatcher.name,
                dispatcher.code
            ))),
            None => Err(HandleError::Poison(format!(
                "`{}` from {} names an event with an empty route: no centre dispatched it",
                envelope.kind, envelope.source
            ))),
        }
    }

    /// City: one event per collaborator, each sent where it must go next. A request already
    /// open or completed changes nothing.
    fn open_request(&mut self, request: CollaborationRequest, trace_id: &str) -> Vec<Envelope> {
        let case_id = request.application.case_id.clone();
        if self.open.contains_key(&case_id) || self.completed.contains(&case_id) {
            return Vec::new();
        }
        let mut outputs = Vec::new();
        let mut events = Vec::new();
        // One instant for all of them: the events of one request are dispatched together.
        let now = self.catalog.now();
        for collaborator in &request.collaborators {
            let mut event = self.new_event(&request, collaborator, now);
            events.push(event.event_id.clone());
            outputs.push(self.route_down(&mut event, trace_id));
        }
        self.open.insert(
            case_id,
            Box::new(OpenRequest {
                request,
                events,
                results: Map::default(),
                trace_id: TraceId::from(trace_id),
            }),
        );
        outputs
    }

    /// The event that asks `collaborator` for its help with `request`, dispatched `now` with
    /// the matter's deadline for that department.
    fn new_event(
        &self,
        request: &CollaborationRequest,
        collaborator: &Collaborator,
        now: DateTime<Utc>,
    ) -> CollaborationEvent {
        let application = &request.application;
        let days = self
            .catalog
            .collaboration_days(&application.matter_code, &collaborator.department);
        CollaborationEvent {
            event_id: message_ids::event_id(&application.case_id, &collaborator.department),
            case_id: application.case_id.clone(),
            requester: request.requester.clone(),
            department: collaborator.department.clone(),
            tier: collaborator.tier,
            region: application.region.clone(),
            matter_code: application.matter_code.clone(),
            materials: application.materials.clone(),
            route: Vec::new(),
            dispatched_at: now,
            deadline: self.catalog.calendar.due_by(now, days),
            extensions: 0,
            returns: Vec::new(),
        }
    }

    /// Adds this centre to the event's route and sends it to the next centre down, or to the
    /// department when this centre is at the department's tier.
    pub(super) fn route_down(
        &mut self,
        event: &mut CollaborationEvent,
        trace_id: &str,
    ) -> Envelope {
        event.route.push(self.centre.hop());
        self.mark_routed(&event.case_id, event.event_id.clone());
        let next = if self.centre.tier >= event.tier {
            SystemId::Department(event.department.clone())
        } else {
            match self.centre.tier {
                Tier::City => SystemId::Governance(event.region.district.clone()),
                _ => SystemId::Governance(event.region.street.clone()),
            }
        };
        self.sender().message(
            message_ids::dispatched(&event.attempt_key(), &self.centre.code),
            MessageType::CollaborationDispatched,
            &event.case_id.clone(),
            next,
            trace_id,
            &*event,
        )
    }

    /// Passes an answer one tier up; at the city, gathers it.
    fn pass_up(&mut self, result: CollaborationResult, trace_id: &str) -> Vec<Envelope> {
        self.mark_back(&result.case_id, &result.event_id);
        let Some(parent) = &self.centre.parent else {
            return self.gather(result).into_iter().collect();
        };
        vec![self.sender().message(
            message_ids::answer_passed_up(&result.event_id, &self.centre.code),
            MessageType::CollaborationAnswered,
            &result.case_id,
            SystemId::Governance(parent.clone()),
            trace_id,
            &result,
        )]
    }

    /// City: keeps an answer for its open request; once every event is answered, sends the
    /// answers, in the order of the request's collaborators, to the requesting department.
    fn gather(&mut self, result: CollaborationResult) -> Option<Envelope> {
        let case_id = result.case_id.clone();
        let Some(open) = self.open.get_mut(&case_id) else {
            tracing::warn!(%case_id, event_id = %result.event_id, "answer for no open collaboration request; ignored");
            return None;
        };
        if !open.events.contains(&result.event_id) {
            tracing::warn!(%case_id, event_id = %result.event_id, "answer for an event this request did not dispatch; ignored");
            return None;
        }
        open.results
            .entry(result.event_id.clone())
            .or_insert(result);
        if open.results.len() < open.events.len() {
            return None;
        }
        let open = self.open.remove(&case_id)?;
        self.completed.insert(case_id.clone());
        let mut results = open.results;
        let completed = CollaborationCompleted {
            requester: open.request.requester.clone(),
            results: open
                .events
                .iter()
                .filter_map(|id| results.remove(id))
                .collect(),
            application: open.request.application,
        };
        Some(self.sender().message(
            message_ids::collaboration_completed(&case_id),
            MessageType::CollaborationCompleted,
            &case_id,
            SystemId::Department(completed.requester.clone()),
            open.trace_id.as_str(),
            &completed,
        ))
    }

    /// City: hands an approval to the intake system, where the applicant sees the outcome;
    /// the case's collaboration, if it had one, is over. The approval is read only to refuse
    /// one that cannot be; it goes on as the department wrote it, not encoded again.
    fn deliver(&mut self, envelope: &Envelope) -> Result<Envelope, HandleError> {
        let _: Approval = data(envelope)?;
        self.completed.remove(&envelope.case_id);
        Ok(self.sender().message(
            message_ids::delivered(&envelope.case_id),
            MessageType::ApprovalDelivered,
            &envelope.case_id,
            SystemId::Intake,
            &envelope.trace_id,
            &envelope.data,
        ))
    }
}

/// A message's payload; one that cannot be read is poison: reading it again will not help.
fn data<T: DeserializeOwned>(envelope: &Envelope) -> Result<T, HandleError> {
    envelope
        .data()
        .map_err(|e| HandleError::Poison(e.to_string()))
}
