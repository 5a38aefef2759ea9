//! A department's approval system (部门审批系统).
//!
//! On `application.published` it accepts the case — a receipt whose due date is counted in
//! working days on the city's calendar — and checks the materials. Then, by its matter's rules:
//! missing materials → an `auto` department rejects naming them; collaborators configured → it
//! asks for collaboration; otherwise it decides. A `manual` department leaves the decision to
//! staff ([`Decide`], through the HTTP API), who may first ask the applicant for supplementary
//! materials ([`RequestSupplement`]): the case is suspended and its clock stops until the
//! applicant supplies them (`case.supplemented`), when the due date moves by the working days
//! suspended (`case.resumed`).
//!
//! On `collaboration.dispatched` it answers the event — by config when `auto`; when `manual`,
//! staff sign for it ([`SignEvent`]), answer it ([`AnswerCollaboration`]), return it as not
//! theirs ([`ReturnEvent`]) or ask the dispatching centre for more time ([`RequestExtension`]).
//! On `collaboration.completed` it decides with every collaborator's answer in hand.
//!
//! A case is finished at the department once its own case is decided (approved or rejected,
//! the approval published) and no event of the case waits for its staff; for a case it only
//! helped with, once it answered or returned every event. It then closes the case (see
//! [`KeepsState`](super::KeepsState)): a late `application.published`,
//! `collaboration.completed` or `case.supplemented`, or a repeat of a dispatch it handled, is
//! dropped; only an event reassigned to it after a return opens the case again.
//!
//! # Layout
//!
//! * `messages` — what staff send the department, what they get back, and why it may refuse.
//! * `state` — what it remembers about a case, and the snapshot of it on the state topic.
//! * `pending` — the collaboration events waiting for staff, by id and by case.
//! * `closed` — the collaboration events staff finished, by case.
//! * `flow` — the bus messages it takes: one function per message type, behind
//!   [`BusSystem::apply`].
//! * `decision` — the materials check and the decision, by rule or by staff.
//! * `staff` — staff's handlers for cases (inbox, decision, supplement request), and how staff
//!   acts reach the bus ([`TakesActs`](crate::actors::acts::TakesActs)).
//! * `staff_events` — staff's handlers for collaboration events (sign, answer, return, ask for
//!   more time).

mod closed;
mod decision;
mod flow;
mod messages;
mod pending;
mod staff;
mod staff_events;
mod state;

pub use messages::{
    AnswerCollaboration, Decide, GetInbox, Inbox, InboxCase, InboxEvent, RequestExtension,
    RequestSupplement, ReturnEvent, SignEvent, StaffError,
};
pub use state::DepartmentCaseState;

use super::acts::Acts;
use super::{BusSystem, Processed, Versions};
use crate::catalog::Catalog;
use crate::domain::{
    ApprovalStep, CaseId, CollaborationEvent, DepartmentCode, Envelope, EventId, MessageId,
    MessageType, StepKind, SystemId,
};
use crate::maps::Map;
use crate::maps::SharedMap;
use crate::port::Publish;
use crate::settings::DepartmentSettings;
use crate::store::ClosedStates;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use closed::ClosedEvents;
use pending::PendingEvents;
use serde::Serialize;
use state::DeptCase;
use std::sync::Arc;

/// A department approval system.
pub struct Department {
    /// Its configuration.
    settings: DepartmentSettings,
    /// The city's matters, centres, calendar and clock.
    catalog: Arc<Catalog>,
    /// Where its messages go.
    bridge: Recipient<Publish>,
    /// Whether it writes state snapshots: only when the bus outlives the process
    /// ([`Bus::outlives_process`](crate::bus::Bus::outlives_process)).
    persist_state: bool,
    /// Inbound messages handled.
    processed: Processed,
    /// Staff acts taken.
    acts: Acts,
    /// Cases accepted, by id. Boxed, as the intake system's are: a case is some 440 bytes,
    /// and a map's spare slots (up to half of them) would each take as much.
    cases: Map<CaseId, Box<DeptCase>>,
    /// Collaboration events waiting for staff (manual departments only).
    events: PendingEvents,
    /// Events staff finished, until their case is forgotten.
    closed: ClosedEvents,
    /// Messages delivered before the case they need, and when each was first refused.
    waiting_for_case: Map<MessageId, DateTime<Utc>>,
    /// Versions of the snapshots of each case.
    versions: Versions,
    /// Where the closed markers of cases it closed before it started are kept, if anywhere.
    closed_states: Option<ClosedStates>,
    /// Which department holds which event; shared with the HTTP API.
    event_index: Arc<SharedMap<EventId, DepartmentCode>>,
}

impl Department {
    /// A department built from config.
    pub fn new(
        settings: DepartmentSettings,
        catalog: Arc<Catalog>,
        bridge: Recipient<Publish>,
        persist_state: bool,
        event_index: Arc<SharedMap<EventId, DepartmentCode>>,
    ) -> Self {
        let acts = Acts::new(bridge.clone(), catalog.act_timeout);
        Self {
            processed: Processed::new(catalog.flow_retention),
            settings,
            catalog,
            bridge,
            persist_state,
            acts,
            cases: Map::default(),
            events: PendingEvents::default(),
            closed: ClosedEvents::default(),
            waiting_for_case: Map::default(),
            versions: Versions::default(),
            event_index,
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

    /// Its id on the bus.
    fn me(&self) -> SystemId {
        SystemId::Department(self.settings.code.clone())
    }

    /// The city centre: where acceptances, collaboration requests and approvals go.
    fn city(&self) -> SystemId {
        SystemId::Governance(self.catalog.city.clone())
    }

    /// A step of a case's approval, taken by this department now.
    fn step(&self, step: StepKind, mut note: String) -> ApprovalStep {
        // A formatted note's buffer grew by doubling; the case keeps it while it is open.
        note.shrink_to_fit();
        ApprovalStep {
            step,
            by: self.me().to_string(),
            at: self.catalog.now(),
            note,
        }
    }

    /// The centre that dispatched an event to this department: the last of its route.
    fn dispatcher(&self, event: &CollaborationEvent) -> SystemId {
        event
            .route
            .last()
            .map(|hop| SystemId::Governance(hop.code.clone()))
            .unwrap_or_else(|| self.city())
    }

    /// A message about `event` (answer, signature, return, extension request) to the centre
    /// that dispatched it.
    fn to_dispatcher<T: Serialize>(
        &self,
        event: &CollaborationEvent,
        trace_id: &str,
        id: MessageId,
        kind: MessageType,
        data: &T,
    ) -> Envelope {
        self.sender().message(
            id,
            kind,
            &event.case_id,
            self.dispatcher(event),
            trace_id,
            data,
        )
    }
}

impl Actor for Department {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}
