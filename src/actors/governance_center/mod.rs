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
//!
//! A case is finished at the city once it handed the case's approval to the intake system
//! (with no collaboration open and no returned event waiting for its staff); at a district or
//! street centre, once every event it routed down for the case was answered back through it or
//! returned past it, and no returned event waits for its staff. The centre then closes the case
//! (see [`KeepsState`](super::KeepsState)): a late request, answer or approval is dropped; only
//! an event reassigned after a return and routed through it again opens the case again.
//!
//! # Layout
//!
//! * `messages` — what a centre takes besides bus messages: staff requests and the feed's.
//! * this file — the actor's state, its start-up and its place on the bus.
//! * `state` — what it remembers per case, and its snapshot and restore.
//! * `routing` — one function per bus message type: requests split into events, events routed
//!   down, answers passed up and gathered, approvals delivered.
//! * `returns` — returned events: re-routed, passed up, or kept for staff to reassign.
//! * `extension` — the decision on an extension request.
//! * `intake_feed` — reading the intake feed and publishing what it brings (city).

mod extension;
mod intake_feed;
mod messages;
mod returns;
mod routing;
mod state;

pub use messages::{AwaitingEvent, GetAwaiting, ReassignError, ReassignEvent, StartFeed};
pub use state::CentreCaseState;

use super::acts::Acts;
use super::{handle_delivery, reassigned, AfterClose, BusSystem, Processed, Versions};
use crate::catalog::{Catalog, Centre};
use crate::domain::{CaseId, CollaborationEvent, Envelope, EventId, MessageType, SystemId};
use crate::maps::{FewIds, Map, Set};
use crate::port::{HandleError, Inbound, Publish};
use crate::store::ClosedStates;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use state::{Awaiting, OpenRequest};
use std::sync::Arc;

/// A governance centre.
pub struct GovernanceCenter {
    /// This centre.
    centre: Centre,
    /// The city.
    catalog: Arc<Catalog>,
    /// Where its messages go.
    bridge: Recipient<Publish>,
    /// Whether it writes state snapshots: only when the bus outlives the process
    /// ([`Bus::outlives_process`](crate::bus::Bus::outlives_process)).
    persist_state: bool,
    /// Inbound messages handled.
    processed: Processed,
    /// Staff reassignments taken.
    acts: Acts,
    /// Collaboration requests waiting for answers (city centre only). Boxed: a request is
    /// about 450 bytes, and a table keeps room for more entries than it holds.
    open: Map<CaseId, Box<OpenRequest>>,
    /// Returned events waiting for staff to reassign them.
    awaiting: Map<EventId, Awaiting>,
    /// Cases whose collaboration the city completed and whose approval it has not yet handed
    /// to the intake system: a repeated request changes nothing.
    completed: Set<CaseId>,
    /// The events this centre routed down and whose answer has not come back through it, by
    /// case.
    routed: Map<CaseId, FewIds<EventId>>,
    /// The last position published of each intake process's feed, by instance (city centre
    /// only).
    feed_cursors: Map<u32, u64>,
    /// Versions of the snapshots of each case.
    versions: Versions,
    /// Where the closed markers of cases it closed before it started are kept, if anywhere.
    closed_states: Option<ClosedStates>,
}

impl GovernanceCenter {
    /// A centre built from config. The city centre reads the intake feed once told where
    /// ([`StartFeed`]).
    pub fn new(
        centre: Centre,
        catalog: Arc<Catalog>,
        bridge: Recipient<Publish>,
        persist_state: bool,
    ) -> Self {
        let acts = Acts::new(bridge.clone(), catalog.act_timeout);
        Self {
            processed: Processed::new(catalog.flow_retention),
            centre,
            catalog,
            bridge,
            persist_state,
            acts,
            open: Map::default(),
            awaiting: Map::default(),
            completed: Set::default(),
            routed: Map::default(),
            feed_cursors: Map::default(),
            versions: Versions::default(),
            closed_states: None,
        }
    }

    /// Finds the closed markers of the cases it closed before it started in `states`
    /// (see [`KeepsState::closed_states`](crate::actors::KeepsState::closed_states)).
    pub fn finding_closed_cases_in(self, states: Option<ClosedStates>) -> Self {
        Self {
            closed_states: states,
            ..self
        }
    }

    /// This centre as a source or target on the bus.
    fn me(&self) -> SystemId {
        SystemId::Governance(self.centre.code.clone())
    }
}

impl Actor for GovernanceCenter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
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
        self.route(envelope)
    }

    fn now(&self) -> DateTime<Utc> {
        self.catalog.now()
    }

    /// A late repeat is dropped; an event reassigned after a return and routed through this
    /// centre again is new work.
    fn after_close(&self, envelope: &Envelope) -> Result<AfterClose, HandleError> {
        if envelope.kind != MessageType::CollaborationDispatched {
            return Ok(AfterClose::Drop);
        }
        let event: CollaborationEvent = envelope
            .data()
            .map_err(|e| HandleError::Poison(e.to_string()))?;
        Ok(reassigned(&event))
    }
}

impl Handler<Inbound> for GovernanceCenter {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    #[tracing::instrument(parent = &msg.1, skip_all, fields(centre = %self.centre.code, case_id = %msg.0.case_id, kind = %msg.0.kind, trace_id = %msg.0.trace_id))]
    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) -> Self::Result {
        handle_delivery(self, msg.0, ctx)
    }
}
