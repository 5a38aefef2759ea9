//! A governance centre (治理中心) of the three-tier tree.
//!
//! The city centre:
//! * takes new applications from the intake system's feed (in process or over HTTP, see
//!   [`crate::feed`]) and publishes each to its
//!   responsible department (`application.published`);
//! * turns a `collaboration.requested` into one `collaboration.dispatched` event per
//!   collaborating department, sent to the department itself (city tier) or down to the case's
//!   district centre;
//! * gathers the answers and, when all are in, sends `collaboration.completed` to the requester;
//! * hands every `approval.published` to the intake system (`approval.delivered`).
//!
//! District and street centres pass events down (district → the case's street → department)
//! and answers up (street → district → city), adding themselves to the event's route.
//!
//! Every centre also looks after the events it dispatched to a department:
//! * a return (退单) is re-routed to the department config names as the returning one's
//!   alternative (`return_to`); without one (or when the alternative returned it too) the return
//!   goes one tier up, where the event waits for that centre's staff to reassign it
//!   ([`ReassignEvent`]); the city, with no tier above, keeps it for its own staff;
//! * an extension request (延期申请) is approved when it asks for at most
//!   `supervision.max_extension_days` and the event has had fewer than
//!   `supervision.max_extensions`, else refused with the rule it broke.

use super::intake::FedApplication;
use super::{handle_delivery, publish, BusSystem, KeepsState, Processed, Versions};
use crate::bus::bridge::{HandleError, Inbound, Publish};
use crate::catalog::{Catalog, Centre};
use crate::domain::message_ids;
use crate::domain::{
    Approval, CaseId, CollaborationCompleted, CollaborationEvent, CollaborationRequest,
    CollaborationResult, Envelope, EventId, EventReturned, ExtensionDecision, ExtensionRequest,
    MessageId, MessageType, SystemId, Tier,
};
use crate::feed::FeedSource;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// A collaboration request the city centre is gathering answers for.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Staff of a centre reassign a returned event waiting there to a department.
#[derive(Message)]
#[rtype(result = "Result<CollaborationEvent, ReassignError>")]
pub struct ReassignEvent {
    /// The event.
    pub event_id: EventId,
    /// The department that must handle it now.
    pub department: String,
}

/// Returned events waiting at a centre for reassignment.
#[derive(Message)]
#[rtype(result = "Vec<AwaitingEvent>")]
pub struct GetAwaiting;

/// A returned event waiting for reassignment.
#[derive(Debug, Clone, Serialize)]
pub struct AwaitingEvent {
    /// The event, with every return in `returns`.
    #[serde(flatten)]
    pub event: CollaborationEvent,
}

/// Why a reassignment was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReassignError {
    /// No such event waits here.
    #[error("{0}")]
    NotWaiting(String),
    /// No such department.
    #[error("{0}")]
    UnknownDepartment(String),
    /// Not published; nothing changed.
    #[error("{0}")]
    Unavailable(String),
}

/// A returned event waiting for staff.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Awaiting {
    event: CollaborationEvent,
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
    /// Inbound messages handled.
    processed: Processed,
    /// Collaboration requests waiting for answers (city centre only).
    open: HashMap<CaseId, OpenRequest>,
    /// Returned events waiting for staff to reassign them.
    awaiting: HashMap<EventId, Awaiting>,
    /// Cases whose collaboration the city completed: a repeated request changes nothing.
    completed: HashSet<CaseId>,
    /// The last intake feed position published (city centre only).
    feed_cursor: u64,
    /// Versions of the snapshots of each case.
    versions: Versions,
}

/// What a centre remembers about one case (its `state.snapshot`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CentreCaseState {
    /// The open collaboration request (city).
    open: Option<OpenRequest>,
    /// Whether its collaboration is completed (city).
    completed: bool,
    /// Its returned events waiting here for reassignment.
    awaiting: Vec<Awaiting>,
    /// The intake feed position (the city's snapshot under [`FEED_KEY`]).
    feed_cursor: Option<u64>,
}

/// The case id under which the city keeps its intake feed position on the state topic.
const FEED_KEY: &str = "-intake-feed-";

impl GovernanceCenter {
    /// A centre built from config. The city centre reads the intake feed once told where
    /// ([`StartFeed`]).
    pub fn new(centre: Centre, catalog: Arc<Catalog>, bridge: Recipient<Publish>) -> Self {
        Self {
            centre,
            catalog,
            bridge,
            processed: Processed::default(),
            open: HashMap::new(),
            awaiting: HashMap::new(),
            completed: HashSet::new(),
            feed_cursor: 0,
            versions: Versions::default(),
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
            // Recorded by the intake system and supervision; nothing for the centre to route.
            MessageType::CollaborationSigned => Ok(Vec::new()),
            MessageType::CollaborationReturned => {
                let returned: EventReturned = envelope.data().map_err(poison)?;
                let from_department = matches!(envelope.source, SystemId::Department(_));
                Ok(self.returned(returned.event, from_department, &envelope.trace_id))
            }
            MessageType::CollaborationExtensionRequested => {
                let request: ExtensionRequest = envelope.data().map_err(poison)?;
                Ok(vec![self.decide_extension(
                    request,
                    &envelope.id,
                    &envelope.trace_id,
                )])
            }
            MessageType::ApprovalPublished if is_city => {
                let approval: Approval = envelope.data().map_err(poison)?;
                Ok(vec![self.envelope(
                    message_ids::delivered(&envelope.case_id),
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
        if self.open.contains_key(&case_id) || self.completed.contains(&case_id) {
            return Vec::new();
        }
        let mut outputs = Vec::new();
        let mut events = Vec::new();
        let now = self.catalog.now();
        for collaborator in &request.collaborators {
            let days = self
                .catalog
                .collaboration_days(&request.application.matter_code, &collaborator.department);
            let event = CollaborationEvent {
                event_id: message_ids::event_id(&case_id, &collaborator.department),
                case_id: case_id.clone(),
                requester: request.requester.clone(),
                department: collaborator.department.clone(),
                tier: collaborator.tier,
                region: request.application.region.clone(),
                matter_code: request.application.matter_code.clone(),
                materials: request.application.materials.clone(),
                route: Vec::new(),
                dispatched_at: now,
                deadline: self.catalog.calendar.due_by(now, days),
                extensions: 0,
                returns: Vec::new(),
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
            message_ids::dispatched(&event.attempt_key(), &self.centre.code),
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
                message_ids::answer_passed_up(&result.event_id, &self.centre.code),
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
        vec![self.envelope(
            message_ids::collaboration_completed(&case_id),
            MessageType::CollaborationCompleted,
            &case_id,
            SystemId::Department(completed.requester.clone()),
            &open.trace_id,
            &completed,
        )]
    }

    /// A department returned an event this centre dispatched (`from_department`), or a child
    /// centre passed a return up. Re-routes it to the returning department's alternative when
    /// there is one that has not returned it yet; else passes it one tier up, or keeps it for
    /// staff when it came from below or there is no tier above.
    fn returned(
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
                return vec![self.reassign(event, &alternative, trace_id)];
            }
            if let Some(parent) = self.centre.parent.clone() {
                return vec![self.envelope(
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
        self.awaiting.insert(
            event.event_id.clone(),
            Awaiting {
                event,
                trace_id: trace_id.to_owned(),
            },
        );
        Vec::new()
    }

    /// Gives an event to `department` with a fresh deadline and routes it from this centre.
    fn reassign(
        &self,
        mut event: CollaborationEvent,
        department: &str,
        trace_id: &str,
    ) -> Envelope {
        let now = self.catalog.now();
        let days = self
            .catalog
            .collaboration_days(&event.matter_code, department);
        event.tier = self
            .catalog
            .department(department)
            .map_or(event.tier, |d| d.tier);
        event.department = department.to_owned();
        event.dispatched_at = now;
        event.deadline = self.catalog.calendar.due_by(now, days);
        event.extensions = 0;
        // The route is the chain of centres down to this one, which `route_down` appends.
        if let Some(mine) = event.route.iter().position(|h| h.code == self.centre.code) {
            event.route.truncate(mine);
        }
        self.route_down(event, trace_id)
    }

    /// Approves or refuses an extension of an event this centre dispatched.
    fn decide_extension(
        &self,
        request: ExtensionRequest,
        request_id: &MessageId,
        trace_id: &str,
    ) -> Envelope {
        let rules = &self.catalog.supervision;
        let event = &request.event;
        let refusal = if request.days == 0 {
            Some("an extension must ask for at least one working day".to_owned())
        } else if request.days > rules.max_extension_days {
            Some(format!(
                "at most {} working days may be granted at once",
                rules.max_extension_days
            ))
        } else if event.extensions >= rules.max_extensions {
            Some(format!(
                "the event already had {} of the {} extensions allowed",
                event.extensions, rules.max_extensions
            ))
        } else {
            None
        };
        let approved = refusal.is_none();
        let decision = ExtensionDecision {
            event_id: event.event_id.clone(),
            department: event.department.clone(),
            approved,
            days: request.days,
            deadline: if approved {
                self.catalog.calendar.extend(event.deadline, request.days)
            } else {
                event.deadline
            },
            extensions: event.extensions + u32::from(approved),
            reason: refusal.unwrap_or_else(|| {
                format!(
                    "approved: {} working days (at most {} per extension)",
                    request.days, rules.max_extension_days
                )
            }),
            decided_by: self.me().to_string(),
            decided_at: self.catalog.now(),
        };
        self.envelope(
            message_ids::extension_decided(request_id),
            MessageType::CollaborationExtensionDecided,
            &event.case_id,
            SystemId::Department(event.department.clone()),
            trace_id,
            &decision,
        )
    }

    /// The envelope that publishes a new application to its responsible department.
    fn published(&self, fed: &FedApplication) -> Option<Envelope> {
        let application = &fed.application;
        let Ok(matter) = self.catalog.matter(&application.matter_code) else {
            tracing::error!(case_id = %application.case_id, matter = %application.matter_code, "fed application names an unknown matter; skipped");
            return None;
        };
        Some(self.envelope(
            message_ids::published(&application.case_id),
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

/// Reads the intake feed forever: take what is new after the cursor, publish it (with the new
/// cursor in the city's snapshot, written once the applications are on the bus), and move on —
/// so nothing is skipped or taken twice, across restarts of either side.
async fn run_feed(
    feed: FeedSource,
    mut cursor: u64,
    centre: Addr<GovernanceCenter>,
    bridge: Recipient<Publish>,
) {
    tracing::info!(cursor, "reading the intake feed");
    loop {
        let batch = match feed.take(cursor, FEED_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "intake feed unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|fed| fed.sequence) else {
            continue;
        };
        let Ok(envelopes) = centre.send(BuildPublished(batch, last)).await else {
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

/// Builds the `application.published` envelopes of fed applications up to feed position
/// `.1`, followed by the snapshot that records that position.
#[derive(Message)]
#[rtype(result = "Vec<Envelope>")]
struct BuildPublished(Vec<FedApplication>, u64);

/// Starts reading the intake feed from the position the city last recorded (city centre;
/// sent once its state is rebuilt).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartFeed(pub FeedSource);

impl Actor for GovernanceCenter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<StartFeed> for GovernanceCenter {
    type Result = ();

    fn handle(&mut self, msg: StartFeed, ctx: &mut Self::Context) {
        if self.centre.tier != Tier::City {
            return;
        }
        let feed = run_feed(msg.0, self.feed_cursor, ctx.address(), self.bridge.clone());
        ctx.spawn(feed.into_actor(self));
    }
}

impl Handler<BuildPublished> for GovernanceCenter {
    type Result = MessageResult<BuildPublished>;

    fn handle(&mut self, msg: BuildPublished, _: &mut Self::Context) -> Self::Result {
        let mut envelopes: Vec<Envelope> =
            msg.0.iter().filter_map(|fed| self.published(fed)).collect();
        self.feed_cursor = self.feed_cursor.max(msg.1);
        envelopes.extend(self.snapshot_of(&CaseId::from_string(FEED_KEY.to_owned())));
        MessageResult(envelopes)
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

    fn now(&self) -> DateTime<Utc> {
        self.catalog.now()
    }

    fn snapshot(&mut self, case_id: &CaseId) -> Option<Envelope> {
        self.snapshot_of(case_id)
    }
}

impl KeepsState for GovernanceCenter {
    type CaseState = CentreCaseState;

    fn persists(&self) -> bool {
        self.catalog.persist_state
    }

    fn versions(&mut self) -> &mut Versions {
        &mut self.versions
    }

    fn case_state(&self, case_id: &CaseId) -> Option<CentreCaseState> {
        if case_id.as_str() == FEED_KEY {
            return Some(CentreCaseState {
                feed_cursor: Some(self.feed_cursor),
                ..CentreCaseState::default()
            });
        }
        let state = CentreCaseState {
            open: self.open.get(case_id).cloned(),
            completed: self.completed.contains(case_id),
            awaiting: self
                .awaiting
                .values()
                .filter(|a| &a.event.case_id == case_id)
                .cloned()
                .collect(),
            feed_cursor: None,
        };
        (state.open.is_some() || state.completed || !state.awaiting.is_empty()).then_some(state)
    }

    fn restore_case(&mut self, case_id: &CaseId, state: CentreCaseState) {
        if let Some(cursor) = state.feed_cursor {
            self.feed_cursor = self.feed_cursor.max(cursor);
            return;
        }
        match state.open {
            Some(open) => self.open.insert(case_id.clone(), open),
            None => self.open.remove(case_id),
        };
        if state.completed {
            self.completed.insert(case_id.clone());
        }
        self.awaiting.retain(|_, a| &a.event.case_id != case_id);
        for awaiting in state.awaiting {
            self.awaiting
                .insert(awaiting.event.event_id.clone(), awaiting);
        }
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

impl Handler<ReassignEvent> for GovernanceCenter {
    type Result = ResponseActFuture<Self, Result<CollaborationEvent, ReassignError>>;

    fn handle(&mut self, msg: ReassignEvent, _: &mut Self::Context) -> Self::Result {
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
        let envelope = self.reassign(awaiting.event.clone(), &msg.department, &awaiting.trace_id);
        let event: Result<CollaborationEvent, _> = envelope.data();
        let case_id = awaiting.event.case_id.clone();
        let mut outputs = vec![envelope];
        outputs.extend(self.snapshot_of(&case_id));
        Box::pin(publish(&self.bridge, outputs).into_actor(self).map(
            move |published, centre, _| match (published, event) {
                (Ok(()), Ok(event)) => Ok(event),
                (published, _) => {
                    let reason = published.err().map(|e| e.to_string()).unwrap_or_default();
                    centre
                        .awaiting
                        .insert(awaiting.event.event_id.clone(), awaiting);
                    Err(ReassignError::Unavailable(format!(
                        "reassignment not published, nothing changed: {reason}"
                    )))
                }
            },
        ))
    }
}

impl Handler<Inbound> for GovernanceCenter {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    #[tracing::instrument(skip_all, fields(centre = %self.centre.code, case_id = %msg.0.case_id, kind = %msg.0.kind))]
    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        handle_delivery(self, msg.0)
    }
}
