//! A governance centre (治理中心) of the three-tier tree.
//!
//! The city centre:
//! * takes new applications from the intake system's feed and publishes each to its
//!   responsible department (`application.published`);
//! * turns a `collaboration.requested` into one `collaboration.dispatched` event per
//!   collaborating department, sent to the department itself (city tier) or down to the case's
//!   district centre;
//! * gathers the answers and, when all are in, sends `collaboration.completed` to the requester;
//! * hands every `approval.published` to the intake system (`approval.delivered`).
//!
//! District and street centres pass events down (district → the case's street → department)
//! and answers up (street → district → city), adding themselves to the event's route.

use super::intake::{FedApplication, TakeNewApplications};
use super::{handle_inbound, publish, BusSystem, Processed};
use crate::bus::bridge::{HandleError, Inbound, Publish};
use crate::catalog::{Catalog, Centre};
use crate::domain::{
    Approval, CaseId, CollaborationCompleted, CollaborationEvent, CollaborationRequest,
    CollaborationResult, Envelope, EventId, MessageType, SystemId, Tier,
};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A collaboration request the city centre is gathering answers for.
struct OpenRequest {
    /// The request as the department sent it.
    request: CollaborationRequest,
    /// The events dispatched, in the order of the request's collaborators.
    events: Vec<EventId>,
    /// Answers received so far.
    results: HashMap<EventId, CollaborationResult>,
    /// The case's trace id.
    trace_id: String,
}

/// A governance centre.
pub struct GovernanceCenter {
    /// This centre.
    centre: Centre,
    /// The city.
    catalog: Arc<Catalog>,
    /// Where its messages go.
    bridge: Recipient<Publish>,
    /// The intake feed (city centre only).
    intake_feed: Option<Recipient<TakeNewApplications>>,
    /// Inbound messages handled.
    processed: Processed,
    /// Collaboration requests waiting for answers (city centre only).
    open: HashMap<CaseId, OpenRequest>,
}

impl GovernanceCenter {
    /// A centre built from config. Give the city centre the intake feed.
    pub fn new(
        centre: Centre,
        catalog: Arc<Catalog>,
        bridge: Recipient<Publish>,
        intake_feed: Option<Recipient<TakeNewApplications>>,
    ) -> Self {
        Self {
            centre,
            catalog,
            bridge,
            intake_feed,
            processed: Processed::default(),
            open: HashMap::new(),
        }
    }

    fn me(&self) -> SystemId {
        SystemId::Governance(self.centre.code.clone())
    }

    fn apply(&mut self, envelope: &Envelope) -> Result<Vec<Envelope>, HandleError> {
        let poison = |e: crate::domain::EnvelopeError| HandleError::Poison(e.to_string());
        let is_city = self.centre.tier == Tier::City;
        match envelope.kind {
            MessageType::CollaborationRequested if is_city => {
                let request: CollaborationRequest = envelope.data().map_err(poison)?;
                Ok(self.open_request(request, &envelope.trace_id))
            }
            MessageType::CollaborationDispatched => {
                let event: CollaborationEvent = envelope.data().map_err(poison)?;
                Ok(vec![self.route_down(event, &envelope.trace_id)])
            }
            MessageType::CollaborationAnswered => {
                let result: CollaborationResult = envelope.data().map_err(poison)?;
                Ok(self.pass_up(result, &envelope.trace_id))
            }
            MessageType::ApprovalPublished if is_city => {
                let approval: Approval = envelope.data().map_err(poison)?;
                Ok(vec![self.envelope(
                    format!("{}/delivered", envelope.case_id),
                    MessageType::ApprovalDelivered,
                    &envelope.case_id,
                    SystemId::Intake,
                    &envelope.trace_id,
                    &approval,
                )])
            }
            other => Err(HandleError::Poison(format!(
                "a {} centre does not handle `{other}` messages",
                self.centre.tier
            ))),
        }
    }

    /// City: one event per collaborator, each sent where it must go next.
    fn open_request(&mut self, request: CollaborationRequest, trace_id: &str) -> Vec<Envelope> {
        let case_id = request.application.case_id.clone();
        if self.open.contains_key(&case_id) {
            return Vec::new();
        }
        let mut outputs = Vec::new();
        let mut events = Vec::new();
        for collaborator in &request.collaborators {
            let event = CollaborationEvent {
                event_id: EventId::from_string(format!("{case_id}-{}", collaborator.department)),
                case_id: case_id.clone(),
                requester: request.requester.clone(),
                department: collaborator.department.clone(),
                tier: collaborator.tier,
                region: request.application.region.clone(),
                matter_code: request.application.matter_code.clone(),
                materials: request.application.materials.clone(),
                route: Vec::new(),
            };
            events.push(event.event_id.clone());
            outputs.push(self.route_down(event, trace_id));
        }
        self.open.insert(
            case_id,
            OpenRequest {
                request,
                events,
                results: HashMap::new(),
                trace_id: trace_id.to_owned(),
            },
        );
        outputs
    }

    /// Adds this centre to the route and sends the event to the next centre down, or to the
    /// department when this centre is at the department's tier.
    fn route_down(&self, mut event: CollaborationEvent, trace_id: &str) -> Envelope {
        event.route.push(self.centre.hop());
        let next = if self.centre.tier >= event.tier {
            SystemId::Department(event.department.clone())
        } else {
            match self.centre.tier {
                Tier::City => SystemId::Governance(event.region.district.clone()),
                _ => SystemId::Governance(event.region.street.clone()),
            }
        };
        self.envelope(
            format!("{}/dispatched/{}", event.event_id, self.centre.code),
            MessageType::CollaborationDispatched,
            &event.case_id.clone(),
            next,
            trace_id,
            &event,
        )
    }

    /// Passes an answer one tier up; at the city, gathers it.
    fn pass_up(&mut self, result: CollaborationResult, trace_id: &str) -> Vec<Envelope> {
        if let Some(parent) = &self.centre.parent {
            return vec![self.envelope(
                format!("{}/answered/{}", result.event_id, self.centre.code),
                MessageType::CollaborationAnswered,
                &result.case_id,
                SystemId::Governance(parent.clone()),
                trace_id,
                &result,
            )];
        }
        let case_id = result.case_id.clone();
        let Some(open) = self.open.get_mut(&case_id) else {
            tracing::warn!(%case_id, event_id = %result.event_id, "answer for no open collaboration request; ignored");
            return Vec::new();
        };
        if !open.events.contains(&result.event_id) {
            tracing::warn!(%case_id, event_id = %result.event_id, "answer for an event this request did not dispatch; ignored");
            return Vec::new();
        }
        open.results
            .entry(result.event_id.clone())
            .or_insert(result);
        if open.results.len() < open.events.len() {
            return Vec::new();
        }
        let Some(open) = self.open.remove(&case_id) else {
            return Vec::new();
        };
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
        vec![self.envelope(
            format!("{case_id}/collaboration-completed"),
            MessageType::CollaborationCompleted,
            &case_id,
            SystemId::Department(completed.requester.clone()),
            &open.trace_id,
            &completed,
        )]
    }

    /// The envelope that publishes a new application to its responsible department.
    fn published(&self, fed: &FedApplication) -> Option<Envelope> {
        let application = &fed.application;
        let Ok(matter) = self.catalog.matter(&application.matter_code) else {
            tracing::error!(case_id = %application.case_id, matter = %application.matter_code, "fed application names an unknown matter; skipped");
            return None;
        };
        Some(self.envelope(
            format!("{}/published", application.case_id),
            MessageType::ApplicationPublished,
            &application.case_id,
            SystemId::Department(matter.department.clone()),
            &fed.trace_id,
            application,
        ))
    }
}

/// Most applications taken from the feed at once.
const FEED_BATCH: usize = 500;

/// Reads the intake feed forever: take what is new after the cursor, publish it, and move the
/// cursor only once the publish is confirmed — so nothing is skipped or taken twice.
async fn run_feed(
    feed: Recipient<TakeNewApplications>,
    centre: Addr<GovernanceCenter>,
    bridge: Recipient<Publish>,
) {
    let mut cursor = 0;
    loop {
        let batch = match feed
            .send(TakeNewApplications {
                after: cursor,
                max: FEED_BATCH,
            })
            .await
        {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "intake feed unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|fed| fed.sequence) else {
            continue;
        };
        let Ok(envelopes) = centre.send(BuildPublished(batch)).await else {
            return;
        };
        loop {
            match publish(&bridge, envelopes.clone()).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::error!(%error, "publishing fed applications failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        cursor = last;
    }
}

/// Builds the `application.published` envelopes of fed applications.
#[derive(Message)]
#[rtype(result = "Vec<Envelope>")]
struct BuildPublished(Vec<FedApplication>);

impl Actor for GovernanceCenter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
        if let Some(feed) = self.intake_feed.clone() {
            ctx.spawn(run_feed(feed, ctx.address(), self.bridge.clone()).into_actor(self));
        }
    }
}

impl Handler<BuildPublished> for GovernanceCenter {
    type Result = MessageResult<BuildPublished>;

    fn handle(&mut self, msg: BuildPublished, _: &mut Self::Context) -> Self::Result {
        MessageResult(msg.0.iter().filter_map(|fed| self.published(fed)).collect())
    }
}

impl BusSystem for GovernanceCenter {
    fn system_id(&self) -> SystemId {
        self.me()
    }

    fn processed(&mut self) -> &mut Processed {
        &mut self.processed
    }

    fn bridge(&self) -> &Recipient<Publish> {
        &self.bridge
    }

    fn apply(&mut self, envelope: &Envelope) -> Result<Vec<Envelope>, HandleError> {
        self.apply(envelope)
    }
}

impl Handler<Inbound> for GovernanceCenter {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    #[tracing::instrument(skip_all, fields(centre = %self.centre.code, case_id = %msg.0.case_id, kind = %msg.0.kind))]
    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        handle_inbound(self, msg.0)
    }
}
