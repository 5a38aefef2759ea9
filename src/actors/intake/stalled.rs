//! Stalled cases, for an operator: which cases made no progress for a while ([`ListStalled`]),
//! and sending a case's current step again ([`RedriveCase`]). A completed case is not stalled,
//! nor is a failed one (the bus refused its application for good): nothing waits for either,
//! and a re-drive of one is refused.
//!
//! The intake system's view groups read every flow topic, so it sees every message of every
//! case it issued. For each case not completed it keeps the messages of the case's *current
//! step* ([`Trails`]): every message it observed since the case entered its present status
//! (`published`, `collaborating`, …), in the order observed; when the status moves on, the
//! step's messages are let go, and when the case completes, all of them.
//!
//! A re-drive publishes those messages again, in the order they happened, each with its own
//! id, through the bridge like any output. That is safe because every system handles a message
//! id at most once in effect and checks the case's state before acting: a system that already
//! handled one of them drops it (or, after a restart, finds its effect in its restored state
//! and re-sends the same outputs under the same ids, which their receivers drop), while one
//! that never handled it — its consumer lost it, or dropped it as handled before it could be —
//! handles it now, and the case moves on. Re-sending a handled message changes nothing; a lost
//! one is handled now.
//!
//! Only the current step is sent, not the whole history: a system that finished its part of a
//! case may have forgotten the case (a department lets a case go once it published its
//! approval, and remembers handled ids only in memory), so an earlier message — the application
//! itself — sent again after that system restarted could start its part over. The messages of
//! the current step are those whose effect the case is still waiting for. Supervision warnings
//! are not kept: they are no step of the flow, and a warning about a stalled case must not make
//! it look as if it moved.

use super::CaseView;
use super::{
    IntakeSystem, LastStep, ListStalled, RedriveCase, RedriveError, Redriven, ResentMessage,
    StalledCase, StalledCases,
};
use crate::catalog::Catalog;
use crate::domain::{
    CaseId, CaseStatus, DepartmentCode, Envelope, HistoryStep, MatterCode, MessageId, MessageType,
    Party,
};
use crate::maps::Map;
use crate::port::{publish, HandleError};
use crate::store::JsonText;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The messages of each open case's current step.
#[derive(Default)]
pub(super) struct Trails(Map<CaseId, Trail>);

/// The messages of one case's current step.
struct Trail {
    /// The status the case entered with the first of `messages`.
    status: CaseStatus,
    /// What the intake system observed since, in the order observed: shared with the delivery
    /// that brought each, so keeping one costs its envelope's size once.
    messages: Vec<Arc<Envelope>>,
}

/// A case's current step as the case repository keeps it.
#[derive(Serialize)]
struct StoredTrail<'a> {
    /// The status the case entered with the first of `messages`.
    status: CaseStatus,
    /// The messages, in the order observed.
    messages: Vec<&'a Envelope>,
}

/// A case's current step read back from the case repository.
#[derive(Deserialize)]
struct ReadTrail {
    /// The status the case entered with the first of `messages`.
    status: CaseStatus,
    /// The messages, in the order observed.
    messages: Vec<Envelope>,
}

impl Trails {
    /// The messages of `case_id`'s current step as the case repository keeps them; none when
    /// it has none.
    pub(super) fn stored(&self, case_id: &CaseId) -> Option<JsonText> {
        let trail = self.0.get(case_id)?;
        let stored = StoredTrail {
            status: trail.status,
            messages: trail.messages.iter().map(|m| &**m).collect(),
        };
        // Envelopes and a status are plain data: they always serialise.
        JsonText::of(&stored).ok()
    }

    /// Takes back the messages of `case_id`'s current step from the case repository.
    pub(super) fn restore(
        &mut self,
        case_id: &CaseId,
        stored: &JsonText,
    ) -> Result<(), serde_json::Error> {
        let read: ReadTrail = stored.read()?;
        let messages = read.messages.into_iter().map(Arc::new).collect();
        self.0.insert(
            case_id.clone(),
            Trail {
                status: read.status,
                messages,
            },
        );
        Ok(())
    }

    /// Lets the messages of `case_id` go.
    pub(super) fn forget(&mut self, case_id: &CaseId) {
        self.0.remove(case_id);
    }

    /// Keeps `envelope`, observed for the first time, with the `status` its case has now.
    pub(super) fn observed(&mut self, envelope: &Arc<Envelope>, status: CaseStatus) {
        if status == CaseStatus::Completed {
            // Nothing waits any more: the case's messages are let go.
            self.0.remove(&envelope.case_id);
            return;
        }
        if matches!(
            envelope.kind,
            MessageType::SupervisionWarning | MessageType::StateSnapshot
        ) {
            return;
        }
        let trail = self
            .0
            .entry(envelope.case_id.clone())
            .or_insert_with(|| Trail {
                status,
                messages: Vec::new(),
            });
        if trail.status != status {
            // A new step: what the earlier one sent has had its effect.
            trail.status = status;
            trail.messages.clear();
        }
        trail.messages.push(envelope.clone());
    }

    /// The messages of the case's current step, in the order they happened (the order
    /// observed where two have the same time).
    fn current_step(&self, case_id: &CaseId) -> Vec<Envelope> {
        let mut messages: Vec<Envelope> = self
            .0
            .get(case_id)
            .map(|trail| trail.messages.iter().map(|m| Envelope::clone(m)).collect())
            .unwrap_or_default();
        messages.sort_by_key(|m| m.occurred_at);
        messages
    }
}

impl Handler<ListStalled> for IntakeSystem {
    type Result = MessageResult<ListStalled>;

    fn handle(&mut self, msg: ListStalled, _: &mut Self::Context) -> Self::Result {
        let now = self.catalog.now();
        let catalog = &self.catalog;
        // The open cases in memory, and those that left it (see `resident`).
        let resident = self
            .cases
            .iter()
            .filter(|(_, record)| !finished(record.view.status))
            .filter_map(|(case_id, record)| {
                Some(Standing::of(&record.view)?.stalled(case_id, catalog, now))
            });
        let away = self
            .away_standings()
            .map(|(case_id, standing)| standing.stalled(case_id, catalog, now));
        let mut stalled: Vec<StalledCase> = resident
            .chain(away)
            .filter(|case| case.idle_secs >= msg.idle_secs)
            .collect();
        stalled.sort_by(|a, b| (a.last_step.at, &a.case_id).cmp(&(b.last_step.at, &b.case_id)));
        let total = stalled.len();
        stalled.truncate(msg.max);
        MessageResult(StalledCases {
            idle_secs: msg.idle_secs,
            total,
            cases: stalled,
        })
    }
}

impl Handler<RedriveCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Redriven, RedriveError>>;

    /// Re-drives the case once it is in memory: an open case that left it is read back first,
    /// its current step with it.
    fn handle(&mut self, msg: RedriveCase, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.0;
        let (asked, named) = (case_id.clone(), case_id.clone());
        self.with_case(
            &asked,
            ctx,
            move |intake, _| Box::pin(intake.redrive(case_id).into_actor(intake)),
            move |error| {
                Err(RedriveError::Unavailable(format!(
                    "case {named}: the case repository cannot be read ({error}); nothing was \
                     sent, try again"
                )))
            },
        )
    }
}

impl IntakeSystem {
    /// Sends the current step of `case_id`, which is in memory if this intake system holds it.
    fn redrive(
        &mut self,
        case_id: CaseId,
    ) -> futures::future::BoxFuture<'static, Result<Redriven, RedriveError>> {
        let status = match self.cases.get(&case_id).map(|r| r.view.status) {
            None => {
                return refused(RedriveError::Unknown(format!(
                    "no case `{case_id}`; GET /api/v1/operations/stalled lists the stalled ones"
                )))
            }
            Some(CaseStatus::Completed) => {
                return refused(RedriveError::Completed(format!(
                    "case {case_id} is completed; nothing waits to be re-driven"
                )))
            }
            Some(CaseStatus::Failed) => return refused(self.failed(&case_id)),
            Some(status) => status,
        };
        let messages = self.trails.current_step(&case_id);
        if messages.is_empty() {
            return refused(RedriveError::NothingToResend(format!(
                "case {case_id} was never published, so nothing of it is on the bus to send again: \
                 the city centre takes it from the intake feed; check that a governance process \
                 reads the feed"
            )));
        }
        let resent: Vec<ResentMessage> = messages
            .iter()
            .map(|m| ResentMessage {
                id: m.id.clone(),
                kind: m.kind,
                to: m.target.to_string(),
            })
            .collect();
        tracing::info!(%case_id, count = resent.len(), ?status, "re-driving a stalled case: its current step sent again");
        let sent = publish(&self.bridge, messages);
        Box::pin(async move {
            sent.await.map_err(|error| match error {
                HandleError::Poison(error) => RedriveError::Refused(format!(
                    "case {case_id}: the bus refused a re-sent message for good ({error}); it is \
                     in dead-letters, and re-driving again would be refused again: the message \
                     must be repaired at its source"
                )),
                HandleError::Retry(error) => RedriveError::NotOnBus(format!(
                    "case {case_id}: the bus did not take the re-sent messages ({error}); \
                     nothing changed, try again"
                )),
            })?;
            Ok(Redriven {
                case_id,
                status,
                resent: resent.len(),
                messages: resent,
            })
        })
    }
}

/// Whether nothing waits for a case in `status` any more: it completed, or it failed.
fn finished(status: CaseStatus) -> bool {
    matches!(status, CaseStatus::Completed | CaseStatus::Failed)
}

/// A re-drive refused before anything was sent.
fn refused(
    error: RedriveError,
) -> futures::future::BoxFuture<'static, Result<Redriven, RedriveError>> {
    Box::pin(async move { Err(error) })
}

impl IntakeSystem {
    /// The refusal of a re-drive of the failed case `case_id`, naming its failure.
    fn failed(&self, case_id: &CaseId) -> RedriveError {
        let failure = self
            .cases
            .get(case_id)
            .and_then(|record| record.view.failure.clone())
            .unwrap_or_else(|| "no reason recorded".to_owned());
        RedriveError::Failed(format!(
            "case {case_id} failed, so nothing will move it and a re-drive cannot help: {failure}"
        ))
    }
}

/// Where an open case stands, as an operator's list of stalled cases shows it: kept for each
/// open case that left memory, so that the list covers every open case without reading any back.
#[derive(Debug)]
pub(super) struct Standing {
    /// Where the case stands.
    status: CaseStatus,
    /// The matter applied for.
    matter: MatterCode,
    /// The responsible department, once one accepted the case.
    department: Option<DepartmentCode>,
    /// Its last step (supervision warnings are no step).
    step: HistoryStep,
    /// That step's message id.
    message_id: MessageId,
    /// Who took it.
    by: Party,
    /// For whom.
    to: Party,
    /// When.
    at: DateTime<Utc>,
}

impl Standing {
    /// Where the case of `view` stands. None only for a case with no step at all, which
    /// cannot be: the submission is the first.
    pub(super) fn of(view: &CaseView) -> Option<Self> {
        let warning = HistoryStep::from(MessageType::SupervisionWarning);
        let last = view.history.iter().rfind(|entry| entry.step != warning)?;
        Some(Standing {
            status: view.status,
            matter: view.application.matter_code.clone(),
            department: view.receipt.as_ref().map(|r| r.department.clone()),
            step: last.step,
            message_id: last.message_id.clone(),
            by: last.by.clone(),
            to: last.to.clone(),
            at: last.at,
        })
    }

    /// The case `case_id` as an operator sees it when stalled: its last step and how long ago
    /// that was by `now`. A case no department accepted yet names the matter's department.
    fn stalled(&self, case_id: &CaseId, catalog: &Catalog, now: DateTime<Utc>) -> StalledCase {
        let department = match &self.department {
            Some(department) => department.to_string(),
            None => catalog
                .matter(&self.matter)
                .map(|m| m.department.to_string())
                .unwrap_or_default(),
        };
        let idle = (now - self.at).num_seconds();
        StalledCase {
            case_id: case_id.clone(),
            status: self.status,
            matter: self.matter.to_string(),
            department,
            last_step: LastStep {
                step: self.step,
                message_id: self.message_id.clone(),
                from: self.by.to_string(),
                to: self.to.to_string(),
                at: self.at,
            },
            // A step stamped ahead of this clock (another machine's) is idle for 0 s.
            idle_secs: u64::try_from(idle).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EnvelopeHead, MessageId, SystemId};
    use chrono::TimeZone;

    fn message(id: &str, kind: MessageType, second: u32) -> Arc<Envelope> {
        Arc::new(Envelope::new_at(
            EnvelopeHead {
                id: MessageId::from_string(id),
                kind,
                case_id: CaseId::from_string("c1"),
                source: SystemId::Intake,
                target: SystemId::Intake,
                trace_id: "t1".into(),
            },
            &serde_json::json!({"note": "第一步 \"quoted\""}),
            Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, second).unwrap(),
        ))
    }

    fn sent(step: &[Envelope]) -> Vec<Vec<u8>> {
        step.iter().map(Envelope::to_vec).collect()
    }

    #[test]
    fn a_step_kept_stored_and_restored_gives_back_its_messages_in_time_order() {
        // Arrange: two messages of one step, observed out of time order, and a warning.
        let mut trails = Trails::default();
        let later = message("m2", MessageType::CollaborationAnswered, 9);
        let earlier = message("m1", MessageType::CollaborationDispatched, 3);
        trails.observed(&later, CaseStatus::Collaborating);
        trails.observed(&earlier, CaseStatus::Collaborating);
        let warning = message("w1", MessageType::SupervisionWarning, 5);
        trails.observed(&warning, CaseStatus::Collaborating);
        let case_id = CaseId::from_string("c1");

        // Act: the row's trail is read back into another intake system's memory.
        let stored = trails.stored(&case_id).expect("an open step is stored");
        let mut restored = Trails::default();
        restored.restore(&case_id, &stored).unwrap();

        // Assert: both give the step's messages as they were sent, oldest first, no warning.
        let expected = vec![earlier.to_vec(), later.to_vec()];
        assert_eq!(sent(&trails.current_step(&case_id)), expected);
        assert_eq!(sent(&restored.current_step(&case_id)), expected);
    }

    #[test]
    fn a_new_step_lets_the_last_one_go_and_completion_all() {
        let mut trails = Trails::default();
        let case_id = CaseId::from_string("c1");
        let published = message("m1", MessageType::ApplicationPublished, 1);
        trails.observed(&published, CaseStatus::Published);
        let accepted = message("m2", MessageType::ApplicationAccepted, 2);
        trails.observed(&accepted, CaseStatus::Accepted);
        assert_eq!(sent(&trails.current_step(&case_id)), [accepted.to_vec()]);
        let approved = message("m3", MessageType::ApprovalDelivered, 3);
        trails.observed(&approved, CaseStatus::Completed);
        assert!(trails.current_step(&case_id).is_empty());
        assert!(trails.stored(&case_id).is_none());
    }

    #[test]
    fn a_stored_step_holding_something_else_than_an_envelope_is_refused() {
        let stored: JsonText =
            serde_json::from_str(r#"{"status": "published", "messages": [{"id": "m1"}]}"#).unwrap();
        let mut trails = Trails::default();
        let case_id = CaseId::from_string("c1");
        let error = trails.restore(&case_id, &stored).unwrap_err();
        assert!(error.to_string().contains("missing field"), "{error}");
        assert!(trails.current_step(&case_id).is_empty());
    }
}
