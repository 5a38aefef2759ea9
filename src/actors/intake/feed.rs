//! The feed the city centre reads new applications from, and the snapshots that make it durable.
//!
//! Every submission gets the next sequence number. The feed hands out a sequence only once its
//! snapshot is on the state topic (durable), and every sequence before it is too, so that a
//! reader's cursor never skips an application that a restart would bring back. The feed holds
//! the cases the intake system keeps in memory: a closed case that leaves memory leaves the
//! feed (the city centre published it long before). Once a case is completed its snapshot is
//! replaced by a small closed marker that keeps only its feed position, so that what the state
//! topic gives back at start is the open cases and the highest position issued.

use super::{CaseRecord, FedApplication, IntakeSystem};
use crate::actors::{snapshot_envelope, Snapshot};
use crate::domain::{Application, CaseId, CaseStatus, Envelope, SystemId, TraceId};
use crate::port::{send_until_taken, Delivery, HandleError, Refusal, Sent};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the intake system writes to the state topic for a case: the case while it is open,
/// a closed marker once it is completed.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(super) enum IntakeSnapshot {
    /// An open case.
    Open(Box<IntakeCaseState>),
    /// A completed case.
    Closed(ClosedCase),
}

impl<'de> Deserialize<'de> for IntakeSnapshot {
    /// An open case, else a completed one. Read from its JSON text, not buffered as serde's
    /// untagged enums are: the application's form is kept as text
    /// ([`FormFields`](crate::domain::FormFields)), which only JSON text can give.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        match serde_json::from_str::<IntakeCaseState>(text.get()) {
            Ok(open) => Ok(Self::Open(Box::new(open))),
            Err(as_open) => serde_json::from_str::<ClosedCase>(text.get())
                .map(Self::Closed)
                .map_err(|as_closed| {
                    serde::de::Error::custom(format!(
                        "neither an open case ({as_open}) nor a completed one ({as_closed})"
                    ))
                }),
        }
    }
}

/// The feed position an intake snapshot names, open or closed, whatever else it holds.
#[derive(Deserialize)]
struct FeedPosition {
    sequence: u64,
}

/// A completed case on the state topic: its view is in the case repository, and all the state
/// topic keeps is its feed position, so that no later submission takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClosedCase {
    /// Its feed position.
    pub(super) sequence: u64,
    /// When the intake system saw it completed.
    pub(super) closed_at: DateTime<Utc>,
}

/// What the intake system writes to the state topic for an open case: enough to feed it again
/// and to rebuild its view by reading the flow topics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IntakeCaseState {
    /// Its feed position.
    pub(super) sequence: u64,
    /// The application as submitted.
    pub(super) application: Application,
    /// The case's trace id.
    pub(super) trace_id: String,
    /// The terminal it came from.
    pub(super) terminal_id: String,
}

impl IntakeSystem {
    /// Durable applications after `after`, oldest first.
    pub(super) fn take(&self, after: u64, max: usize) -> Vec<FedApplication> {
        if after >= self.durable_upto {
            return Vec::new();
        }
        self.feed
            .range(after + 1..=self.durable_upto)
            .take(max.max(1))
            .filter_map(|(&sequence, (case_id, trace_id))| {
                // A failed case's application never reached the bus: the city never gets it.
                let record = self
                    .cases
                    .get(case_id)
                    .filter(|r| r.view.status != CaseStatus::Failed)?;
                Some(FedApplication {
                    sequence,
                    application: record.view.application.clone(),
                    trace_id: trace_id.clone(),
                })
            })
            .collect()
    }

    /// The record of `sequence` is on the bus: the feed may hand it out, and everything durable
    /// after it, and a waiting reader gets it.
    fn mark_durable(&mut self, sequence: u64) {
        if let Some(waiter) = self.durable_waiters.remove(&sequence) {
            // A submission that stopped waiting was already answered as not yet durable.
            let _ = waiter.send(Delivery::OnBus);
        }
        if sequence <= self.durable_upto {
            return;
        }
        self.durable.insert(sequence);
        let step = self.share.step();
        while self.durable.remove(&(self.durable_upto + step)) {
            self.durable_upto += step;
        }
        if let Some((request, waiter)) = self.feed_waiter.take() {
            let batch = self.take(request.after, request.max);
            if batch.is_empty() {
                self.feed_waiter = Some((request, waiter));
            } else if let Err(unsent) = waiter.send(batch) {
                // The reader gave up waiting; it will ask again with the same cursor.
                drop(unsent);
            }
        }
    }

    /// Every application restored is on the bus. A position missing among them belonged to a
    /// submission whose record never reached the bus before the process died (it was never
    /// answered as durable): the feed moves past it instead of waiting for it.
    pub(super) fn skip_lost_positions(&mut self) {
        self.durable_upto = self.durable_upto.max(self.last_sequence);
        self.durable.clear();
    }

    /// Takes back a case from its snapshot on the state topic: an open case is taken into
    /// memory (read back from the case repository first when it holds the case, which may
    /// know more of it); a closed marker only keeps its feed position taken.
    pub(super) fn restore(
        &mut self,
        envelope: &Envelope,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), HandleError>> {
        // Another intake process's case: it feeds and follows it.
        if !self.share.owns(&envelope.case_id) {
            return Box::pin(fut::ready(Ok(())));
        }
        let snapshot = match self.versions.newer(envelope) {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return Box::pin(fut::ready(Ok(()))),
            Err(error) => {
                // A snapshot that cannot be read whole still names the feed position its case
                // took: that position stays taken, so that the next submission does not take
                // a position the city has read past and wait there for ever.
                if let Ok(Snapshot { state, .. }) = envelope.data::<Snapshot<FeedPosition>>() {
                    self.position_taken(state.sequence);
                }
                return Box::pin(fut::ready(Err(HandleError::Poison(error.to_string()))));
            }
        };
        let state = match snapshot {
            IntakeSnapshot::Open(state) => *state,
            IntakeSnapshot::Closed(closed) => {
                self.position_taken(closed.sequence);
                return Box::pin(fut::ready(Ok(())));
            }
        };
        let case_id = state.application.case_id.clone();
        let retry = case_id.clone();
        self.with_case(
            &case_id,
            ctx,
            move |intake, _| Box::pin(fut::ready(intake.restore_open(state))),
            move |error| {
                // Read again when the snapshot is delivered again.
                Err(HandleError::Retry(format!("case {retry}: {error}")))
            },
        )
        .map(move |result, intake: &mut Self, _| {
            if let Err(HandleError::Retry(_)) = &result {
                intake.versions.forget(&case_id);
            }
            // A case read back for its snapshot leaves again if others changed since.
            intake.make_room();
            result
        })
        .boxed_local()
    }

    /// Takes back an open case from its snapshot, unless memory holds it already (taken back
    /// from the case repository, which knows at least as much).
    fn restore_open(&mut self, state: IntakeCaseState) -> Result<(), HandleError> {
        let case_id = state.application.case_id.clone();
        self.position_taken(state.sequence);
        // A case whose applicant could never be shown is refused (and dead-lettered with the
        // reason) rather than taken back to fail every query. Its feed position stays taken,
        // so that the next submission does not reuse a position the city has read past.
        if let Err(error) = state.application.check_sealed(&self.catalog.keyring) {
            return Err(HandleError::Poison(format!(
                "the applicant of case {case_id}: {error}"
            )));
        }
        let record = self.cases.entry(case_id.clone()).or_insert_with(|| {
            Box::new(CaseRecord::new(
                state.application,
                &state.terminal_id,
                &state.trace_id,
                state.sequence,
            ))
        });
        record.sequence = Some(state.sequence);
        record.trace_id = TraceId::from(state.trace_id.as_str());
        self.feed
            .insert(state.sequence, (case_id.clone(), state.trace_id));
        self.changed(&case_id);
        self.touch(&case_id);
        Ok(())
    }

    /// Feed position `sequence` was issued before and is on the bus: no submission takes it
    /// again, and the feed may hand out what follows it.
    fn position_taken(&mut self, sequence: u64) {
        self.last_sequence = self.last_sequence.max(sequence);
        self.mark_durable(sequence);
    }

    /// The closed marker of `case_id`, which the city published at `sequence`, replacing its
    /// snapshot on the state topic (none when the bus ends with the process).
    pub(super) fn closed_marker(&mut self, case_id: &CaseId, sequence: u64) -> Option<Envelope> {
        if !self.persist_state {
            return None;
        }
        let now = self.catalog.now();
        let marker = IntakeSnapshot::Closed(ClosedCase {
            sequence,
            closed_at: now,
        });
        let version = self.versions.next(case_id);
        Some(snapshot_envelope(
            SystemId::Intake,
            case_id,
            version,
            &marker,
            now,
        ))
    }

    /// Publishes a case's snapshot until the bus takes it, then marks it durable; fails the
    /// case if the bus refuses it for good.
    pub(super) fn persist(&mut self, snapshot: Envelope, sequence: u64, ctx: &mut Context<Self>) {
        if !self.persist_state {
            // Nothing outlives this process on this bus: kept is as durable as it gets.
            self.mark_durable(sequence);
            return;
        }
        let sent = send_until_taken(&self.bridge, vec![snapshot]);
        ctx.spawn(
            sent.into_actor(self)
                .map(move |sent, intake, _| match sent {
                    Sent::Taken => intake.mark_durable(sequence),
                    Sent::Refused(refusal) => intake.fail(sequence, refusal),
                }),
        );
    }

    /// The bus refused the record of submission `sequence` for good (it is in dead-letters):
    /// sending it again cannot help. The case fails with a reason the applicant reads, its
    /// submitter (if still waiting) hears of the refusal, and the feed moves past it.
    fn fail(&mut self, sequence: u64, refusal: Refusal) {
        let reason = refusal.reason.as_str();
        let case_id = self.feed.get(&sequence).map(|(id, _)| id.clone());
        if let Some(case_id) = &case_id {
            tracing::error!(%case_id, sequence, reason, "the bus refused the submission for good; the case failed");
            self.fail_case(
                case_id,
                format!(
                    "the application could not be handed on and will not be processed: {reason}. \
                     Submit it again with large materials handed in by reference."
                ),
            );
        }
        if let Some(waiter) = self.durable_waiters.remove(&sequence) {
            // A submission that stopped waiting was answered as not yet durable; its case says
            // it failed.
            let _ = waiter.send(Delivery::Refused(refusal));
        }
        // Not durable, but no longer in the way: the feed skips a failed case (see `take`).
        self.mark_durable(sequence);
        if let Some(case_id) = &case_id {
            self.closed(case_id);
        }
    }

    /// After start-up: the cases taken back from the case repository as submitted whose
    /// snapshot no part of the start restored. Their submission never reached the bus before
    /// the process stopped — it was answered `"durable": false`, or not at all — so the city
    /// will never get them: each fails, with a reason the applicant reads, instead of waiting
    /// for good.
    pub(super) fn fail_lost_submissions(&mut self) {
        let lost: Vec<CaseId> = self
            .cases
            .iter()
            .filter(|(_, record)| {
                record.view.status == CaseStatus::Submitted && record.sequence.is_none()
            })
            .map(|(case_id, _)| case_id.clone())
            .collect();
        for case_id in lost {
            tracing::warn!(%case_id, "a submission that never reached the bus before the process stopped; the case failed");
            self.fail_case(
                &case_id,
                "the application did not reach the city before the intake service stopped, \
                 and will not be processed. Submit it again."
                    .to_owned(),
            );
            self.closed(&case_id);
        }
    }

    /// `case_id` failed for `reason`: its view says so, whoever waits for it hears, and its
    /// row is written.
    fn fail_case(&mut self, case_id: &CaseId, reason: String) {
        if let Some(record) = self.cases.get_mut(case_id) {
            record.view.status = CaseStatus::Failed;
            crate::monitoring::record::case_failed();
            record.view.failure = Some(reason);
            for watcher in record.watchers.drain(..) {
                // A watcher that stopped waiting has nothing left to hear.
                let _ = watcher.send(record.view.clone());
            }
            self.changed(case_id);
        }
    }

    /// Sends the closed markers of the cases just completed until the bus takes them. One
    /// that never arrives leaves the case's open snapshot in place, and the next start reads
    /// the case back from the case repository instead.
    pub(super) fn send_closed_markers(&mut self, ctx: &mut Context<Self>) {
        if self.closed_markers.is_empty() {
            return;
        }
        let markers = std::mem::take(&mut self.closed_markers);
        ctx.spawn(
            send_until_taken(&self.bridge, markers)
                .into_actor(self)
                .map(|sent, _, _| {
                    if let Sent::Refused(refusal) = sent {
                        tracing::warn!(reason = %refusal.reason, "a closed marker was refused; the case's open snapshot stays");
                    }
                }),
        );
    }

    /// The next feed position.
    pub(super) fn next_sequence(&self) -> u64 {
        self.last_sequence + self.share.step()
    }
}
