//! One `impl Handler` per message of the intake system, with what the applicant's acts on a
//! case (a supplement, a rating) share.

use super::feed::{IntakeCaseState, IntakeSnapshot};
use super::{
    AwaitCompletion, CaseActionError, CaseReadError, CaseRecord, CaseView, FedApplication, GetCase,
    IntakeSystem, MarkReady, OwnCase, OwnCases, RateCase, Submission, Submit, SubmitRefused,
    SupplementCase, TakeNewApplications,
};
use crate::actors::acts::{self, ActRequest, Acted, Acts, TakesActs};
use crate::actors::snapshot_envelope;
use crate::domain::{
    message_ids, Applicant, Application, CaseId, CaseStatus, Envelope, EnvelopeHead, FormFields,
    MessageId, MessageType, Rating, Supplement, SystemId,
};
use crate::port::{Delivery, HandleError, Inbound};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::oneshot;

impl Handler<Submit> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Submission, SubmitRefused>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) -> Self::Result {
        let (case_id, sequence, snapshot) = match self.register(msg) {
            Ok(registered) => registered,
            Err(refused) => return Box::pin(fut::ready(Err(refused))),
        };
        // Answer once the bus took or refused the record, or when waiting longer is not worth it.
        let (tx, rx) = oneshot::channel();
        self.durable_waiters.insert(sequence, tx);
        self.persist(snapshot, sequence, ctx);
        let timeout = self.submit_timeout;
        Box::pin(
            async move {
                let delivery = match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(delivery)) => delivery,
                    // Still sending (or the system stopped): the submission is kept all the same.
                    Ok(Err(_)) | Err(_) => Delivery::NotYet,
                };
                Ok(Submission { case_id, delivery })
            }
            .into_actor(self),
        )
    }
}

impl Handler<MarkReady> for IntakeSystem {
    type Result = ();

    fn handle(&mut self, _: MarkReady, _: &mut Self::Context) {
        self.skip_lost_positions();
        self.fail_lost_submissions();
        self.ready = true;
    }
}

impl Handler<TakeNewApplications> for IntakeSystem {
    type Result = ResponseFuture<Vec<FedApplication>>;

    fn handle(&mut self, msg: TakeNewApplications, _: &mut Self::Context) -> Self::Result {
        let batch = self.take(msg.after, msg.max);
        if !batch.is_empty() || !msg.wait {
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
    type Result = ResponseActFuture<Self, Result<Option<CaseView<Applicant>>, CaseReadError>>;

    fn handle(&mut self, msg: GetCase, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.0;
        let asked = case_id.clone();
        let then = move |intake: &mut Self, _: &mut Context<Self>| -> Self::Result {
            let keyring = &intake.catalog.keyring;
            let view = intake.cases.get(&asked).map(|r| r.view.opened(keyring));
            Box::pin(fut::ready(view.transpose().map_err(CaseReadError::from)))
        };
        self.with_case(&case_id, ctx, then, |error| Err(error.into()))
    }
}

impl Handler<OwnCases> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Vec<OwnCase>, CaseReadError>>;

    /// The newest of the applicant's cases in the case repository, with those in memory (newer
    /// than their rows, or not written yet); without a repository, those in memory. A case
    /// that leaves memory while the repository is read is listed as it was when asked, unless
    /// the read found its row.
    fn handle(&mut self, msg: OwnCases, _: &mut Self::Context) -> Self::Result {
        let owner = msg.0;
        let listed = self.repository.as_ref().map(|r| r.list_own(&owner));
        let asked: Vec<OwnCase> = if listed.is_some() {
            self.own_in_memory(&owner).collect()
        } else {
            Vec::new()
        };
        Box::pin(
            async move {
                match listed {
                    Some(listed) => listed.await,
                    None => Ok(Vec::new()),
                }
            }
            .into_actor(self)
            .map(move |listed, intake, _| {
                let mut own: crate::maps::Map<CaseId, OwnCase> = listed?
                    .into_iter()
                    .map(|case| (case.case_id.clone(), case))
                    .collect();
                for case in asked {
                    own.entry(case.case_id.clone()).or_insert(case);
                }
                own.extend(
                    intake
                        .own_in_memory(&owner)
                        .map(|case| (case.case_id.clone(), case)),
                );
                let mut own: Vec<OwnCase> = own.into_values().collect();
                own.sort_by_key(|case| std::cmp::Reverse(case.submitted_at));
                Ok(own)
            }),
        )
    }
}

impl IntakeSystem {
    /// `owner`'s cases in memory, as their list shows them.
    fn own_in_memory<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = OwnCase> + 'a {
        self.cases
            .values()
            .map(|record| &record.view)
            .filter(move |view| view.application.owner.as_deref() == Some(owner))
            .map(OwnCase::of)
    }
}

impl Handler<AwaitCompletion> for IntakeSystem {
    type Result = ResponseActFuture<Self, Option<oneshot::Receiver<CaseView>>>;

    fn handle(&mut self, msg: AwaitCompletion, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.0;
        if self.is_foreign(&case_id) {
            return self.await_foreign(case_id);
        }
        let asked = case_id.clone();
        let then = move |intake: &mut Self, _: &mut Context<Self>| -> Self::Result {
            Box::pin(fut::ready(intake.await_completion(&asked)))
        };
        // A case that cannot be read now is waited for no differently from an unknown one.
        self.with_case(&case_id, ctx, then, |_| None)
    }
}

impl IntakeSystem {
    /// Waits for `case_id` to complete (or fail); none for a case not in memory.
    fn await_completion(&mut self, case_id: &CaseId) -> Option<oneshot::Receiver<CaseView>> {
        let record = self.cases.get_mut(case_id)?;
        let (tx, rx) = oneshot::channel();
        // A failed case goes no further: waiting for it to complete would wait forever.
        if matches!(
            record.view.status,
            CaseStatus::Completed | CaseStatus::Failed
        ) {
            // Cannot fail: the receiver is still here, returned below.
            let _ = tx.send(record.view.clone());
        } else {
            record.watchers.push(tx);
        }
        Some(rx)
    }
}

impl Handler<SupplementCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Acted<Supplement>, CaseActionError>>;

    fn handle(&mut self, msg: SupplementCase, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id.clone();
        let asked = format!("{msg:?}");
        // A repeat finds the supplement it repeats the last one sent, unless the case is
        // suspended again since and waits for a new one.
        let repeats = {
            let case_id = case_id.clone();
            move |record: &CaseRecord| {
                let sent = record.supplement_sent?;
                match &record.view.suspension {
                    Some(waiting) if waiting.sequence != sent => None,
                    _ => Some(message_ids::supplemented(&case_id, sent)),
                }
            }
        };
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
        self.act_on_case(ctx, msg.case_id, asked, repeats, prepare)
    }
}

impl Handler<RateCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Acted<Rating>, CaseActionError>>;

    fn handle(&mut self, msg: RateCase, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id.clone();
        let asked = format!("{msg:?}");
        let rated = message_ids::rated(&case_id);
        let repeats = move |_: &CaseRecord| Some(rated);
        let prepare = move |record: &mut CaseRecord, now| {
            if record.view.rating.is_some() {
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
            let rating = Rating {
                department: department.clone(),
                score: msg.score,
                comment: msg.comment,
                terminal_id: msg.terminal_id,
                rated_at: now,
            };
            // The rating is given: it shows at once, and reaches the bus as soon as it can.
            record.view.rating = Some(Box::new(rating.clone()));
            Ok(ApplicantAct {
                id: message_ids::rated(&case_id),
                kind: MessageType::CaseRated,
                department,
                data: rating,
            })
        };
        self.act_on_case(ctx, msg.case_id, asked, repeats, prepare)
    }
}

impl Handler<Inbound> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<(), HandleError>>;

    /// A snapshot is restored; any other message is observed once its case is in memory.
    #[tracing::instrument(parent = &msg.1, skip_all, fields(system = "intake", case_id = %msg.0.case_id, kind = %msg.0.kind, trace_id = %msg.0.trace_id))]
    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) -> Self::Result {
        let envelope = msg.0;
        if envelope.kind == MessageType::StateSnapshot {
            return self.restore(&envelope, ctx);
        }
        let case_id = envelope.case_id.clone();
        self.with_case(
            &case_id,
            ctx,
            move |intake, ctx| {
                let observed = intake.observe(&envelope);
                intake.send_closed_markers(ctx);
                // The next record waits while the repository's writer is behind.
                let room = intake.repository.as_ref().map(|r| r.writer.room());
                Box::pin(
                    async move {
                        if let Some(room) = room {
                            room.await;
                        }
                        observed
                    }
                    .into_actor(intake)
                    .map(|observed, intake, _| {
                        intake.write_due_rows();
                        observed
                    }),
                )
            },
            |error| Err(HandleError::Retry(error.to_string())),
        )
    }
}

impl TakesActs for IntakeSystem {
    fn acts(&mut self) -> &mut Acts {
        &mut self.acts
    }

    /// An act on another intake process's case is not kept once the bus answered: a repeat is
    /// checked against the case read afresh, and sends the same message id again, which every
    /// reader drops as a repeat.
    fn act_sent(&mut self, case_id: &CaseId) {
        if self.is_foreign(case_id) {
            self.acts.forget_cases(std::slice::from_ref(case_id));
        }
    }
}

/// What an applicant's act on a case publishes, once the case allows it.
struct ApplicantAct<T> {
    /// The message id, built from the act's cause so that a repeat keeps it.
    id: MessageId,
    /// The message type.
    kind: MessageType,
    /// The department that must hear of it.
    department: crate::domain::DepartmentCode,
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
        // Encoding plain data cannot fail; if it did, the application could not be published
        // either, so it counts as too large, as at the terminal's check.
        let fields = FormFields::of(&form.form).map_err(|_| SubmitRefused::TooLarge {
            size: u64::MAX,
            limit: self.max_application_bytes,
        })?;
        let case_id = self.share.issue();
        // The case's trace is named by its id: 32 hex digits, a W3C trace id as it stands,
        // and every system that keeps the trace with its records of the case then shares the
        // text that already names the case (`TraceId`).
        let trace_id = case_id.to_string();
        let application = Application {
            case_id: case_id.clone(),
            matter_code: form.matter_code,
            applicant: form.applicant,
            region: form.region,
            materials: form.materials,
            form: fields,
            terminal_id: msg.terminal_id.clone(),
            channel: msg.channel,
            submitted_at: self.catalog.now(),
            owner: msg.owner,
        };
        // Sealed here, once: every record that carries the application from now on — the
        // snapshot below, its publication, a dead-letter — carries the sealed applicant.
        let application =
            application
                .sealed(&self.catalog.keyring)
                .map_err(|_| SubmitRefused::TooLarge {
                    // AES-GCM refuses only a plaintext over 64 GiB.
                    size: u64::MAX,
                    limit: self.max_application_bytes,
                })?;
        self.check_size(&application)?;
        let sequence = self.next_sequence();
        self.last_sequence = sequence;
        let state = IntakeSnapshot::Open(Box::new(IntakeCaseState {
            sequence,
            application: application.clone(),
            trace_id: trace_id.clone(),
            terminal_id: msg.terminal_id.to_string(),
        }));
        let version = self.versions.next(&case_id);
        let snapshot = snapshot_envelope(
            SystemId::Intake,
            &case_id,
            version,
            &state,
            application.submitted_at,
        );
        tracing::info!(%case_id, %trace_id, terminal = %msg.terminal_id, sequence, "application received");
        crate::monitoring::record::case_submitted(msg.channel);
        self.cases.insert(
            case_id.clone(),
            Box::new(CaseRecord::new(
                application,
                msg.terminal_id.as_str(),
                &trace_id,
                sequence,
            )),
        );
        self.feed.insert(sequence, (case_id.clone(), trace_id));
        self.changed(&case_id);
        self.touch(&case_id);
        self.make_room();
        Ok((case_id, sequence, snapshot))
    }

    /// An applicant's act on a case: the answer of the act it repeats (whose id `repeats`
    /// finds), else the act `prepare` makes of the case, or its refusal. The act is recorded
    /// and its message sent until the bus takes it or refuses it for good.
    fn act_on_case<T: Serialize + Clone + Send + 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        case_id: CaseId,
        asked: String,
        repeats: impl FnOnce(&CaseRecord) -> Option<MessageId> + 'static,
        prepare: impl FnOnce(&mut CaseRecord, DateTime<Utc>) -> Result<ApplicantAct<T>, String>
            + 'static,
    ) -> ResponseActFuture<Self, Result<Acted<T>, CaseActionError>> {
        let asked_case = case_id.clone();
        self.with_case(
            &asked_case,
            ctx,
            move |intake, ctx| intake.act_on_known_case(ctx, case_id, asked, repeats, prepare),
            |error| Err(CaseActionError::Unavailable(error.to_string())),
        )
    }

    /// [`act_on_case`](Self::act_on_case) once the case is in memory, if it exists.
    fn act_on_known_case<T: Serialize + Clone + Send + 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        case_id: CaseId,
        asked: String,
        repeats: impl FnOnce(&CaseRecord) -> Option<MessageId>,
        prepare: impl FnOnce(&mut CaseRecord, DateTime<Utc>) -> Result<ApplicantAct<T>, String>,
    ) -> ResponseActFuture<Self, Result<Acted<T>, CaseActionError>> {
        let repeated = self.cases.get(&case_id).map(Box::as_ref).and_then(repeats);
        if let Some(repeat) = acts::repeat(self, repeated, &asked) {
            return repeat;
        }
        let now = self.catalog.now();
        let Some(record) = self.cases.get_mut(&case_id) else {
            return Box::pin(fut::ready(Err(CaseActionError::NotFound(format!(
                "no case `{case_id}`"
            )))));
        };
        let trace_id = record.trace_id.to_string();
        let act = match prepare(record, now) {
            Ok(act) => act,
            Err(conflict) => return Box::pin(fut::ready(Err(CaseActionError::Conflict(conflict)))),
        };
        // A rating shows in the view at once.
        self.changed(&case_id);
        let head = EnvelopeHead {
            id: act.id.clone(),
            kind: act.kind,
            case_id: case_id.clone(),
            source: SystemId::Intake,
            target: SystemId::Department(act.department),
            trace_id,
        };
        let envelope = Envelope::new_at(head, &act.data, now);
        let request = ActRequest {
            id: act.id,
            asked,
            subject: case_id.to_string(),
            by: None,
        };
        acts::take(self, ctx, request, case_id, vec![envelope], act.data)
    }
}

impl IntakeSystem {
    /// Refuses an application whose records could not be on the bus: every record that carries
    /// it (its publication, the intake's snapshot, the collaboration request and completion)
    /// is bigger than the application itself, so a refusal now beats a 202 for a case that
    /// could never move.
    fn check_size(&self, application: &Application) -> Result<(), SubmitRefused> {
        let limit = self.max_application_bytes;
        // Serialising a value of plain data and strings cannot fail; if it did, the records
        // could not be written either, so count it as too large.
        let size = serde_json::to_vec(application).map_or(u64::MAX, |json| json.len() as u64);
        if size > limit {
            tracing::warn!(case_id = %application.case_id, size, limit, "application too large for the bus; refused");
            return Err(SubmitRefused::TooLarge { size, limit });
        }
        Ok(())
    }
}
