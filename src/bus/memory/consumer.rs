//! A consumer group's consumer on the memory bus, at least once.
//!
//! One task per subscription reads every partition of its topics. It hands each partition's
//! records to the handler in offset order, at most `consumer_max_in_flight` unfinished per
//! partition, and commits a partition's offset into the group's offset map only once that
//! record and every record before it on the partition were handled. A failed handler pauses
//! only its own partition: after `redelivery_backoff_ms` the partition is read again from its
//! lowest unfinished record, while the other partitions keep flowing (see
//! [`ConsumerCore`]). A state record that a later record of its key superseded is not handed
//! out (the state topic is compacted, see [`MemoryBus::durable`]). On stop the task hands out nothing more, lets what it handed out finish
//! (bounded) and commits what finished.

use super::{read, GroupOffsets, MemoryBus};
use crate::bus::consumer_core::{ConsumerCore, PartitionControl};
use crate::bus::{
    ConsumerGuard, Delivery, Dispatch, OffsetSink, Record, RecordHandler, Resume, Share, Topic,
};
use crate::monitoring::record;
use futures::future::{BoxFuture, FutureExt};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How often a consumer reports its lag and records in flight to the metrics.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A (topic, partition) of the memory bus.
type Key = (Topic, u32);

/// The memory bus's side of the consumer core: where the group stands on each partition.
struct Positions {
    /// The group's committed offsets: (topic, partition) → next offset to deliver.
    committed: Arc<GroupOffsets>,
    /// The next offset to hand out, per partition; ordered, so partitions are filled in turn.
    next: BTreeMap<Key, u64>,
    /// Told what is stored, for a group that keeps its offsets itself ([`Resume`]).
    sink: Option<OffsetSink>,
}

impl PartitionControl for Positions {
    type Key = Key;

    fn store(&mut self, key: &Key, last: i64) {
        // Offsets on the memory bus are log indexes: never negative.
        let next = u64::try_from(last).unwrap_or_default() + 1;
        self.committed.insert(*key, next);
        if let Some(sink) = &self.sink {
            sink(key.0, key.1, next);
        }
    }

    fn rewind(&mut self, key: &Key, from: i64) -> BoxFuture<'_, bool> {
        if let Some(next) = self.next.get_mut(key) {
            *next = u64::try_from(from).unwrap_or_default();
        }
        futures::future::ready(true).boxed()
    }
}

/// What a consumer is made of, from [`MemoryBus::subscribe`].
pub(super) struct ConsumerParts {
    /// The consumer group.
    pub group: Arc<str>,
    /// The topics it reads.
    pub topics: Vec<Topic>,
    /// Called for every record.
    pub handler: RecordHandler,
    /// Notified when a record lands on one of the topics.
    pub wake: Arc<Notify>,
    /// Turns true when the subscription stops.
    pub stop: watch::Receiver<bool>,
    /// Tells the subscription handle when this consumer is gone.
    pub guard: ConsumerGuard,
    /// Where it starts and whom it tells what it stored, when the group keeps its offsets.
    pub resume: Option<Resume>,
    /// The partitions it reads ([`Membership::Alone`](crate::bus::Membership::Alone)); a
    /// group that joins reads every one, the memory bus having no membership.
    pub share: Share,
}

/// Consumes every partition of a subscription's topics for one group.
pub(super) struct GroupConsumer {
    /// The bus it reads.
    bus: MemoryBus,
    /// The consumer group.
    group: Arc<str>,
    /// Called for every record.
    handler: RecordHandler,
    /// In-flight tracking, rewind and drain.
    core: ConsumerCore<Key>,
    /// Where the group stands on each partition.
    positions: Positions,
    /// Notified when a record lands on one of the topics.
    wake: Arc<Notify>,
    /// Turns true when the subscription stops.
    stop: watch::Receiver<bool>,
    /// Dropped last: tells the subscription handle that this consumer is gone.
    _guard: ConsumerGuard,
}

impl GroupConsumer {
    /// A consumer that resumes from the group's committed offsets, or from those of
    /// [`ConsumerParts::resume`] when given.
    pub fn new(bus: MemoryBus, parts: ConsumerParts) -> Self {
        let committed = bus
            .inner
            .committed
            .entry(parts.group.to_string())
            .or_default()
            .clone();
        let next = parts
            .topics
            .iter()
            .flat_map(|&topic| (0..bus.inner.partitions).map(move |p| (topic, p)))
            .filter(|&(_, partition)| parts.share.takes(partition))
            .map(|key| {
                let from = match &parts.resume {
                    Some(resume) => resume.from.get(&key).copied(),
                    None => committed.get(&key).map(|o| *o),
                };
                (key, from.unwrap_or(0))
            })
            .collect();
        let sink = parts.resume.map(|resume| resume.store);
        let backoff = bus.inner.redelivery_backoff;
        Self {
            core: ConsumerCore::new(parts.group.clone(), backoff),
            positions: Positions {
                committed,
                next,
                sink,
            },
            bus,
            group: parts.group,
            handler: parts.handler,
            wake: parts.wake,
            stop: parts.stop,
            _guard: parts.guard,
        }
    }

    /// Hands out records until stopped, then drains and unregisters.
    pub async fn run(mut self) {
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            if *self.stop.borrow() {
                break;
            }
            self.fill();
            tokio::select! {
                () = self.core.turn(&mut self.positions) => {}
                _ = self.wake.notified() => {}
                _ = self.stop.changed() => {}
                _ = report.tick() => self.report(),
            }
        }
        // Stopped: hand out nothing more, but let what was handed out finish and commit.
        self.core.drain(&mut self.positions).await;
        let wake = self.wake.clone();
        let mut listeners = self
            .bus
            .inner
            .listeners
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for list in listeners.values_mut() {
            list.retain(|l| !Arc::ptr_eq(l, &wake));
        }
    }

    /// Hands out the next records of every partition that is not paused, in order, up to the
    /// window.
    fn fill(&mut self) {
        let keys: Vec<Key> = self.positions.next.keys().copied().collect();
        for key in keys {
            let Some(log) = self.bus.log(key.0, key.1) else {
                continue;
            };
            let available = log.len.load(Ordering::Acquire);
            while !self.core.is_paused(&key)
                && self.core.pending(&key) < self.bus.inner.max_in_flight
            {
                let offset = self.positions.next.get(&key).copied().unwrap_or(available);
                if offset >= available {
                    break;
                }
                // Below the length read above, and logs only grow at their end: a record is
                // missing only when the bus dropped it, which it does only past every reading
                // group's commit — so never for a group that was reading the topic then.
                let Some(record) = read(&log.records).get(offset).cloned() else {
                    let first = read(&log.records).base;
                    tracing::warn!(group = %self.group, topic = %key.0, partition = key.1, offset, first,
                        "records dropped before this group read them; reading on from the first held");
                    self.positions.next.insert(key, first);
                    continue;
                };
                let at = i64::try_from(offset).unwrap_or(i64::MAX);
                if self.bus.superseded(key.0, key.1, &record.key, offset)
                    || self.bus.inner.faults.loses(&self.group, &record)
                {
                    // Compacted away (or lost by an injected fault): done at once, so the
                    // offset can still be committed.
                    self.core
                        .deliver(&mut self.positions, key, at, Dispatch::Skip);
                } else {
                    for _ in 0..self.copies() {
                        let dispatch = self.dispatch(record.clone(), key.1, offset);
                        self.core.deliver(&mut self.positions, key, at, dispatch);
                    }
                }
                self.positions.next.insert(key, offset + 1);
            }
        }
    }

    /// Sets the group's lag (records on each partition past its committed offset) and records
    /// in flight, per partition, for `/metrics`; and has the bus drop, where it trims, what
    /// every group reading those partitions committed past.
    fn report(&self) {
        for &(topic, partition) in self.positions.next.keys() {
            let Some(log) = self.bus.log(topic, partition) else {
                continue;
            };
            let end = log.len.load(Ordering::Acquire);
            let committed = self
                .positions
                .committed
                .get(&(topic, partition))
                .map_or(0, |c| *c);
            let in_flight = self.core.pending(&(topic, partition));
            let lag = Some(end.saturating_sub(committed));
            record::consumer_partition(&self.group, topic.suffix(), partition, lag, in_flight);
            self.bus.trim(topic, partition);
        }
    }

    /// How many times to hand out the next record (2 while a duplicate fault is armed).
    fn copies(&self) -> usize {
        if self.bus.inner.faults.duplicates() {
            2
        } else {
            1
        }
    }

    /// Hands a record to the handler, behind the injected delivery delay if there is one.
    fn dispatch(&self, record: Arc<Record>, partition: u32, offset: u64) -> Dispatch {
        let delivery = Delivery {
            record,
            group: self.group.clone(),
            partition,
            offset,
        };
        let delay = self.bus.inner.faults.delay_micros();
        match (self.handler)(delivery) {
            Dispatch::Handle(handled) if delay > 0 => Dispatch::Handle(Box::pin(async move {
                tokio::time::sleep(Duration::from_micros(delay)).await;
                handled.await
            })),
            dispatch => dispatch,
        }
    }
}
