//! A department's approval system (部门审批系统).
//!
//! On `application.published` it accepts the case (receipt with the promised deadline) and checks
//! the materials. Then, by its matter's rules: missing materials → an `auto` department rejects
//! naming them; collaborators configured → it asks for collaboration; otherwise it decides. A
//! `manual` department leaves the decision to staff ([`Decide`], through the HTTP API).
//! On `collaboration.dispatched` it answers the event — by config when `auto`, by staff
//! ([`AnswerCollaboration`]) when `manual`. On `collaboration.completed` it decides with every
//! collaborator's answer in hand.

use super::{handle_inbound, publish, BusSystem, Processed};
use crate::bus::bridge::{HandleError, Inbound, Publish};
use crate::catalog::Catalog;
use crate::domain::{
    Application, Approval, ApprovalStep, CaseId, CollaborationCompleted, CollaborationEvent,
    CollaborationOutcome, CollaborationRequest, CollaborationResult, Decision, Envelope, EventId,
    MessageType, Mode, Outcome, Receipt, SystemId,
};
use crate::settings::DepartmentSettings;
use actix::prelude::*;
use chrono::{Duration, Utc};
use dashmap::DashMap;
use serde::Serialize;
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

/// What waits for staff.
#[derive(Message)]
#[rtype(result = "Inbox")]
pub struct GetInbox;

/// A department's inbox: cases to decide and collaboration events to answer.
#[derive(Debug, Clone, Serialize)]
pub struct Inbox {
    /// Department code.
    pub department: String,
    /// Cases waiting for a decision.
    pub cases: Vec<InboxCase>,
    /// Collaboration events waiting for an answer.
    pub collaborations: Vec<CollaborationEvent>,
}

/// A case waiting for a decision.
#[derive(Debug, Clone, Serialize)]
pub struct InboxCase {
    /// The application.
    pub application: Application,
    /// The receipt issued.
    pub receipt: Receipt,
    /// Required materials the application lacks.
    pub missing_materials: Vec<String>,
    /// The collaborators' answers, if the matter needed any.
    pub collaboration_results: Vec<CollaborationResult>,
}

/// Why staff's request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StaffError {
    /// No such case or event at this department.
    #[error("{0}")]
    NotFound(String),
    /// The case or event is not waiting for staff (already decided, still collaborating, …).
    #[error("{0}")]
    Conflict(String),
    /// The result could not be published; nothing changed, try again.
    #[error("{0}")]
    Unavailable(String),
}

/// Where a case stands at the department.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for `collaboration.completed`.
    Collaborating,
    /// Waiting for staff (manual departments).
    AwaitingDecision,
    /// Decided; the approval is published.
    Decided,
}

/// A case the department accepted.
struct DeptCase {
    application: Application,
    trace_id: String,
    receipt: Receipt,
    missing: Vec<String>,
    steps: Vec<ApprovalStep>,
    results: Vec<CollaborationResult>,
    stage: Stage,
}

/// A collaboration event waiting for staff.
struct PendingEvent {
    event: CollaborationEvent,
    trace_id: String,
}

/// A department approval system.
pub struct Department {
    /// Its configuration.
    settings: DepartmentSettings,
    /// The city's matters and centres.
    catalog: Arc<Catalog>,
    /// Where its messages go.
    bridge: Recipient<Publish>,
    /// Inbound messages handled.
    processed: Processed,
    /// Cases accepted, by id.
    cases: HashMap<CaseId, DeptCase>,
    /// Collaboration events waiting for staff (manual departments only).
    events: HashMap<EventId, PendingEvent>,
    /// Which department holds which waiting event; shared with the HTTP API.
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
            event_index,
        }
    }

    fn me(&self) -> SystemId {
        SystemId::Department(self.settings.code.clone())
    }

    fn city(&self) -> SystemId {
        SystemId::Governance(self.catalog.city.clone())
    }

    fn step(&self, step: &str, note: String) -> ApprovalStep {
        ApprovalStep {
            step: step.to_owned(),
            by: self.me().to_string(),
            at: Utc::now(),
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
        let now = Utc::now();
        let receipt = Receipt {
            receipt_no: format!("{}-{}", self.settings.code.to_uppercase(), case_id),
            department: self.settings.code.clone(),
            matter_code: matter.code.clone(),
            accepted_at: now,
            promised_days: matter.promised_days,
            due_by: now + Duration::days(i64::from(matter.promised_days)),
        };
        let missing: Vec<String> = matter
            .required_materials
            .iter()
            .filter(|m| !application.materials.contains(m))
            .cloned()
            .collect();
        let collaborators = matter.collaborators.clone();
        let mut steps = vec![self.step(
            "accepted",
            format!(
                "受理 {} ({}), receipt {}",
                matter.name, matter.code, receipt.receipt_no
            ),
        )];
        steps.push(self.step(
            "materials_checked",
            if missing.is_empty() {
                format!(
                    "all {} required materials present",
                    matter.required_materials.len()
                )
            } else {
                format!("missing required materials: {}", missing.join(", "))
            },
        ));
        let mut outputs = vec![self.envelope(
            format!("{case_id}/accepted"),
            MessageType::ApplicationAccepted,
            &case_id,
            self.city(),
            trace_id,
            &receipt,
        )];
        let mut case = DeptCase {
            application,
            trace_id: trace_id.to_owned(),
            receipt,
            missing,
            steps,
            results: Vec::new(),
            stage: Stage::AwaitingDecision,
        };
        let auto = self.settings.mode == Mode::Auto;
        if auto && !case.missing.is_empty() {
            outputs.push(self.decide(&mut case, None));
        } else if !collaborators.is_empty() && case.missing.is_empty() {
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
                "collaboration_requested",
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
                format!("{case_id}/collaboration-requested"),
                MessageType::CollaborationRequested,
                &case_id,
                self.city(),
                trace_id,
                &request,
            ));
        } else if auto {
            outputs.push(self.decide(&mut case, None));
        }
        self.cases.insert(case_id, case);
        outputs
    }

    fn collaboration_event(&mut self, event: CollaborationEvent, trace_id: &str) -> Vec<Envelope> {
        if self.settings.mode == Mode::Manual {
            self.event_index
                .insert(event.event_id.clone(), self.settings.code.clone());
            self.events
                .entry(event.event_id.clone())
                .or_insert(PendingEvent {
                    event,
                    trace_id: trace_id.to_owned(),
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
            answered_at: Utc::now(),
        };
        let dispatcher = event
            .route
            .last()
            .map(|hop| SystemId::Governance(hop.code.clone()))
            .unwrap_or_else(|| self.city());
        let envelope = self.envelope(
            format!("{}/answered", event.event_id),
            MessageType::CollaborationAnswered,
            &event.case_id,
            dispatcher,
            trace_id,
            &result,
        );
        (result, envelope)
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
                .push(self.step("collaboration_completed", summary.join("; ")));
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
            "decided",
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
            format!("{}/approval", case.application.case_id),
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
}

impl Handler<Inbound> for Department {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    #[tracing::instrument(skip_all, fields(department = %self.settings.code, case_id = %msg.0.case_id, kind = %msg.0.kind))]
    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        handle_inbound(self, msg.0)
    }
}

impl Handler<GetInbox> for Department {
    type Result = MessageResult<GetInbox>;

    fn handle(&mut self, _: GetInbox, _: &mut Self::Context) -> Self::Result {
        let mut cases: Vec<InboxCase> = self
            .cases
            .values()
            .filter(|c| matches!(c.stage, Stage::AwaitingDecision))
            .map(|c| InboxCase {
                application: c.application.clone(),
                receipt: c.receipt.clone(),
                missing_materials: c.missing.clone(),
                collaboration_results: c.results.clone(),
            })
            .collect();
        cases.sort_by_key(|c| c.receipt.accepted_at);
        let mut collaborations: Vec<CollaborationEvent> =
            self.events.values().map(|p| p.event.clone()).collect();
        collaborations.sort_by(|a, b| a.event_id.cmp(&b.event_id));
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
        let code = self.settings.code.clone();
        let Some(mut case) = self.cases.remove(&msg.case_id) else {
            return Box::pin(fut::ready(Err(StaffError::NotFound(format!(
                "case {} is not at department {code}",
                msg.case_id
            )))));
        };
        if !matches!(case.stage, Stage::AwaitingDecision) || self.settings.mode == Mode::Auto {
            let why = match (&case.stage, self.settings.mode) {
                (_, Mode::Auto) => format!("department {code} decides automatically"),
                (Stage::Collaborating, _) => "the case is still waiting for collaboration".into(),
                _ => "the case is already decided".into(),
            };
            self.cases.insert(msg.case_id.clone(), case);
            return Box::pin(fut::ready(Err(StaffError::Conflict(format!(
                "case {} cannot be decided now: {why}",
                msg.case_id
            )))));
        }
        let before = (case.steps.len(), case.stage.clone());
        let envelope = self.decide(&mut case, Some((msg.decision, msg.opinion)));
        let approval: Result<Approval, _> = envelope.data();
        self.cases.insert(msg.case_id.clone(), case);
        let case_id = msg.case_id;
        Box::pin(publish(&self.bridge, vec![envelope]).into_actor(self).map(
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

impl Handler<AnswerCollaboration> for Department {
    type Result = ResponseActFuture<Self, Result<CollaborationResult, StaffError>>;

    fn handle(&mut self, msg: AnswerCollaboration, _: &mut Self::Context) -> Self::Result {
        let Some(pending) = self.events.remove(&msg.event_id) else {
            return Box::pin(fut::ready(Err(StaffError::NotFound(format!(
                "collaboration event {} is not waiting at department {}",
                msg.event_id, self.settings.code
            )))));
        };
        let (result, envelope) =
            self.answer(&pending.event, &pending.trace_id, msg.outcome, msg.opinion);
        Box::pin(publish(&self.bridge, vec![envelope]).into_actor(self).map(
            move |published, department, _| match published {
                Ok(()) => {
                    department.event_index.remove(&pending.event.event_id);
                    Ok(result)
                }
                Err(error) => {
                    department
                        .events
                        .insert(pending.event.event_id.clone(), pending);
                    Err(StaffError::Unavailable(format!(
                        "answer not published: {error}"
                    )))
                }
            },
        ))
    }
}
