//! The bridge actor: the one way systems reach the bus.
//!
//! Publishing: a [`Publish`] holds the envelopes one handler produced, in order. The bridge turns
//! them into records keyed by case id (with `id`, `type`, `target`, `trace_id` and W3C
//! `traceparent` headers, see [`super::trace`]) and queues them. Queued publishes leave as
//! batches, handed to the bus in the order they came: the bus takes a batch's records before
//! the next batch is handed, so a later record never goes before an earlier one. Several
//! batches may be on their way at once, up to `max_in_flight_records` records, when the bus
//! keeps the order of what it was handed through its own retries
//! ([`Bus::keeps_order_in_flight`]: the memory bus, and Kafka's idempotent producer); on a bus
//! that does not, one batch is out at a time and the records arriving meanwhile form the next.
//!
//! A send that fails holds everything back: nothing more is handed until every batch on its way
//! was answered, and then the failed batches are sent again, together and in the order they
//! were first handed, after an exponentially growing pause, up to `retry_max_attempts` sends in
//! all. Then they fail for good, and so does everything queued behind them (keeping order), and
//! each publisher learns it from its [`Publish`] result.
//!
//! A record the bus can never take (too large, invalid: [`BusError::Refused`]) is not sent
//! again and holds nothing back: the bus wrote the batch's other records, the refused one is
//! replaced in `dead-letters` by a small record naming it (its key, its `id`/`type`/`target`
//! headers, `dlq.error`, `dlq.topic` and `dlq.size`, not its payload), the publish it belonged to fails
//! with a permanent [`PublishError`], and the next batch goes as usual. The time and reason of
//! the last batch that failed for good are kept for readiness ([`BridgeStats::failed_within`]),
//! and [`Drain`] answers how many records failed for good while it waited.
//!
//! Consuming (`consume.rs`): [`Subscribe`] starts a consumer group whose records are decoded
//! into envelopes and handed to the system the `target` header names; unreadable and poisoned
//! records go to `dead-letters` (without their payload when the bus refuses them with it).
//! Every dead letter is built by `letter.rs`.

use super::{headers, Bus, BusError, Record, Refusal, Topic};
use crate::domain::Envelope;
use crate::monitoring::record;
use crate::port::{Hop, Publish, PublishError};
use crate::settings::BridgeSettings;
use actix::prelude::*;
use futures::FutureExt;
use letter::{dead_letter, Payload};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod consume;
mod letter;
#[cfg(test)]
mod tests;

pub use consume::{dead_letter_and_continue, KeepHandled, Routes, Subscribe};

/// Publish raw records (dead letters, or bytes that are not envelopes in tests of poison
/// handling); resolves when all are on the bus.
#[derive(Message)]
#[rtype(result = "Result<(), PublishError>")]
pub struct PublishRecords(pub Vec<Record>);

/// Resolves once every record queued so far is on the bus (or failed for good), with the number
/// of records that failed for good meanwhile (never reached the bus, or were refused by it and
/// dead-lettered): what shutdown could not deliver.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Drain;

/// Counters the bridge keeps; shared, so they can be read without asking the actor.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Records written to the bus.
    pub records_sent: AtomicU64,
    /// Batches written.
    pub batches_sent: AtomicU64,
    /// Batch sends that failed and were tried again.
    pub retries: AtomicU64,
    /// Records that failed for good (including those refused).
    pub records_failed: AtomicU64,
    /// Records the bus refused for good (too large, invalid), replaced in dead-letters.
    pub records_refused: AtomicU64,
    /// Records written to dead-letters.
    pub dead_lettered: AtomicU64,
    /// When a batch last failed for good, and why: readiness reads it.
    last_failure: Mutex<Option<(Instant, String)>>,
}

impl BridgeStats {
    /// Why the last batch failed for good, if that was less than `window` ago.
    pub fn failed_within(&self, window: Duration) -> Option<String> {
        let last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < window)
            .map(|(_, reason)| reason.clone())
    }

    /// A batch failed for good (some records of it at least) because of `reason`.
    fn failed(&self, records: u64, reason: String) {
        self.records_failed.fetch_add(records, Ordering::Relaxed);
        let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some((Instant::now(), reason));
    }
}

/// Who waits for a publish, and how many of a batch's records are that publish's.
type Waiter = (oneshot::Sender<Result<(), PublishError>>, usize);

/// The records of one publish and who waits for them.
struct Unit {
    records: Vec<Arc<Record>>,
    done: oneshot::Sender<Result<(), PublishError>>,
}

/// Publishes sent to the bus together: their records in order, and their waiters in the same
/// order.
#[derive(Default)]
struct Batch {
    records: Vec<Arc<Record>>,
    waiters: Vec<Waiter>,
}

impl Batch {
    /// Appends `other` after this batch's records.
    fn append(&mut self, other: Batch) {
        self.records.extend(other.records);
        self.waiters.extend(other.waiters);
    }
}

/// The bridge between systems and the bus.
pub struct Bridge {
    /// The bus written to and read from.
    bus: Arc<dyn Bus>,
    /// Batching and retry settings.
    settings: BridgeSettings,
    /// Whether more than one batch may be on its way ([`Bus::keeps_order_in_flight`]).
    pipelined: bool,
    /// Publishes waiting for their batch, oldest first.
    queue: VecDeque<Unit>,
    /// Records in `queue`.
    queued_records: usize,
    /// The number the next batch handed to the bus gets: batches that failed are sent again in
    /// this order.
    next_batch: u64,
    /// Batches handed to the bus and not answered yet.
    in_flight_batches: usize,
    /// Records in those batches.
    in_flight_records: usize,
    /// Batches whose send failed, by their number: sent again, together, once nothing else is
    /// on its way. Nothing new is handed to the bus while there are any.
    failed: BTreeMap<u64, Batch>,
    /// Why the first of the `failed` batches failed.
    last_error: String,
    /// Records of failed batches being sent again (with retries, alone on the bus); 0 when
    /// none are.
    resending: usize,
    /// Whether the queue is to be sent once the publishes in the mailbox are queued.
    flush_armed: bool,
    /// Whether a linger timer is armed.
    lingering: bool,
    /// Waiters for [`Drain`], each with the count of records failed when it asked.
    drained: Vec<(oneshot::Sender<u64>, u64)>,
    /// Counters.
    stats: Arc<BridgeStats>,
}

impl Bridge {
    /// A bridge over `bus`.
    pub fn new(bus: Arc<dyn Bus>, settings: BridgeSettings) -> Self {
        Self {
            pipelined: bus.keeps_order_in_flight(),
            bus,
            settings,
            queue: VecDeque::new(),
            queued_records: 0,
            next_batch: 0,
            in_flight_batches: 0,
            in_flight_records: 0,
            failed: BTreeMap::new(),
            last_error: String::new(),
            resending: 0,
            flush_armed: false,
            lingering: false,
            drained: Vec::new(),
            stats: Arc::default(),
        }
    }

    /// The bridge's counters.
    pub fn stats(&self) -> Arc<BridgeStats> {
        self.stats.clone()
    }

    /// Queues records; the returned receiver resolves when they are on the bus.
    fn enqueue(
        &mut self,
        records: Vec<Arc<Record>>,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<(), PublishError>> {
        let (done, rx) = oneshot::channel();
        if records.is_empty() {
            let _ = done.send(Ok(()));
            return rx;
        }
        self.queued_records += records.len();
        record::bridge_queued(self.queued_records);
        self.queue.push_back(Unit { records, done });
        self.schedule(ctx);
        rx
    }

    /// Whether nothing is queued, on its way or waiting to be sent again.
    fn idle(&self) -> bool {
        self.queue.is_empty()
            && self.in_flight_batches == 0
            && self.failed.is_empty()
            && self.resending == 0
    }

    /// Whether another batch may be handed to the bus now.
    fn may_send(&self) -> bool {
        !self.queue.is_empty()
            && self.failed.is_empty()
            && self.resending == 0
            && (self.in_flight_batches == 0
                || (self.pipelined && self.in_flight_records < self.settings.max_in_flight_records))
    }

    /// Sends the queue soon, or arms the linger timer. Publishes arriving together (one sweep
    /// of the mailbox) leave in one batch.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if !self.may_send() {
            return;
        }
        let linger = Duration::from_millis(self.settings.linger_ms);
        if linger.is_zero() || self.queued_records >= self.settings.batch_max_records {
            if !self.flush_armed {
                self.flush_armed = true;
                let flush = ActorFutureExt::map(fut::ready(()), |(), bridge: &mut Self, ctx| {
                    bridge.flush_armed = false;
                    bridge.send_queue(ctx);
                });
                ctx.spawn(flush);
            }
        } else if !self.lingering {
            self.lingering = true;
            ctx.run_later(linger, |bridge, ctx| {
                bridge.lingering = false;
                bridge.send_queue(ctx);
            });
        }
    }

    /// Hands batches of whole publishes, up to the batch size each, to the bus while it may take
    /// more.
    fn send_queue(&mut self, ctx: &mut Context<Self>) {
        while self.may_send() {
            let batch = self.next_batch_from_queue();
            self.hand(batch, ctx);
        }
        self.answer_drains();
    }

    /// Takes whole publishes off the queue, up to the batch size.
    fn next_batch_from_queue(&mut self) -> Batch {
        let mut batch = Batch::default();
        while let Some(unit) = self.queue.front() {
            if !batch.records.is_empty()
                && batch.records.len() + unit.records.len() > self.settings.batch_max_records
            {
                break;
            }
            let Some(unit) = self.queue.pop_front() else {
                break;
            };
            self.queued_records -= unit.records.len();
            batch.waiters.push((unit.done, unit.records.len()));
            batch.records.extend(unit.records);
        }
        record::bridge_queued(self.queued_records);
        batch
    }

    /// Hands `batch` to the bus (which takes its records before this returns) and settles it
    /// when the bus answers. An answer the bus knows at once is settled at once, so that a
    /// failure holds back the batches behind it.
    fn hand(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        let number = self.next_batch;
        self.next_batch += 1;
        self.in_flight_batches += 1;
        self.in_flight_records += batch.records.len();
        let started = Instant::now();
        let mut sent = self.bus.publish(batch.records.clone());
        if let Some(result) = (&mut sent).now_or_never() {
            self.settle(number, batch, result, started, ctx);
            return;
        }
        ctx.spawn(sent.into_actor(self).map(move |result, bridge, ctx| {
            bridge.settle(number, batch, result, started, ctx);
            bridge.schedule(ctx);
            bridge.answer_drains();
        }));
    }

    /// The bus answered batch `number`: its publishers learn it, or it waits to be sent again.
    fn settle(
        &mut self,
        number: u64,
        batch: Batch,
        result: Result<(), BusError>,
        started: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight_batches -= 1;
        self.in_flight_records -= batch.records.len();
        record::bridge_batch(batch.records.len(), started.elapsed());
        match result {
            Ok(()) => self.batch_sent(batch, Vec::new(), ctx),
            Err(BusError::Refused(refused)) => self.batch_sent(batch, refused, ctx),
            Err(error) => {
                tracing::warn!(%error, records = batch.records.len(), "publish failed; sending it again");
                if self.failed.is_empty() {
                    self.last_error = error.to_string();
                }
                self.failed.insert(number, batch);
            }
        }
        if self.in_flight_batches == 0 && !self.failed.is_empty() && self.resending == 0 {
            self.resend_failed(ctx);
        }
    }

    /// Sends every failed batch again, together and in the order they were first handed, with
    /// retries, while nothing else is on its way. The first send counts as the first attempt.
    fn resend_failed(&mut self, ctx: &mut Context<Self>) {
        let mut batch = Batch::default();
        for (_, failed) in std::mem::take(&mut self.failed) {
            batch.append(failed);
        }
        let first_error = std::mem::take(&mut self.last_error);
        self.resending = batch.records.len();
        let bus = self.bus.clone();
        let settings = self.settings.clone();
        let stats = self.stats.clone();
        let records = batch.records.clone();
        let started = Instant::now();
        let send = async move {
            send_with_retry(bus.as_ref(), records, &settings, &stats, first_error).await
        };
        ctx.spawn(send.into_actor(self).map(move |result, bridge, ctx| {
            bridge.resending = 0;
            record::bridge_batch(batch.records.len(), started.elapsed());
            match result {
                Ok(refused) => bridge.batch_sent(batch, refused, ctx),
                Err(error) => bridge.batch_failed(batch, error),
            }
            bridge.schedule(ctx);
            bridge.answer_drains();
        }));
    }

    /// Answers the [`Drain`] waiters once nothing is left to send.
    fn answer_drains(&mut self) {
        if !self.idle() {
            return;
        }
        let failed = self.stats.records_failed.load(Ordering::Relaxed);
        for (waiter, before) in self.drained.drain(..) {
            let _ = waiter.send(failed - before);
        }
    }

    /// The bus took the batch, but for the `refused` records: those are dead-lettered and their
    /// publishes fail for good; every other publish of the batch succeeds.
    fn batch_sent(&mut self, batch: Batch, refused: Vec<Refusal>, ctx: &mut Context<Self>) {
        let taken = (batch.records.len() - refused.len()) as u64;
        self.stats.records_sent.fetch_add(taken, Ordering::Relaxed);
        self.stats.batches_sent.fetch_add(1, Ordering::Relaxed);
        if let Some(first) = refused.first() {
            let reason = format!("{}: {}", batch.records[first.index].topic, first.reason);
            tracing::error!(records = refused.len(), %reason, "the bus refused records for good; dead-lettering them");
            self.stats.failed(refused.len() as u64, reason);
            self.stats
                .records_refused
                .fetch_add(refused.len() as u64, Ordering::Relaxed);
            record::bridge_refused(refused.len());
            self.dead_letter_refused(&batch.records, &refused, ctx);
        }
        let mut start = 0;
        for (done, len) in batch.waiters {
            let range = start..start + len;
            start += len;
            let result = match refused.iter().find(|r| range.contains(&r.index)) {
                None => Ok(()),
                Some(refusal) => Err(PublishError {
                    attempts: 1,
                    reason: refusal.reason.clone(),
                    permanent: true,
                    too_large: refusal.too_large,
                }),
            };
            // A publisher that stopped waiting needs no answer.
            let _ = done.send(result);
        }
    }

    /// Writes, for each refused record, a small dead letter naming it.
    fn dead_letter_refused(
        &mut self,
        batch: &[Arc<Record>],
        refused: &[Refusal],
        ctx: &mut Context<Self>,
    ) {
        let letters: Vec<Arc<Record>> = refused
            .iter()
            // A refused dead letter is not dead-lettered again: that could go on forever.
            .filter(|r| batch[r.index].topic != Topic::DeadLetters)
            .map(|r| {
                let reason = format!("refused by the bus: {}", r.reason);
                Arc::new(dead_letter(
                    &batch[r.index],
                    &reason,
                    None,
                    Payload::LeftOut,
                ))
            })
            .collect();
        let count = letters.len() as u64;
        let written = self.enqueue(letters, ctx);
        ctx.spawn(
            written
                .into_actor(self)
                .map(move |written, bridge, _| match written {
                    Ok(Ok(())) => {
                        bridge
                            .stats
                            .dead_lettered
                            .fetch_add(count, Ordering::Relaxed);
                    }
                    Ok(Err(error)) => {
                        tracing::error!(%error, "dead letters for refused records not written")
                    }
                    Err(_) => tracing::error!("the bridge stopped before writing dead letters"),
                }),
        );
    }

    /// The failed batches failed for good: they and everything queued behind them.
    fn batch_failed(&mut self, batch: Batch, error: PublishError) {
        let count = batch.records.len();
        tracing::error!(%error, records = count, "batch failed for good");
        self.stats.failed(count as u64, error.reason.clone());
        record::bridge_failed_batch();
        // Nothing queued behind a failed batch may overtake it: fail it too. Its publishers redo
        // the work when the causing message is delivered again.
        for unit in self.queue.drain(..) {
            self.stats
                .records_failed
                .fetch_add(unit.records.len() as u64, Ordering::Relaxed);
            let _ = unit.done.send(Err(error.clone()));
        }
        self.queued_records = 0;
        record::bridge_queued(0);
        for (done, _) in batch.waiters {
            // A publisher that stopped waiting needs no answer.
            let _ = done.send(Err(error.clone()));
        }
    }
}

/// Sends `records` again after a first send failed with `first_error`, retrying with
/// exponential backoff up to `retry_max_attempts` sends in all; answers the records the bus
/// refused for good (the others are on the bus), which are not sent again.
async fn send_with_retry(
    bus: &dyn Bus,
    records: Vec<Arc<Record>>,
    settings: &BridgeSettings,
    stats: &BridgeStats,
    first_error: String,
) -> Result<Vec<Refusal>, PublishError> {
    let mut backoff = Duration::from_millis(settings.retry_initial_backoff_ms.max(1));
    let max_backoff = Duration::from_millis(settings.retry_max_backoff_ms.max(1));
    let attempts = settings.retry_max_attempts.max(1);
    let mut attempt = 1;
    let mut error = first_error;
    while attempt < attempts {
        tracing::warn!(%error, attempt, ?backoff, "publish failed; retrying");
        stats.retries.fetch_add(1, Ordering::Relaxed);
        record::bridge_retry();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
        attempt += 1;
        match bus.publish(records.clone()).await {
            Ok(()) => return Ok(Vec::new()),
            Err(BusError::Refused(refused)) => return Ok(refused),
            Err(failed) => error = failed.to_string(),
        }
    }
    Err(PublishError::transient(attempts, error))
}

/// Turns an envelope into a record keyed by case id, with the routing headers and, when the
/// envelope belongs to a trace, its `traceparent` (a fresh span id for this hop).
pub fn envelope_record(envelope: &Envelope) -> Record {
    envelope_record_from(envelope, None)
}

/// [`envelope_record`] of an envelope made in the span `hop`: its `traceparent` names that
/// span as the sending hop when it is of the envelope's trace.
pub fn envelope_record_from(envelope: &Envelope, hop: Option<&Hop>) -> Record {
    let mut headers = vec![
        (headers::ID.into(), envelope.id.to_string()),
        (headers::TYPE.into(), envelope.kind.as_str().into()),
        (headers::TARGET.into(), envelope.target.to_string()),
        (headers::TRACE_ID.into(), envelope.trace_id.clone()),
    ];
    if let Some(parent) = super::trace::TraceParent::for_envelope(envelope, hop) {
        headers.push((headers::TRACEPARENT.into(), parent.to_string()));
    }
    Record {
        topic: Topic::of(envelope.kind),
        key: envelope.record_key(),
        headers,
        // An envelope holds only JSON-safe values (see `Envelope::new`): this cannot fail.
        payload: super::payload::encode(envelope).expect("envelopes always serialize to JSON"),
    }
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every system's publishes pass through here; a generous mailbox keeps publishers from
        // parking while a batch is out.
        ctx.set_mailbox_capacity(65_536);
    }
}

impl Handler<Publish> for Bridge {
    type Result = ResponseFuture<Result<(), PublishError>>;

    fn handle(&mut self, msg: Publish, ctx: &mut Self::Context) -> Self::Result {
        let hop = msg.1.as_ref();
        let records = msg
            .0
            .iter()
            .map(|e| Arc::new(envelope_record_from(e, hop)))
            .collect();
        let rx = self.enqueue(records, ctx);
        Box::pin(rx.map(flatten_done))
    }
}

impl Handler<PublishRecords> for Bridge {
    type Result = ResponseFuture<Result<(), PublishError>>;

    fn handle(&mut self, msg: PublishRecords, ctx: &mut Self::Context) -> Self::Result {
        let records = msg.0.into_iter().map(Arc::new).collect();
        let rx = self.enqueue(records, ctx);
        Box::pin(rx.map(flatten_done))
    }
}

fn flatten_done(
    received: Result<Result<(), PublishError>, oneshot::error::RecvError>,
) -> Result<(), PublishError> {
    received.unwrap_or_else(|_| {
        Err(PublishError::transient(
            0,
            "the bridge stopped before the batch was sent",
        ))
    })
}

impl Handler<Drain> for Bridge {
    type Result = ResponseFuture<u64>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        if self.idle() {
            return Box::pin(async { 0 });
        }
        let (tx, rx) = oneshot::channel();
        let failed = self.stats.records_failed.load(Ordering::Relaxed);
        self.drained.push((tx, failed));
        // The bridge stopped with the records: none of them is delivered now.
        let failed_batches: usize = self.failed.values().map(|b| b.records.len()).sum();
        let pending =
            (self.queued_records + self.in_flight_records + failed_batches + self.resending) as u64;
        Box::pin(async move { rx.await.unwrap_or(pending) })
    }
}
