//! One `impl Handler` per message of the intake system, with what the applicant's acts on a
//! case (a supplement, a rating) share.

use super::feed::IntakeCaseState;
use super::{
    AwaitCompletion, CaseActionError, CaseRecord, CaseView, FedApplication, GetCase, IntakeSystem,
    MarkReady, RateCase, Submission, Submit, SubmitRefused, SupplementCase, TakeNewApplications,
};
use crate::actors::snapshot_envelope;
use crate::domain::{
    message_ids, Application, CaseId, CaseStatus, Envelope, EnvelopeHead, MessageId, MessageType,
    Rating, Supplement, SystemId,
};
use crate::port::publish;
use crate::port::{HandleError, Inbound};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::future::Future;
use tokio::sync::oneshot;

impl Handler<Submit> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Submission, SubmitRefused>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) -> Self::Result {
        let (case_id, sequence, snapshot) = match self.register(msg) {
            Ok(registered) => registered,
            Err(refused) => return Box::pin(fut::ready(Err(refused))),
        };
        // Answer once the record is on the bus, or when waiting longer is not worth it.
        let (tx, rx) = oneshot::channel();
        self.durable_waiters.insert(sequence, tx);
        self.persist(snapshot, sequence, ctx);
        let timeout = self.submit_timeout;
        Box::pin(
            async move {
                let durable = matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())));
                Ok(Submission { case_id, durable })
            }
            .into_actor(self),
        )
    }
}

impl Handler<MarkReady> for IntakeSystem {
    type Result = ();

    fn handle(&mut self, _: MarkReady, _: &mut Self::Context) {
        self.skip_lost_positions();
        self.ready = true;
    }
}

impl Handler<TakeNewApplications> for IntakeSystem {
    type Result = ResponseFuture<Vec<FedApplication>>;

    fn handle(&mut self, msg: TakeNewApplications, _: &mut Self::Context) -> Self::Result {
        let batch = self.take(msg.after, msg.max);
        if !batch.is_empty() {
            return Box::pin(async move { batch });
        }
        let (tx, rx) = oneshot::channel();
        // One reader waits at a time: a newer one drops this sender, and this reader gets an
        // empty batch and asks again with its cursor.
        self.feed_waiter = Some((msg, tx));
        Box::pin(async move { rx.await.unwrap_or_default() })
    }
}

impl Handler<GetCase> for IntakeSystem {
    type Result = Option<CaseView>;

    fn handle(&mut self, msg: GetCase, _: &mut Self::Context) -> Self::Result {
        self.cases.get(&msg.0).map(|r| r.view.clone())
    }
}

impl Handler<AwaitCompletion> for IntakeSystem {
    type Result = Option<oneshot::Receiver<CaseView>>;

    fn handle(&mut self, msg: AwaitCompletion, _: &mut Self::Context) -> Self::Result {
        let record = self.cases.get_mut(&msg.0)?;
        let (tx, rx) = oneshot::channel();
        if record.view.status == CaseStatus::Completed {
            // Cannot fail: the receiver is still here, returned below.
            let _ = tx.send(record.view.clone());
        } else {
            record.watchers.push(tx);
        }
        Some(rx)
    }
}

impl Handler<SupplementCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Supplement, CaseActionError>>;

    fn handle(&mut self, msg: SupplementCase, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id.clone();
        let prepare = move |record: &mut CaseRecord, now| {
            let suspension = match (&record.view.suspension, record.supplement_sent) {
                (Some(s), Some(sent)) if s.sequence == sent => {
                    return Err(format!(
                        "case {case_id}: the supplementary materials were already sent; the department resumes the case"
                    ))
                }
                (Some(s), _) => s.clone(),
                (None, _) => {
                    return Err(format!(
                        "case {case_id} is not suspended: no department asked for supplementary materials"
                    ))
                }
            };
            record.supplement_sent = Some(suspension.sequence);
            Ok(ApplicantAct {
                id: message_ids::supplemented(&case_id, suspension.sequence),
                kind: MessageType::CaseSupplemented,
                department: suspension.department.clone(),
                data: Supplement {
                    sequence: suspension.sequence,
                    materials: msg.materials,
                    terminal_id: msg.terminal_id,
                    supplemented_at: now,
                },
            })
        };
        let settle = |record: &mut CaseRecord, published: Option<&Supplement>| {
            if published.is_none() {
                record.supplement_sent = None;
            }
        };
        self.act_on_case(msg.case_id, "supplement", prepare, settle)
    }
}

impl Handler<RateCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Rating, CaseActionError>>;

    fn handle(&mut self, msg: RateCase, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id.clone();
        let prepare = move |record: &mut CaseRecord, now| {
            if record.view.rating.is_some() || record.rating_sent {
                return Err(format!(
                    "case {case_id} is already rated; a case is rated once"
                ));
            }
            let department = match (&record.view.approval, record.view.status) {
                (Some(approval), CaseStatus::Completed) => approval.department.clone(),
                _ => {
                    return Err(format!(
                        "case {case_id} is not completed yet; only a completed case can be rated"
                    ))
                }
            };
            record.rating_sent = true;
            Ok(ApplicantAct {
                id: message_ids::rated(&case_id),
                kind: MessageType::CaseRated,
                department: department.clone(),
                data: Rating {
                    department,
                    score: msg.score,
                    comment: msg.comment,
                    terminal_id: msg.terminal_id,
                    rated_at: now,
                },
            })
        };
        let settle = |record: &mut CaseRecord, published: Option<&Rating>| match published {
            Some(rating) => {
                record.view.rating.get_or_insert_with(|| rating.clone());
            }
            None => record.rating_sent = false,
        };
        self.act_on_case(msg.case_id, "rating", prepare, settle)
    }
}

impl Handler<Inbound> for IntakeSystem {
    type Result = Result<(), HandleError>;

    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        if msg.0.kind == MessageType::StateSnapshot {
            return self.restore(&msg.0);
        }
        self.observe(&msg.0)
    }
}

/// What an applicant's act on a case publishes, once the case allows it.
struct ApplicantAct<T> {
    /// The message id, built from the act's cause so that a repeat keeps it.
    id: MessageId,
    /// The message type.
    kind: MessageType,
    /// The department that must hear of it.
    department: String,
    /// The supplement or rating.
    data: T,
}

impl IntakeSystem {
    /// Checks a submission, issues its case id and feed position, and records the case. Returns
    /// the case id, its sequence and the snapshot that makes it durable.
    fn register(&mut self, msg: Submit) -> Result<(CaseId, u64, Envelope), SubmitRefused> {
        if !self.ready {
            return Err(SubmitRefused::Starting);
        }
        let form = msg.form;
        self.catalog.matter(&form.matter_code)?;
        self.catalog.check_region(&form.region)?;
        let case_id = CaseId::generate();
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let application = Application {
            case_id: case_id.clone(),
            matter_code: form.matter_code,
            applicant: form.applicant,
            region: form.region,
            materials: form.materials,
            form: form.form,
            terminal_id: msg.terminal_id.clone(),
            channel: msg.channel,
            submitted_at: self.catalog.now(),
        };
        let sequence = self.next_sequence();
        let state = IntakeCaseState {
            sequence,
            application: application.clone(),
            trace_id: trace_id.clone(),
            terminal_id: msg.terminal_id.clone(),
        };
        let version = self.versions.next(&case_id);
        let snapshot = snapshot_envelope(
            SystemId::Intake,
            &case_id,
            version,
            &state,
            application.submitted_at,
        );
        tracing::info!(%case_id, terminal = %msg.terminal_id, sequence, "application received");
        self.cases.insert(
            case_id.clone(),
            CaseRecord::new(application, &msg.terminal_id),
        );
        self.feed.insert(sequence, (case_id.clone(), trace_id));
        Ok((case_id, sequence, snapshot))
    }

    /// How an applicant's act on a case goes: find the case; `prepare` refuses it (with what
    /// to tell the applicant) or marks it sent and says what to publish; publish it; then
    /// `settle` keeps what was published (`Some`) or, when it was not (`None`), undoes the
    /// mark so that the applicant can try again. `what` names the act in the refusal.
    fn act_on_case<T: Serialize + 'static>(
        &mut self,
        case_id: CaseId,
        what: &'static str,
        prepare: impl FnOnce(&mut CaseRecord, DateTime<Utc>) -> Result<ApplicantAct<T>, String>,
        settle: impl FnOnce(&mut CaseRecord, Option<&T>) + 'static,
    ) -> ResponseActFuture<Self, Result<T, CaseActionError>> {
        let trace_id = self.trace_id(&case_id);
        let now = self.catalog.now();
        let Some(record) = self.cases.get_mut(&case_id) else {
            return Box::pin(fut::ready(Err(CaseActionError::NotFound(format!(
                "no case `{case_id}`"
            )))));
        };
        let act = match prepare(record, now) {
            Ok(act) => act,
            Err(conflict) => return Box::pin(fut::ready(Err(CaseActionError::Conflict(conflict)))),
        };
        let sent = self.publish_one(
            act.id,
            act.kind,
            &case_id,
            SystemId::Department(act.department),
            trace_id,
            &act.data,
        );
        let data = act.data;
        Box::pin(sent.into_actor(self).map(move |sent, intake, _| {
            let record = intake.cases.get_mut(&case_id);
            match sent {
                Ok(()) => {
                    if let Some(record) = record {
                        settle(record, Some(&data));
                    }
                    Ok(data)
                }
                Err(error) => {
                    if let Some(record) = record {
                        settle(record, None);
                    }
                    Err(CaseActionError::Unavailable(format!(
                        "{what} not published, nothing changed: {error}"
                    )))
                }
            }
        }))
    }

    /// Publishes one message of the intake system about `case_id`.
    fn publish_one<T: Serialize>(
        &self,
        id: MessageId,
        kind: MessageType,
        case_id: &CaseId,
        target: SystemId,
        trace_id: String,
        data: &T,
    ) -> impl Future<Output = Result<(), HandleError>> + 'static {
        let envelope = Envelope::new_at(
            EnvelopeHead {
                id,
                kind,
                case_id: case_id.clone(),
                source: SystemId::Intake,
                target,
                trace_id,
            },
            data,
            self.catalog.now(),
        );
        publish(&self.bridge, vec![envelope])
    }
}
