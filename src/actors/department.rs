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

use super::{handle_delivery, publish, BusSystem, KeepsState, Processed, Versions};
use crate::bus::bridge::{HandleError, Inbound, Publish};
use crate::catalog::Catalog;
use crate::domain::{message_ids, InboxStage, StepKind};
use crate::domain::{
    Application, Approval, ApprovalStep, CaseId, CollaborationCompleted, CollaborationEvent,
    CollaborationOutcome, CollaborationRequest, CollaborationResult, Decision, Envelope, EventId,
    EventReturn, EventReturned, EventSigned, ExtensionDecision, ExtensionRequest, MessageType,
    Mode, Outcome, Receipt, Resumption, Supplement, Suspension, SystemId,
};
use crate::settings::DepartmentSettings;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Staff decide a case waiting in a manual department's inbox.
#[derive(Message)]
#[rtype(result = "Result<Approval, StaffError>")]
pub struct Decide {
    /// The case.
    pub case_id: CaseId,
    /// Approve or reject.
    pub decision: Decision,
    /// The officer's opinion; becomes the outcome's reason.
    pub opinion: String,
}

/// Staff ask the applicant for supplementary materials (补正); the case's clock stops.
#[derive(Message)]
#[rtype(result = "Result<Suspension, StaffError>")]
pub struct RequestSupplement {
    /// The case.
    pub case_id: CaseId,
    /// Materials the applicant must supply.
    pub materials: Vec<String>,
    /// Why.
    pub reason: String,
}

/// Staff answer a collaboration event waiting in a manual department's inbox.
#[derive(Message)]
#[rtype(result = "Result<CollaborationResult, StaffError>")]
pub struct AnswerCollaboration {
    /// The event.
    pub event_id: EventId,
    /// Agree or disagree.
    pub outcome: CollaborationOutcome,
    /// The department's opinion.
    pub opinion: String,
}

/// Staff sign for a collaboration event (签收): it is theirs and they are on it.
#[derive(Message)]
#[rtype(result = "Result<EventSigned, StaffError>")]
pub struct SignEvent {
    /// The event.
    pub event_id: EventId,
    /// The officer.
    pub officer: String,
}

/// Staff return an event that is not theirs (退单).
#[derive(Message)]
#[rtype(result = "Result<EventReturned, StaffError>")]
pub struct ReturnEvent {
    /// The event.
    pub event_id: EventId,
    /// Why it is not theirs.
    pub reason: String,
}

/// Staff ask the dispatching centre for more time on an event (延期申请).
#[derive(Message)]
#[rtype(result = "Result<ExtensionRequest, StaffError>")]
pub struct RequestExtension {
    /// The event.
    pub event_id: EventId,
    /// Working days asked for.
    pub days: u32,
    /// Why.
    pub reason: String,
}

/// What waits for staff.
#[derive(Message)]
#[rtype(result = "Inbox")]
pub struct GetInbox;

/// A department's inbox: cases to decide and collaboration events to answer.
#[derive(Debug, Clone, Serialize)]
pub struct Inbox {
    /// Department code.
    pub department: String,
    /// Cases waiting for a decision, and cases suspended for supplementary materials.
    pub cases: Vec<InboxCase>,
    /// Collaboration events waiting for an answer.
    pub collaborations: Vec<InboxEvent>,
}

/// A case waiting for staff.
#[derive(Debug, Clone, Serialize)]
pub struct InboxCase {
    /// `awaiting_decision` or `suspended`.
    pub stage: InboxStage,
    /// The application.
    pub application: Application,
    /// The receipt issued, with the current due date.
    pub receipt: Receipt,
    /// Required materials the application lacks.
    pub missing_materials: Vec<String>,
    /// The collaborators' answers, if the matter needed any.
    pub collaboration_results: Vec<CollaborationResult>,
}

/// A collaboration event waiting for staff.
#[derive(Debug, Clone, Serialize)]
pub struct InboxEvent {
    /// The event, with its current deadline.
    #[serde(flatten)]
    pub event: CollaborationEvent,
    /// Whether staff signed for it.
    pub signed: bool,
    /// Whether an extension request is waiting for the centre's decision.
    pub extension_pending: bool,
}

/// Why staff's request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StaffError {
    /// No such case or event at this department.
    #[error("{0}")]
    NotFound(String),
    /// The case or event is not in a state that allows this (already decided, returned, …).
    #[error("{0}")]
    Conflict(String),
    /// The result could not be published; nothing changed, try again.
    #[error("{0}")]
    Unavailable(String),
}

/// Where a case stands at the department.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Stage {
    /// Waiting for `collaboration.completed`.
    Collaborating,
    /// Waiting for staff (manual departments).
    AwaitingDecision,
    /// Waiting for the applicant's supplementary materials; the clock is stopped.
    Suspended {
        /// Which suspension of the case.
        sequence: u32,
        /// When the clock stopped.
        since: DateTime<Utc>,
    },
    /// Decided; the approval is published.
    Decided,
}

/// A case the department accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeptCase {
    application: Application,
    trace_id: String,
    receipt: Receipt,
    missing: Vec<String>,
    steps: Vec<ApprovalStep>,
    results: Vec<CollaborationResult>,
    stage: Stage,
    /// Suspensions so far.
    suspensions: u32,
}

/// What a department remembers about one case (its `state.snapshot`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepartmentCaseState {
    /// The case, if the department accepted it.
    case: Option<DeptCase>,
    /// Its collaboration events waiting for staff.
    events: Vec<PendingEvent>,
    /// Its events staff finished: attempt key and how.
    closed: Vec<(String, String)>,
}

/// A collaboration event waiting for staff.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingEvent {
    event: CollaborationEvent,
    trace_id: String,
    signed: bool,
    /// Extension requests sent so far.
    extension_requests: u32,
    extension_pending: bool,
}

/// A department approval system.
pub struct Department {
    /// Its configuration.
    settings: DepartmentSettings,
    /// The city's matters, centres, calendar and clock.
    catalog: Arc<Catalog>,
    /// Where its messages go.
    bridge: Recipient<Publish>,
    /// Inbound messages handled.
    processed: Processed,
    /// Cases accepted, by id.
    cases: HashMap<CaseId, DeptCase>,
    /// Collaboration events waiting for staff (manual departments only).
    events: HashMap<EventId, PendingEvent>,
    /// Events staff finished, by attempt key: their case and how (`answered`, `returned`).
    closed: HashMap<String, (CaseId, String)>,
    /// Versions of the snapshots of each case.
    versions: Versions,
    /// Which department holds which event; shared with the HTTP API.
    event_index: Arc<DashMap<EventId, String>>,
}

impl Department {
    /// A department built from config.
    pub fn new(
        settings: DepartmentSettings,
        catalog: Arc<Catalog>,
        bridge: Recipient<Publish>,
        event_index: Arc<DashMap<EventId, String>>,
    ) -> Self {
        Self {
            settings,
            catalog,
            bridge,
            processed: Processed::default(),
            cases: HashMap::new(),
            events: HashMap::new(),
            closed: HashMap::new(),
            versions: Versions::default(),
            event_index,
        }
    }

    fn me(&self) -> SystemId {
        SystemId::Department(self.settings.code.clone())
    }

    fn city(&self) -> SystemId {
        SystemId::Governance(self.catalog.city.clone())
    }

    fn step(&self, step: StepKind, note: String) -> ApprovalStep {
        ApprovalStep {
            step,
            by: self.me().to_string(),
            at: self.catalog.now(),
            note,
        }
    }

    /// What a message makes the department do: state changes now, outputs to publish.
    fn apply(&mut self, envelope: &Envelope) -> Result<Vec<Envelope>, HandleError> {
        let poison = |e: crate::domain::EnvelopeError| HandleError::Poison(e.to_string());
        match envelope.kind {
            MessageType::ApplicationPublished => {
                let application: Application = envelope.data().map_err(poison)?;
                Ok(self.accept(application, &envelope.trace_id))
            }
            MessageType::CollaborationDispatched => {
                let event: CollaborationEvent = envelope.data().map_err(poison)?;
                Ok(self.collaboration_event(event, &envelope.trace_id))
            }
            MessageType::CollaborationCompleted => {
                let completed: CollaborationCompleted = envelope.data().map_err(poison)?;
                Ok(self.collaboration_completed(completed))
            }
            MessageType::CaseSupplemented => {
                let supplement: Supplement = envelope.data().map_err(poison)?;
                Ok(self.supplemented(&envelope.case_id, supplement))
            }
            MessageType::CollaborationExtensionDecided => {
                let decision: ExtensionDecision = envelope.data().map_err(poison)?;
                self.extension_decided(decision);
                Ok(Vec::new())
            }
            // Ratings are counted by supervision; the department has nothing to change.
            MessageType::CaseRated => Ok(Vec::new()),
            other => Err(HandleError::Poison(format!(
                "a department does not handle `{other}` messages"
            ))),
        }
    }

    fn accept(&mut self, application: Application, trace_id: &str) -> Vec<Envelope> {
        let case_id = application.case_id.clone();
        if self.cases.contains_key(&case_id) {
            tracing::debug!(%case_id, "application already accepted");
            return Vec::new();
        }
        let Ok(matter) = self.catalog.matter(&application.matter_code) else {
            tracing::warn!(%case_id, matter = %application.matter_code, "unknown matter; ignored");
            return Vec::new();
        };
        let now = self.catalog.now();
        let calendar = &self.catalog.calendar;
        let due_by = calendar.due_by(now, matter.promised_days);
        let receipt = Receipt {
            receipt_no: format!("{}-{}", self.settings.code.to_uppercase(), case_id),
            department: self.settings.code.clone(),
            matter_code: matter.code.clone(),
            accepted_at: now,
            promised_days: matter.promised_days,
            due_date: calendar.due_date(due_by),
            due_by,
            suspended_working_days: 0,
        };
        let missing = missing_materials(&matter.required_materials, &application.materials);
        let mut steps = vec![self.step(
            StepKind::Accepted,
            format!(
                "受理 {} ({}), receipt {}, due {} ({} working days)",
                matter.name,
                matter.code,
                receipt.receipt_no,
                receipt.due_date,
                matter.promised_days
            ),
        )];
        steps.push(self.materials_step(matter.required_materials.len(), &missing));
        let outputs = vec![self.envelope(
            message_ids::accepted(&case_id),
            MessageType::ApplicationAccepted,
            &case_id,
            self.city(),
            trace_id,
            &receipt,
        )];
        let case = DeptCase {
            application,
            trace_id: trace_id.to_owned(),
            receipt,
            missing,
            steps,
            results: Vec::new(),
            stage: Stage::AwaitingDecision,
            suspensions: 0,
        };
        self.proceed(case, outputs)
    }

    fn materials_step(&self, required: usize, missing: &[String]) -> ApprovalStep {
        self.step(
            StepKind::MaterialsChecked,
            if missing.is_empty() {
                format!("all {required} required materials present")
            } else {
                format!("missing required materials: {}", missing.join(", "))
            },
        )
    }

    /// Moves an undecided case on by its matter's rules — an `auto` department rejects missing
    /// materials, a complete case whose matter needs collaborators asks for them, an `auto`
    /// department decides the rest — and keeps it.
    fn proceed(&mut self, mut case: DeptCase, mut outputs: Vec<Envelope>) -> Vec<Envelope> {
        let case_id = case.application.case_id.clone();
        let collaborators = self
            .catalog
            .matter(&case.application.matter_code)
            .map(|m| m.collaborators.clone())
            .unwrap_or_default();
        let auto = self.settings.mode == Mode::Auto;
        if auto && !case.missing.is_empty() {
            outputs.push(self.decide(&mut case, None));
        } else if !collaborators.is_empty() && case.missing.is_empty() && case.results.is_empty() {
            let names: Vec<_> = collaborators
                .iter()
                .map(|c| {
                    format!(
                        "{} ({})",
                        self.catalog.department_name(&c.department),
                        c.tier
                    )
                })
                .collect();
            case.steps.push(self.step(
                StepKind::CollaborationRequested,
                format!("协同请求: {}", names.join(", ")),
            ));
            case.stage = Stage::Collaborating;
            let request = CollaborationRequest {
                requester: self.settings.code.clone(),
                application: case.application.clone(),
                collaborators,
                receipt: Some(case.receipt.clone()),
            };
            outputs.push(self.envelope(
                message_ids::collaboration_requested(&case_id),
                MessageType::CollaborationRequested,
                &case_id,
                self.city(),
                &case.trace_id,
                &request,
            ));
        } else if auto {
            outputs.push(self.decide(&mut case, None));
        }
        self.cases.insert(case_id, case);
        outputs
    }

    /// The applicant supplied materials: the clock resumes, the due date moves by the working
    /// days suspended, and the case moves on.
    fn supplemented(&mut self, case_id: &CaseId, supplement: Supplement) -> Vec<Envelope> {
        let Some(mut case) = self.cases.remove(case_id) else {
            tracing::warn!(%case_id, "supplement for a case this department never accepted; ignored");
            return Vec::new();
        };
        let Stage::Suspended { sequence, since } = case.stage else {
            tracing::warn!(%case_id, "supplement for a case that is not suspended; ignored");
            self.cases.insert(case_id.clone(), case);
            return Vec::new();
        };
        if sequence != supplement.sequence {
            tracing::warn!(%case_id, sequence, got = supplement.sequence, "supplement answers another suspension; ignored");
            self.cases.insert(case_id.clone(), case);
            return Vec::new();
        }
        let now = self.catalog.now();
        let calendar = &self.catalog.calendar;
        let added =
            calendar.working_days_between(calendar.local_date(since), calendar.local_date(now));
        case.receipt.due_by = calendar.extend(case.receipt.due_by, added);
        case.receipt.due_date = calendar.due_date(case.receipt.due_by);
        case.receipt.suspended_working_days += added;
        for material in supplement.materials {
            if !case.application.materials.contains(&material) {
                case.application.materials.push(material);
            }
        }
        let required = self
            .catalog
            .matter(&case.application.matter_code)
            .map(|m| m.required_materials.clone())
            .unwrap_or_default();
        case.missing = missing_materials(&required, &case.application.materials);
        case.steps.push(self.step(
            StepKind::Resumed,
            format!(
                "补正材料已收到; clock resumed, due date moved by {added} working days to {}",
                case.receipt.due_date
            ),
        ));
        case.steps
            .push(self.materials_step(required.len(), &case.missing));
        case.stage = Stage::AwaitingDecision;
        let resumption = Resumption {
            sequence,
            receipt: case.receipt.clone(),
            added_working_days: added,
            suspended_at: since,
            resumed_at: now,
        };
        let outputs = vec![self.envelope(
            message_ids::resumed(case_id, sequence),
            MessageType::CaseResumed,
            case_id,
            SystemId::Intake,
            &case.trace_id,
            &resumption,
        )];
        self.proceed(case, outputs)
    }

    /// Publishes a staff action's messages; if they do not get through, `undo` puts the
    /// department back as it was, and staff are told to try again.
    fn publish_or_undo<T: 'static>(
        &mut self,
        outputs: Vec<Envelope>,
        what: &'static str,
        done: T,
        undo: impl FnOnce(&mut Department) + 'static,
    ) -> ResponseActFuture<Self, Result<T, StaffError>> {
        Box::pin(publish(&self.bridge, outputs).into_actor(self).map(
            move |published, department, _| match published {
                Ok(()) => Ok(done),
                Err(error) => {
                    undo(department);
                    Err(StaffError::Unavailable(format!(
                        "{what} not published, nothing changed: {error}"
                    )))
                }
            },
        ))
    }

    /// A staff action's message followed by the snapshot of its case as it now stands.
    fn with_snapshot(&mut self, envelope: Envelope) -> Vec<Envelope> {
        let case_id = envelope.case_id.clone();
        let mut outputs = vec![envelope];
        outputs.extend(self.snapshot_of(&case_id));
        outputs
    }

    fn collaboration_event(&mut self, event: CollaborationEvent, trace_id: &str) -> Vec<Envelope> {
        if self.closed.contains_key(&event.attempt_key()) {
            tracing::debug!(event_id = %event.event_id, "event already finished here");
            return Vec::new();
        }
        if self.settings.mode == Mode::Manual {
            self.event_index
                .insert(event.event_id.clone(), self.settings.code.clone());
            self.events
                .entry(event.event_id.clone())
                .or_insert(PendingEvent {
                    event,
                    trace_id: trace_id.to_owned(),
                    signed: false,
                    extension_requests: 0,
                    extension_pending: false,
                });
            return Vec::new();
        }
        let outcome = self.settings.collaboration_answer;
        let opinion = self.settings.collaboration_opinion.clone();
        vec![self.answer(&event, trace_id, outcome, opinion).1]
    }

    /// The result of an event and the message that sends it to the centre that dispatched it.
    fn answer(
        &self,
        event: &CollaborationEvent,
        trace_id: &str,
        outcome: CollaborationOutcome,
        opinion: String,
    ) -> (CollaborationResult, Envelope) {
        let result = CollaborationResult {
            event_id: event.event_id.clone(),
            case_id: event.case_id.clone(),
            department: self.settings.code.clone(),
            outcome,
            opinion,
            route: event.route.clone(),
            answered_at: self.catalog.now(),
        };
        let envelope = self.envelope(
            message_ids::answered(&event.attempt_key()),
            MessageType::CollaborationAnswered,
            &event.case_id,
            self.dispatcher(event),
            trace_id,
            &result,
        );
        (result, envelope)
    }

    /// The centre that dispatched an event to this department: the last of its route.
    fn dispatcher(&self, event: &CollaborationEvent) -> SystemId {
        event
            .route
            .last()
            .map(|hop| SystemId::Governance(hop.code.clone()))
            .unwrap_or_else(|| self.city())
    }

    fn extension_decided(&mut self, decision: ExtensionDecision) {
        let Some(pending) = self.events.get_mut(&decision.event_id) else {
            tracing::debug!(event_id = %decision.event_id, "extension decided for an event no longer waiting here");
            return;
        };
        pending.extension_pending = false;
        if decision.approved {
            pending.event.deadline = decision.deadline;
            pending.event.extensions = decision.extensions;
        }
    }

    fn collaboration_completed(&mut self, completed: CollaborationCompleted) -> Vec<Envelope> {
        let case_id = completed.application.case_id.clone();
        let Some(mut case) = self.cases.remove(&case_id) else {
            tracing::warn!(%case_id, "collaboration completed for a case this department never accepted");
            return Vec::new();
        };
        let mut outputs = Vec::new();
        if matches!(case.stage, Stage::Collaborating) {
            let summary: Vec<_> = completed
                .results
                .iter()
                .map(|r| {
                    let verdict = match r.outcome {
                        CollaborationOutcome::Agree => "agree",
                        CollaborationOutcome::Disagree => "disagree",
                    };
                    format!(
                        "{}: {verdict} ({})",
                        self.catalog.department_name(&r.department),
                        r.opinion
                    )
                })
                .collect();
            case.steps
                .push(self.step(StepKind::CollaborationCompleted, summary.join("; ")));
            case.results = completed.results;
            case.stage = Stage::AwaitingDecision;
            if self.settings.mode == Mode::Auto {
                outputs.push(self.decide(&mut case, None));
            }
        }
        self.cases.insert(case_id, case);
        outputs
    }

    /// Decides a case: by rule when `staff` is none, else as staff said. Returns the approval.
    fn decide(&self, case: &mut DeptCase, staff: Option<(Decision, String)>) -> Envelope {
        let (decision, reasons) = match staff {
            Some((decision, opinion)) => (decision, vec![opinion]),
            None => self.rule_outcome(case),
        };
        case.steps.push(self.step(
            StepKind::Decided,
            format!(
                "{}: {}",
                match decision {
                    Decision::Approved => "准予 approved",
                    Decision::Rejected => "不予 rejected",
                },
                reasons.join("; ")
            ),
        ));
        case.stage = Stage::Decided;
        let approval = Approval {
            department: self.settings.code.clone(),
            matter_code: case.application.matter_code.clone(),
            receipt_no: case.receipt.receipt_no.clone(),
            receipt: Some(case.receipt.clone()),
            steps: case.steps.clone(),
            outcome: Outcome { decision, reasons },
        };
        self.envelope(
            message_ids::approval(&case.application.case_id),
            MessageType::ApprovalPublished,
            &case.application.case_id,
            self.city(),
            &case.trace_id,
            &approval,
        )
    }

    /// The automatic rule: every required material present and every collaborator agreeing.
    fn rule_outcome(&self, case: &DeptCase) -> (Decision, Vec<String>) {
        let mut reasons: Vec<String> = case
            .missing
            .iter()
            .map(|m| format!("missing required material: {m}"))
            .collect();
        for result in &case.results {
            if result.outcome == CollaborationOutcome::Disagree {
                reasons.push(format!(
                    "{} ({}) disagrees: {}",
                    self.catalog.department_name(&result.department),
                    result.department,
                    result.opinion
                ));
            }
        }
        if reasons.is_empty() {
            let mut approved = vec!["all required materials present".to_owned()];
            if !case.results.is_empty() {
                let names: Vec<_> = case
                    .results
                    .iter()
                    .map(|r| self.catalog.department_name(&r.department))
                    .collect();
                approved.push(format!(
                    "collaborating departments agree: {}",
                    names.join(", ")
                ));
            }
            (Decision::Approved, approved)
        } else {
            (Decision::Rejected, reasons)
        }
    }

    /// A case staff may act on, or why not.
    fn staff_case(&self, case_id: &CaseId) -> Result<&DeptCase, StaffError> {
        let code = &self.settings.code;
        let case = self.cases.get(case_id).ok_or_else(|| {
            StaffError::NotFound(format!("case {case_id} is not at department {code}"))
        })?;
        if self.settings.mode == Mode::Auto {
            return Err(StaffError::Conflict(format!(
                "case {case_id} cannot be handled by staff: department {code} decides automatically"
            )));
        }
        Ok(case)
    }

    /// A waiting event staff may act on, or why not.
    fn staff_event(&self, event_id: &EventId) -> Result<&PendingEvent, StaffError> {
        if let Some(pending) = self.events.get(event_id) {
            return Ok(pending);
        }
        let finished = self
            .closed
            .iter()
            .find(|(key, _)| key.split('/').next() == Some(event_id.as_str()))
            .map(|(_, (_, how))| how.clone());
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

    /// Closes a waiting event (`how`: answered, returned) by publishing `envelope` (`what`, for
    /// staff), and reopens the event if that fails; gives `done` once published.
    fn close_event<T: 'static>(
        &mut self,
        event_id: &EventId,
        (how, what): (&'static str, &'static str),
        envelope: Envelope,
        done: T,
    ) -> ResponseActFuture<Self, Result<T, StaffError>> {
        let pending = self.events.remove(event_id);
        let key = pending.as_ref().map(|p| p.event.attempt_key());
        if let (Some(key), Some(p)) = (&key, &pending) {
            self.closed
                .insert(key.clone(), (p.event.case_id.clone(), how.to_owned()));
        }
        let outputs = self.with_snapshot(envelope);
        self.publish_or_undo(outputs, what, done, move |department| {
            if let (Some(pending), Some(key)) = (pending, key) {
                department.closed.remove(&key);
                department
                    .events
                    .insert(pending.event.event_id.clone(), pending);
            }
        })
    }
}

/// Required materials an application lacks.
fn missing_materials(required: &[String], handed_in: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|m| !handed_in.contains(m))
        .cloned()
        .collect()
}

impl Actor for Department {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl BusSystem for Department {
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

impl KeepsState for Department {
    type CaseState = DepartmentCaseState;

    fn persists(&self) -> bool {
        self.catalog.persist_state
    }

    fn versions(&mut self) -> &mut Versions {
        &mut self.versions
    }

    fn case_state(&self, case_id: &CaseId) -> Option<DepartmentCaseState> {
        let state = DepartmentCaseState {
            case: self.cases.get(case_id).cloned(),
            events: self
                .events
                .values()
                .filter(|p| &p.event.case_id == case_id)
                .cloned()
                .collect(),
            closed: self
                .closed
                .iter()
                .filter(|(_, (case, _))| case == case_id)
                .map(|(key, (_, how))| (key.clone(), how.clone()))
                .collect(),
        };
        (state.case.is_some() || !state.events.is_empty() || !state.closed.is_empty())
            .then_some(state)
    }

    fn restore_case(&mut self, case_id: &CaseId, state: DepartmentCaseState) {
        match state.case {
            Some(case) => self.cases.insert(case_id.clone(), case),
            None => self.cases.remove(case_id),
        };
        self.events.retain(|_, p| &p.event.case_id != case_id);
        for pending in state.events {
            self.event_index
                .insert(pending.event.event_id.clone(), self.settings.code.clone());
            self.events.insert(pending.event.event_id.clone(), pending);
        }
        for (key, how) in state.closed {
            if let Some(event_id) = key.split('/').next() {
                self.event_index.insert(
                    EventId::from_string(event_id.to_owned()),
                    self.settings.code.clone(),
                );
            }
            self.closed.insert(key, (case_id.clone(), how));
        }
    }
}

impl Handler<Inbound> for Department {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    #[tracing::instrument(skip_all, fields(department = %self.settings.code, case_id = %msg.0.case_id, kind = %msg.0.kind))]
    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        handle_delivery(self, msg.0)
    }
}

impl Handler<GetInbox> for Department {
    type Result = MessageResult<GetInbox>;

    fn handle(&mut self, _: GetInbox, _: &mut Self::Context) -> Self::Result {
        let mut cases: Vec<InboxCase> = self
            .cases
            .values()
            .filter_map(|c| {
                let stage = match c.stage {
                    Stage::AwaitingDecision => InboxStage::AwaitingDecision,
                    Stage::Suspended { .. } => InboxStage::Suspended,
                    _ => return None,
                };
                Some(InboxCase {
                    stage,
                    application: c.application.clone(),
                    receipt: c.receipt.clone(),
                    missing_materials: c.missing.clone(),
                    collaboration_results: c.results.clone(),
                })
            })
            .collect();
        cases.sort_by_key(|c| c.receipt.accepted_at);
        let mut collaborations: Vec<InboxEvent> = self
            .events
            .values()
            .map(|p| InboxEvent {
                event: p.event.clone(),
                signed: p.signed,
                extension_pending: p.extension_pending,
            })
            .collect();
        collaborations.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
        MessageResult(Inbox {
            department: self.settings.code.clone(),
            cases,
            collaborations,
        })
    }
}

impl Handler<Decide> for Department {
    type Result = ResponseActFuture<Self, Result<Approval, StaffError>>;

    fn handle(&mut self, msg: Decide, _: &mut Self::Context) -> Self::Result {
        if let Err(error) = self.staff_case(&msg.case_id).and_then(|case| {
            match case.stage {
                Stage::AwaitingDecision => Ok(()),
                Stage::Collaborating => Err("the case is still waiting for collaboration"),
                Stage::Suspended { .. } => {
                    Err("the case is suspended until the applicant supplies materials")
                }
                Stage::Decided => Err("the case is already decided"),
            }
            .map_err(|why| {
                StaffError::Conflict(format!("case {} cannot be decided now: {why}", msg.case_id))
            })
        }) {
            return Box::pin(fut::ready(Err(error)));
        }
        let Some(mut case) = self.cases.remove(&msg.case_id) else {
            return Box::pin(fut::ready(Err(StaffError::NotFound(
                msg.case_id.to_string(),
            ))));
        };
        let before = (case.steps.len(), case.stage.clone());
        let envelope = self.decide(&mut case, Some((msg.decision, msg.opinion)));
        let approval: Result<Approval, _> = envelope.data();
        self.cases.insert(msg.case_id.clone(), case);
        let case_id = msg.case_id;
        let outputs = self.with_snapshot(envelope);
        Box::pin(publish(&self.bridge, outputs).into_actor(self).map(
            move |result, department, _| match (result, approval) {
                (Ok(()), Ok(approval)) => Ok(approval),
                (result, approval) => {
                    // Not published: put the case back in the inbox so staff can try again.
                    if let Some(case) = department.cases.get_mut(&case_id) {
                        case.steps.truncate(before.0);
                        case.stage = before.1;
                    }
                    let reason = match (result, approval) {
                        (Err(e), _) => e.to_string(),
                        (_, Err(e)) => e.to_string(),
                        _ => String::new(),
                    };
                    Err(StaffError::Unavailable(format!(
                        "decision not published: {reason}"
                    )))
                }
            },
        ))
    }
}

impl Handler<RequestSupplement> for Department {
    type Result = ResponseActFuture<Self, Result<Suspension, StaffError>>;

    fn handle(&mut self, msg: RequestSupplement, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id;
        let checked = self.staff_case(&case_id).and_then(|case| match case.stage {
            Stage::AwaitingDecision => Ok(case.suspensions + 1),
            Stage::Suspended { .. } => Err(StaffError::Conflict(format!(
                "case {case_id} is already suspended, waiting for the applicant"
            ))),
            Stage::Collaborating => Err(StaffError::Conflict(format!(
                "case {case_id} is waiting for collaboration; ask for materials once it is back"
            ))),
            Stage::Decided => Err(StaffError::Conflict(format!(
                "case {case_id} is already decided"
            ))),
        });
        let sequence = match checked {
            Ok(sequence) => sequence,
            Err(error) => return Box::pin(fut::ready(Err(error))),
        };
        let now = self.catalog.now();
        let suspension = Suspension {
            department: self.settings.code.clone(),
            sequence,
            materials: msg.materials,
            reason: msg.reason,
            suspended_at: now,
        };
        let step = self.step(
            StepKind::Suspended,
            format!(
                "补正: {} ({}); clock stopped",
                suspension.materials.join(", "),
                suspension.reason
            ),
        );
        let Some(case) = self.cases.get_mut(&case_id) else {
            return Box::pin(fut::ready(Err(StaffError::NotFound(case_id.to_string()))));
        };
        let before = case.stage.clone();
        case.stage = Stage::Suspended {
            sequence,
            since: now,
        };
        case.suspensions = sequence;
        case.steps.push(step);
        let trace_id = case.trace_id.clone();
        let envelope = self.envelope(
            message_ids::suspended(&case_id, sequence),
            MessageType::CaseSuspended,
            &case_id,
            SystemId::Intake,
            &trace_id,
            &suspension,
        );
        let outputs = self.with_snapshot(envelope);
        self.publish_or_undo(
            outputs,
            "supplement request",
            suspension,
            move |department| {
                if let Some(case) = department.cases.get_mut(&case_id) {
                    case.stage = before;
                    case.suspensions = sequence - 1;
                    case.steps.pop();
                }
            },
        )
    }
}

impl Handler<AnswerCollaboration> for Department {
    type Result = ResponseActFuture<Self, Result<CollaborationResult, StaffError>>;

    fn handle(&mut self, msg: AnswerCollaboration, _: &mut Self::Context) -> Self::Result {
        let pending = match self.staff_event(&msg.event_id) {
            Ok(pending) => pending.clone(),
            Err(error) => return Box::pin(fut::ready(Err(error))),
        };
        let (result, envelope) =
            self.answer(&pending.event, &pending.trace_id, msg.outcome, msg.opinion);
        self.close_event(&msg.event_id, ("answered", "answer"), envelope, result)
    }
}

impl Handler<SignEvent> for Department {
    type Result = ResponseActFuture<Self, Result<EventSigned, StaffError>>;

    fn handle(&mut self, msg: SignEvent, _: &mut Self::Context) -> Self::Result {
        let pending = match self.staff_event(&msg.event_id) {
            Ok(pending) if pending.signed => {
                return Box::pin(fut::ready(Err(StaffError::Conflict(format!(
                    "collaboration event {} is already signed for",
                    msg.event_id
                )))))
            }
            Ok(pending) => pending.clone(),
            Err(error) => return Box::pin(fut::ready(Err(error))),
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
        let envelope = self.envelope(
            message_ids::signed(&pending.event.attempt_key()),
            MessageType::CollaborationSigned,
            &pending.event.case_id,
            self.dispatcher(&pending.event),
            &pending.trace_id,
            &signed,
        );
        let event_id = msg.event_id;
        if let Some(p) = self.events.get_mut(&event_id) {
            p.signed = true;
        }
        let outputs = self.with_snapshot(envelope);
        self.publish_or_undo(outputs, "signature", signed, move |department| {
            if let Some(p) = department.events.get_mut(&event_id) {
                p.signed = false;
            }
        })
    }
}

impl Handler<ReturnEvent> for Department {
    type Result = ResponseActFuture<Self, Result<EventReturned, StaffError>>;

    fn handle(&mut self, msg: ReturnEvent, _: &mut Self::Context) -> Self::Result {
        let pending = match self.staff_event(&msg.event_id) {
            Ok(pending) if pending.signed => {
                return Box::pin(fut::ready(Err(StaffError::Conflict(format!(
                    "collaboration event {} was signed for; a signed event is answered, not returned",
                    msg.event_id
                )))))
            }
            Ok(pending) => pending.clone(),
            Err(error) => return Box::pin(fut::ready(Err(error))),
        };
        let key = pending.event.attempt_key();
        let mut event = pending.event;
        event.returns.push(EventReturn {
            department: self.settings.code.clone(),
            reason: msg.reason,
            returned_at: self.catalog.now(),
        });
        let returned = EventReturned { event };
        let envelope = self.envelope(
            message_ids::returned(&key),
            MessageType::CollaborationReturned,
            &returned.event.case_id,
            self.dispatcher(&returned.event),
            &pending.trace_id,
            &returned,
        );
        self.close_event(&msg.event_id, ("returned", "return"), envelope, returned)
    }
}

impl Handler<RequestExtension> for Department {
    type Result = ResponseActFuture<Self, Result<ExtensionRequest, StaffError>>;

    fn handle(&mut self, msg: RequestExtension, _: &mut Self::Context) -> Self::Result {
        let pending = match self.staff_event(&msg.event_id) {
            Ok(pending) if pending.extension_pending => {
                return Box::pin(fut::ready(Err(StaffError::Conflict(format!(
                    "an extension of collaboration event {} is already waiting for the centre's decision",
                    msg.event_id
                )))))
            }
            Ok(pending) => pending.clone(),
            Err(error) => return Box::pin(fut::ready(Err(error))),
        };
        let request = ExtensionRequest {
            event: pending.event.clone(),
            days: msg.days,
            reason: msg.reason,
            requested_at: self.catalog.now(),
        };
        let number = pending.extension_requests + 1;
        let envelope = self.envelope(
            message_ids::extension_requested(&pending.event.attempt_key(), number),
            MessageType::CollaborationExtensionRequested,
            &pending.event.case_id,
            self.dispatcher(&pending.event),
            &pending.trace_id,
            &request,
        );
        let event_id = msg.event_id;
        if let Some(p) = self.events.get_mut(&event_id) {
            p.extension_pending = true;
            p.extension_requests = number;
        }
        let outputs = self.with_snapshot(envelope);
        self.publish_or_undo(outputs, "extension request", request, move |department| {
            if let Some(p) = department.events.get_mut(&event_id) {
                p.extension_pending = false;
                p.extension_requests = number - 1;
            }
        })
    }
}
