//! The feed the city centre reads new applications from, and the snapshots that make it durable.
//!
//! Every submission gets the next sequence number. The feed hands out a sequence only once its
//! snapshot is on the state topic (durable), and every sequence before it is too, so that a
//! reader's cursor never skips an application that a restart would bring back.

use super::{CaseRecord, FedApplication, IntakeSystem};
use crate::domain::{Application, CaseId, CaseStatus, Envelope};
use crate::port::{send_until_taken, Delivery, HandleError, Refusal, Sent};
use actix::prelude::*;
use serde::{Deserialize, Serialize};

/// What the intake system writes to the state topic for each case: enough to feed it again
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
        while self.durable.remove(&(self.durable_upto + 1)) {
            self.durable_upto += 1;
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
        if let Some(&last) = self.feed.keys().next_back() {
            self.durable_upto = self.durable_upto.max(last);
            self.durable.clear();
        }
    }

    /// Takes back a case from its snapshot on the state topic.
    pub(super) fn restore(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        let state: Option<IntakeCaseState> = self
            .versions
            .newer(envelope)
            .map_err(|e| HandleError::Poison(e.to_string()))?;
        let Some(state) = state else {
            return Ok(());
        };
        let case_id = state.application.case_id.clone();
        // A case whose applicant could never be shown is refused (and dead-lettered with the
        // reason) rather than taken back to fail every query. Its feed position stays taken,
        // so that the next submission does not reuse a position the city has read past.
        if let Err(error) = state.application.check_sealed(&self.catalog.keyring) {
            self.feed
                .insert(state.sequence, (case_id.clone(), state.trace_id));
            self.mark_durable(state.sequence);
            return Err(HandleError::Poison(format!(
                "the applicant of case {case_id}: {error}"
            )));
        }
        self.cases
            .entry(case_id.clone())
            .or_insert_with(|| CaseRecord::new(state.application, &state.terminal_id));
        self.changed(&case_id);
        self.feed.insert(state.sequence, (case_id, state.trace_id));
        self.mark_durable(state.sequence);
        Ok(())
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
        if let Some(record) = case_id.as_ref().and_then(|id| self.cases.get_mut(id)) {
            tracing::error!(case_id = %record.view.case_id, sequence, reason, "the bus refused the submission for good; the case failed");
            record.view.status = CaseStatus::Failed;
            record.view.failure = Some(format!(
                "the application could not be handed on and will not be processed: {reason}. \
                 Submit it again with large materials handed in by reference."
            ));
            for watcher in record.watchers.drain(..) {
                // A watcher that stopped waiting has nothing left to hear.
                let _ = watcher.send(record.view.clone());
            }
        }
        if let Some(case_id) = &case_id {
            self.changed(case_id);
        }
        if let Some(waiter) = self.durable_waiters.remove(&sequence) {
            // A submission that stopped waiting was answered as not yet durable; its case says
            // it failed.
            let _ = waiter.send(Delivery::Refused(refusal));
        }
        // Not durable, but no longer in the way: the feed skips a failed case (see `take`).
        self.mark_durable(sequence);
    }

    /// The next feed position.
    pub(super) fn next_sequence(&self) -> u64 {
        self.feed.keys().next_back().map_or(1, |last| last + 1)
    }

    /// The trace id of a case: that of its feed entry.
    pub(super) fn trace_id(&self, case_id: &CaseId) -> String {
        self.feed
            .values()
            .find(|(id, _)| id == case_id)
            .map(|(_, trace)| trace.clone())
            .unwrap_or_default()
    }
}
