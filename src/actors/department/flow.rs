//! The bus messages a department takes: [`BusSystem::apply`] hands each type to one function,
//! which changes the department's state and returns the messages to publish.

use super::decision::missing_materials;
use super::state::{DeptCase, PendingEvent, Stage};
use super::Department;
use crate::actors::{handle_delivery, reassigned, AfterClose, BusSystem, Processed};
use crate::domain::{
    message_ids, Application, CaseId, CollaborationCompleted, CollaborationEvent,
    CollaborationOutcome, CollaborationRequest, CollaborationResult, Envelope, EnvelopeError,
    ExtensionDecision, MessageType, Mode, Receipt, ReceiptNo, Resumption, StepKind, Supplement,
    SystemId, TraceId,
};
use crate::port::{HandleError, Inbound, Publish};
use crate::settings::MatterSettings;
use actix::prelude::*;
use chrono::{DateTime, Utc};

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

    /// What a message makes the department do: state changes now, outputs to publish.
    fn apply(&mut self, envelope: &Envelope) -> Result<Vec<Envelope>, HandleError> {
        let poison = |e: EnvelopeError| HandleError::Poison(e.to_string());
        match envelope.kind {
            MessageType::ApplicationPublished => {
                let application: Application = envelope.data().map_err(poison)?;
                self.check_applicant(&application)?;
                Ok(self.accept(application, &envelope.trace_id))
            }
            MessageType::CollaborationDispatched => {
                let event: CollaborationEvent = envelope.data().map_err(poison)?;
                Ok(self.collaboration_event(event, &envelope.trace_id))
            }
            MessageType::CollaborationCompleted => {
                let completed: CollaborationCompleted = envelope.data().map_err(poison)?;
                self.check_applicant(&completed.application)?;
                self.known_case(envelope)?;
                Ok(self.collaboration_completed(completed))
            }
            MessageType::CaseSupplemented => {
                let supplement: Supplement = envelope.data().map_err(poison)?;
                self.known_case(envelope)?;
                Ok(self.supplemented(&envelope.case_id, supplement))
            }
            MessageType::CollaborationExtensionDecided => {
                let decision: ExtensionDecision = envelope.data().map_err(poison)?;
                self.extension_decided(decision);
                Ok(Vec::new())
            }
            // Ratings are counted by supervision; the department has nothing to change, but as
            // their addressee it is the one to refuse a rating it cannot read.
            MessageType::CaseRated => {
                envelope.check_data().map_err(poison)?;
                Ok(Vec::new())
            }
            other => Err(HandleError::Poison(format!(
                "a department does not handle `{other}` messages"
            ))),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.catalog.now()
    }

    /// A late repeat is dropped, but a rating it cannot read is still refused, and an event
    /// reassigned to it after a return is new work.
    fn after_close(&self, envelope: &Envelope) -> Result<AfterClose, HandleError> {
        let poison = |e: EnvelopeError| HandleError::Poison(e.to_string());
        match envelope.kind {
            MessageType::CaseRated => envelope
                .check_data()
                .map_err(poison)
                .map(|()| AfterClose::Drop),
            MessageType::CollaborationDispatched => {
                let event: CollaborationEvent = envelope.data().map_err(poison)?;
                Ok(reassigned(&event))
            }
            _ => Ok(AfterClose::Drop),
        }
    }
}

impl Department {
    /// Refuses an application whose applicant the department could not show its staff: a key
    /// this process does not have, or a block altered or moved from another case. Sent again,
    /// it would fail the same way, so it goes to dead-letters with the reason.
    fn check_applicant(&self, application: &Application) -> Result<(), HandleError> {
        application
            .check_sealed(&self.catalog.keyring)
            .map_err(|e| {
                HandleError::Poison(format!(
                    "the applicant of case {}: {e}",
                    application.case_id
                ))
            })
    }

    /// Refuses, for now, a message about a case this department has not taken yet. Only a
    /// case it accepted can be completed or supplemented, so the case's application is still
    /// on its way: after a restart the topics are read independently, and the application (or
    /// the snapshot of the instance that took it) may come after the completion. The message
    /// is delivered again until the case is known — never dropped, or the case would wait for
    /// good. Not forever either: a message whose case does not come within
    /// `service.stalled_after_secs` (a stray record, a department code moved) would hold its
    /// partition for good, so it goes to dead-letters then, saying why; the case, if it exists,
    /// is listed as stalled and an operator can re-drive it.
    fn known_case(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        if self.cases.contains_key(&envelope.case_id) {
            self.waiting_for_case.remove(&envelope.id);
            return Ok(());
        }
        let now = self.catalog.now();
        let since = *self
            .waiting_for_case
            .entry(envelope.id.clone())
            .or_insert(now);
        let waited = (now - since).to_std().unwrap_or_default();
        if waited >= self.catalog.stalled_after {
            self.waiting_for_case.remove(&envelope.id);
            return Err(HandleError::Poison(format!(
                "`{}` for case {}: the department never took the case ({} s waited for its \
                 application)",
                envelope.kind,
                envelope.case_id,
                waited.as_secs()
            )));
        }
        Err(HandleError::Retry(format!(
            "`{}` for case {} came before the department took the case; delivered again until it has",
            envelope.kind, envelope.case_id
        )))
    }
}

impl Handler<Inbound> for Department {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    #[tracing::instrument(parent = &msg.1, skip_all, fields(department = %self.settings.code, case_id = %msg.0.case_id, kind = %msg.0.kind, trace_id = %msg.0.trace_id))]
    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) -> Self::Result {
        handle_delivery(self, msg.0, ctx)
    }
}

impl Department {
    /// `application.published`: accepts the case with a receipt, checks its materials and
    /// moves it on.
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
        let receipt = self.receipt(&case_id, matter);
        let missing = missing_materials(&matter.required_materials, &application.materials);
        let steps = vec![
            self.step(
                StepKind::Accepted,
                format!(
                    "受理 {} ({}), receipt {}, due {} ({} working days)",
                    matter.name,
                    matter.code,
                    receipt.receipt_no,
                    receipt.due_date,
                    matter.promised_days
                ),
            ),
            self.materials_step(matter.required_materials.len(), &missing),
        ];
        let outputs = vec![self.sender().message(
            message_ids::accepted(&case_id),
            MessageType::ApplicationAccepted,
            &case_id,
            self.city(),
            trace_id,
            &receipt,
        )];
        let case = DeptCase {
            application,
            trace_id: TraceId::from(trace_id),
            receipt,
            missing,
            steps,
            results: Vec::new(),
            stage: Stage::AwaitingDecision,
            suspensions: 0,
        };
        self.proceed(case, outputs)
    }

    /// The receipt for a case accepted now: due the matter's promised working days from now
    /// on the city's calendar.
    fn receipt(&self, case_id: &CaseId, matter: &MatterSettings) -> Receipt {
        let now = self.catalog.now();
        let calendar = &self.catalog.calendar;
        let due_by = calendar.due_by(now, matter.promised_days);
        Receipt {
            receipt_no: ReceiptNo::from_string(format!(
                "{}-{}",
                self.settings.code.as_str().to_uppercase(),
                case_id
            )),
            department: self.settings.code.clone(),
            matter_code: matter.code.clone(),
            accepted_at: now,
            promised_days: matter.promised_days,
            due_date: calendar.due_date(due_by),
            due_by,
            suspended_working_days: 0,
        }
    }

    /// Moves an undecided case on by its matter's rules — an `auto` department rejects missing
    /// materials, a complete case whose matter needs collaborators asks for them, an `auto`
    /// department decides the rest — and keeps it.
    fn proceed(&mut self, mut case: DeptCase, mut outputs: Vec<Envelope>) -> Vec<Envelope> {
        let collaborators = self
            .catalog
            .matter(&case.application.matter_code)
            .map(|m| m.collaborators.clone())
            .unwrap_or_default();
        let auto = self.settings.mode == Mode::Auto;
        if auto && !case.missing.is_empty() {
            outputs.push(self.decide(&mut case, None).1);
        } else if !collaborators.is_empty() && case.missing.is_empty() && case.results.is_empty() {
            let request = CollaborationRequest {
                requester: self.settings.code.clone(),
                application: case.application.clone(),
                collaborators,
                receipt: Some(case.receipt.clone()),
            };
            outputs.push(self.request_collaboration(&mut case, &request));
        } else if auto {
            outputs.push(self.decide(&mut case, None).1);
        }
        self.cases
            .insert(case.application.case_id.clone(), Box::new(case));
        outputs
    }

    /// Sends a case off for collaboration: the step in its history, and the request to the
    /// city centre.
    fn request_collaboration(
        &self,
        case: &mut DeptCase,
        request: &CollaborationRequest,
    ) -> Envelope {
        let names: Vec<_> = request
            .collaborators
            .iter()
            .map(|c| {
                format!(
                    "{} ({})",
                    self.catalog.department_name(&c.department),
                    c.tier
                )
            })
            .collect();
        case.add_step(self.step(
            StepKind::CollaborationRequested,
            format!("协同请求: {}", names.join(", ")),
        ));
        case.stage = Stage::Collaborating;
        let case_id = &case.application.case_id;
        self.sender().message(
            message_ids::collaboration_requested(case_id),
            MessageType::CollaborationRequested,
            case_id,
            self.city(),
            case.trace_id.as_str(),
            request,
        )
    }

    /// `case.supplemented`: the applicant supplied materials. The clock resumes, the due date
    /// moves by the working days suspended, and the case moves on.
    fn supplemented(&mut self, case_id: &CaseId, supplement: Supplement) -> Vec<Envelope> {
        let Some((mut case, since)) = self.take_suspended(case_id, supplement.sequence) else {
            return Vec::new();
        };
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
        case.add_step(self.step(
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
            sequence: supplement.sequence,
            receipt: case.receipt.clone(),
            added_working_days: added,
            suspended_at: since,
            resumed_at: now,
        };
        let outputs = vec![self.sender().message(
            message_ids::resumed(case_id, supplement.sequence),
            MessageType::CaseResumed,
            case_id,
            SystemId::Intake,
            case.trace_id.as_str(),
            &resumption,
        )];
        self.proceed(case, outputs)
    }

    /// Takes out a case suspended as its suspension `sequence`, and when its clock stopped;
    /// leaves anything else where it is.
    fn take_suspended(
        &mut self,
        case_id: &CaseId,
        sequence: u32,
    ) -> Option<(DeptCase, DateTime<Utc>)> {
        let Some(case) = self.cases.get(case_id) else {
            tracing::warn!(%case_id, "supplement for a case this department never accepted; ignored");
            return None;
        };
        let Stage::Suspended {
            sequence: current,
            since,
        } = case.stage
        else {
            tracing::warn!(%case_id, "supplement for a case that is not suspended; ignored");
            return None;
        };
        if current != sequence {
            tracing::warn!(%case_id, sequence = current, got = sequence, "supplement answers another suspension; ignored");
            return None;
        }
        self.cases.remove(case_id).map(|case| (*case, since))
    }

    /// `collaboration.dispatched`: an `auto` department answers by config; a `manual` one keeps
    /// the event for staff.
    fn collaboration_event(&mut self, event: CollaborationEvent, trace_id: &str) -> Vec<Envelope> {
        if self.closed.contains(&event.case_id, &event.attempt_key()) {
            tracing::debug!(event_id = %event.event_id, "event already finished here");
            return Vec::new();
        }
        if self.settings.mode == Mode::Manual {
            self.event_index
                .insert(event.event_id.clone(), self.settings.code.clone());
            self.events.insert_new(PendingEvent {
                event,
                trace_id: TraceId::from(trace_id),
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
    pub(super) fn answer(
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
        let envelope = self.to_dispatcher(
            event,
            trace_id,
            message_ids::answered(&event.attempt_key()),
            MessageType::CollaborationAnswered,
            &result,
        );
        (result, envelope)
    }

    /// `collaboration.extension_decided`: the centre granted or refused more time on an event.
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

    /// `collaboration.completed`: every collaborator answered. The answers join the case, and
    /// an `auto` department decides.
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
                outputs.push(self.decide(&mut case, None).1);
            }
        }
        self.cases.insert(case_id, case);
        outputs
    }
}

#[cfg(test)]
mod tests;
