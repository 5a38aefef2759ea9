//! The in-memory bus: the mock bus of the tests and the bus of a single-process deployment.
//!
//! Each topic has a fixed number of partitions; a partition is an append-only log. A consumer
//! group keeps one committed offset per (topic, partition). A subscription runs one consumer
//! task (module `consumer`), at least once: it hands the records of each partition to the
//! handler in order, at most `consumer_max_in_flight` unfinished per partition, and commits an
//! offset once that record and every record before it on the partition were handled. When a
//! handler fails, that partition alone pauses, then is rewound to its lowest unfinished record
//! and delivers it (and those after it) again; the group's other partitions keep flowing. A
//! subscription that is stopped and started again resumes from the committed offsets.
//!
//! A bus made with [`MemoryBus::new`] ends with the systems running on it, so they write no
//! state snapshots. One made with [`MemoryBus::durable`] outlives them
//! ([`Bus::outlives_process`] is true): systems write their snapshots to the `state` topic,
//! which is compacted like Kafka's (a reader sees only the latest record of each key; the log
//! itself keeps every record, for tests to inspect), and a test can stop those systems and
//! start others over the same bus: they rebuild their state from the snapshots and their
//! groups resume from the committed offsets. That is a restart for the life of the test
//! process, with no broker.
//!
//! Fault injection for tests (module `faults`): [`MemoryBus::fail_next_publishes`],
//! [`MemoryBus::duplicate_next_deliveries`], [`MemoryBus::delay_deliveries`],
//! [`MemoryBus::refuse_snapshots_of`] (a process dying between a message's effects and its
//! snapshot), [`MemoryBus::forget_commits`] (one dying before its group committed) and
//! [`MemoryBus::lose_next_deliveries`] (a group committing past a message it never handled).
//!
//! With `bus.memory_trim` (the default), a bus made with [`MemoryBus::new`] drops a partition's
//! records once every consumer group that reads the topic has committed past them (checked by
//! each consumer once a second): its memory follows what is in flight, not the history. Offsets
//! go on counting from where the log began. A topic no group reads (the audit trail, dead
//! letters) is never committed past: there a partition keeps its newest records up to
//! `bus.memory_unread_bytes` and drops older ones, as a broker's `retention.bytes` does. Without
//! `memory_trim`, and always on a durable bus, a memory bus holds every record it was given
//! until the process ends.

mod consumer;
mod faults;

use super::{
    partition_for, record_size, Bus, BusError, EndOffsets, Record, Refusal, Subscription,
    SubscriptionHandle, Topic,
};
use crate::maps::Map;
use crate::maps::SharedMap;
use crate::settings::BusSettings;
use consumer::{ConsumerParts, GroupConsumer};
use faults::Faults;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The records a partition still holds: those from offset `base` on.
#[derive(Default)]
struct Log {
    /// The offset of the first record held: how many were dropped before it.
    base: u64,
    /// The records from `base` on, in offset order.
    records: std::collections::VecDeque<Arc<Record>>,
    /// The size of the records held ([`record_size`]).
    bytes: u64,
}

impl Log {
    /// The offset the next record takes.
    fn end(&self) -> u64 {
        self.base + self.records.len() as u64
    }

    /// The record at `offset`, unless it was dropped or is not there yet.
    fn get(&self, offset: u64) -> Option<&Arc<Record>> {
        let index = usize::try_from(offset.checked_sub(self.base)?).ok()?;
        self.records.get(index)
    }

    /// Appends `record`.
    fn push(&mut self, record: Arc<Record>) {
        self.bytes += record_size(&record);
        self.records.push_back(record);
    }

    /// Drops the records before `offset`.
    fn trim_to(&mut self, offset: u64) {
        let drop = offset
            .saturating_sub(self.base)
            .min(self.records.len() as u64);
        for record in self.records.drain(..drop as usize) {
            self.bytes -= record_size(&record);
        }
        self.base += drop;
    }

    /// Drops the oldest records until those held come to `max_bytes` at most.
    fn trim_to_bytes(&mut self, max_bytes: u64) {
        while self.bytes > max_bytes {
            let Some(record) = self.records.pop_front() else {
                break;
            };
            self.bytes -= record_size(&record);
            self.base += 1;
        }
    }
}

/// One partition's log.
struct PartitionLog {
    /// The records it holds.
    records: RwLock<Log>,
    /// The log length, readable without the lock.
    len: AtomicU64,
    /// The state topic's compaction: the offset of the latest record of each key (empty on
    /// other topics). A reader skips a record whose key has a later one.
    latest: RwLock<Map<String, u64>>,
}

/// One consumer group's committed offsets: (topic, partition) → next offset to deliver.
type GroupOffsets = SharedMap<(Topic, u32), u64>;

/// What a memory bus is: its logs, the groups' offsets, the running consumers and faults.
struct Inner {
    /// Every topic's partitions.
    topics: Map<Topic, Vec<PartitionLog>>,
    /// Committed offsets by group.
    committed: SharedMap<String, Arc<GroupOffsets>>,
    /// (group, topic) pairs with a running consumer.
    active: Mutex<Map<(String, Topic), watch::Receiver<bool>>>,
    /// The wake-up of every running consumer, by the topics it reads.
    listeners: RwLock<Map<Topic, Vec<Arc<Notify>>>>,
    /// Injected faults.
    faults: Faults,
    /// Whether the bus outlives the systems running on it ([`MemoryBus::durable`]).
    durable: bool,
    /// Partitions per topic.
    partitions: u32,
    /// Window of unfinished deliveries per partition.
    max_in_flight: usize,
    /// Pause before redelivering after a failed handler.
    redelivery_backoff: Duration,
    /// The largest record taken (`bus.max_record_bytes`), like a broker's record limit.
    max_record_bytes: u64,
    /// Whether records every reading group committed past are dropped (`bus.memory_trim`, and
    /// never on a durable bus).
    trims: bool,
    /// When the bus trims, the bytes a partition of a topic no group reads keeps at most
    /// (`bus.memory_unread_bytes`; 0: no limit).
    unread_bytes: u64,
    /// The topics some consumer group subscribed to, once or still.
    read: Map<Topic, AtomicBool>,
}

/// The in-memory bus. Cheap to clone; clones share the same topics.
#[derive(Clone)]
pub struct MemoryBus {
    /// The state every clone shares.
    inner: Arc<Inner>,
}

impl MemoryBus {
    /// An empty bus with every topic of the wire contract. It ends with the systems running on
    /// it: they write no state snapshots ([`Bus::outlives_process`] is false).
    pub fn new(settings: &BusSettings) -> Self {
        Self::build(settings, false)
    }

    /// An empty bus that outlives the systems running on it: a test stops one set of systems
    /// and starts another over the same bus (see `Systems::start_on`), which rebuilds its state
    /// from the snapshots the first set wrote and resumes its groups from their committed
    /// offsets — a restart, for as long as the test process lives.
    pub fn durable(settings: &BusSettings) -> Self {
        Self::build(settings, true)
    }

    fn build(settings: &BusSettings, durable: bool) -> Self {
        let partitions = settings.partitions.max(1);
        let topics = Topic::ALL
            .iter()
            .map(|&topic| {
                let logs = (0..partitions)
                    .map(|_| PartitionLog {
                        records: RwLock::new(Log::default()),
                        len: AtomicU64::new(0),
                        latest: RwLock::new(Map::default()),
                    })
                    .collect();
                (topic, logs)
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                topics,
                committed: SharedMap::default(),
                active: Mutex::new(Map::default()),
                listeners: RwLock::new(Map::default()),
                faults: Faults::default(),
                durable,
                partitions,
                max_in_flight: settings.consumer_max_in_flight.max(1),
                redelivery_backoff: Duration::from_millis(settings.redelivery_backoff_ms),
                max_record_bytes: settings.max_record_bytes,
                trims: settings.memory_trim && !durable,
                unread_bytes: settings.memory_unread_bytes,
                read: Topic::ALL
                    .iter()
                    .map(|&topic| (topic, AtomicBool::new(false)))
                    .collect(),
            }),
        }
    }

    /// Every record a partition of `topic` holds, in offset order (every record it was given,
    /// unless the bus trims: see the module docs).
    pub fn records(&self, topic: Topic, partition: u32) -> Vec<Arc<Record>> {
        self.log(topic, partition)
            .map(|log| read(&log.records).records.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The offset of the first record a partition of `topic` still holds: 0 until the bus
    /// dropped records from it.
    pub fn first_offset(&self, topic: Topic, partition: u32) -> u64 {
        self.log(topic, partition)
            .map_or(0, |log| read(&log.records).base)
    }

    /// When the bus trims: drops the records of a partition of `topic` that every consumer
    /// group reading the topic has committed past. A group counts from its first
    /// subscription to the topic on, stopped or not, so nothing a group has yet to read is
    /// dropped.
    fn trim(&self, topic: Topic, partition: u32) {
        if !self.inner.trims {
            return;
        }
        let groups: Vec<String> = self
            .inner
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|(_, read)| *read == topic)
            .map(|(group, _)| group.clone())
            .collect();
        let Some(lowest) = groups
            .iter()
            .map(|group| self.committed_offset(group, topic, partition))
            .min()
        else {
            return;
        };
        if let Some(log) = self.log(topic, partition) {
            if read(&log.records).base < lowest {
                log.records
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .trim_to(lowest);
            }
        }
    }

    /// Whether a partition of `topic` keeps only its newest `bus.memory_unread_bytes`: the bus
    /// trims, with a limit, and no group ever subscribed to the topic.
    fn trims_unread(&self, topic: Topic) -> bool {
        self.inner.trims
            && self.inner.unread_bytes > 0
            && !self
                .inner
                .read
                .get(&topic)
                .is_some_and(|read| read.load(Ordering::Acquire))
    }

    /// Every record on `topic`, partition by partition.
    pub fn all_records(&self, topic: Topic) -> Vec<(u32, Arc<Record>)> {
        (0..self.inner.partitions)
            .flat_map(|p| self.records(topic, p).into_iter().map(move |r| (p, r)))
            .collect()
    }

    /// The committed offset of `group` on a partition (0 when nothing was committed).
    pub fn committed_offset(&self, group: &str, topic: Topic, partition: u32) -> u64 {
        self.inner
            .committed
            .get(group)
            .and_then(|offsets| offsets.get(&(topic, partition)).map(|o| *o))
            .unwrap_or(0)
    }

    fn log(&self, topic: Topic, partition: u32) -> Option<&PartitionLog> {
        self.inner.topics.get(&topic)?.get(partition as usize)
    }

    /// Whether the record at `offset` of a partition was compacted away: a state record whose
    /// key has a later record. Like Kafka's compaction of the state topic, a reader from the
    /// start sees only the latest record of each key (here, compacted as it reads).
    fn superseded(&self, topic: Topic, partition: u32, key: &str, offset: u64) -> bool {
        topic == Topic::State
            && self
                .log(topic, partition)
                .and_then(|log| read(&log.latest).get(key).copied())
                .is_some_and(|latest| latest > offset)
    }
}

/// Reads a lock, recovering the data if a writer panicked (the log itself stays consistent:
/// a push either happened or it did not).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Bus for MemoryBus {
    fn outlives_process(&self) -> bool {
        self.inner.durable
    }

    fn end_offsets(&self, topics: Vec<Topic>) -> BoxFuture<'static, Result<EndOffsets, BusError>> {
        let mut ends = EndOffsets::new();
        for topic in topics {
            for (partition, log) in self.inner.topics[&topic].iter().enumerate() {
                let partition = u32::try_from(partition).unwrap_or(u32::MAX);
                ends.insert((topic, partition), log.len.load(Ordering::Acquire));
            }
        }
        Box::pin(async move { Ok(ends) })
    }

    fn publish(&self, records: Vec<Arc<Record>>) -> BoxFuture<'static, Result<(), BusError>> {
        if let Some(fault) = self.inner.faults.refuses(&records) {
            return Box::pin(async move { Err(BusError::Publish(fault.into())) });
        }
        let mut touched = Vec::new();
        let mut refused = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            let size = record_size(&record);
            if size > self.inner.max_record_bytes {
                // Like a broker: this record can never be taken; the others are.
                let limit = self.inner.max_record_bytes;
                let reason = format!("record of {size} bytes exceeds the bus's limit of {limit}");
                refused.push(Refusal {
                    index,
                    reason,
                    too_large: true,
                });
                continue;
            }
            let partition = partition_for(&record.key, self.inner.partitions);
            // Every topic exists with `partitions` partitions, and `partition_for` stays below it.
            let Some(log) = self.log(record.topic, partition) else {
                continue;
            };
            if !touched.contains(&record.topic) {
                touched.push(record.topic);
            }
            let mut records = log.records.write().unwrap_or_else(|p| p.into_inner());
            if record.topic == Topic::State {
                let mut latest = log.latest.write().unwrap_or_else(|p| p.into_inner());
                latest.insert(record.key.clone(), records.end());
            }
            let topic = record.topic;
            records.push(record);
            if self.trims_unread(topic) {
                records.trim_to_bytes(self.inner.unread_bytes);
            }
            log.len.store(records.end(), Ordering::Release);
        }
        // One wake-up per consumer per publish, however many records it carried.
        let listeners = read(&self.inner.listeners);
        for topic in touched {
            for listener in listeners.get(&topic).into_iter().flatten() {
                listener.notify_one();
            }
        }
        if refused.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        Box::pin(async move { Err(BusError::Refused(refused)) })
    }

    fn subscribe(&self, subscription: Subscription) -> Result<SubscriptionHandle, BusError> {
        let (handle, stop, guard) =
            SubscriptionHandle::new(&subscription.group, &subscription.topics);
        // Every partition belongs to this process's one consumer of the group.
        handle
            .assigned_flag()
            .store(true, std::sync::atomic::Ordering::Release);
        {
            let mut active = self.inner.active.lock().unwrap_or_else(|p| p.into_inner());
            for &topic in &subscription.topics {
                let key = (subscription.group.clone(), topic);
                if let Some(running) = active.get(&key) {
                    if !*running.borrow() && running.has_changed().is_ok() {
                        return Err(BusError::Subscribe(format!(
                            "consumer group {} already consumes {topic} in this process",
                            subscription.group
                        )));
                    }
                }
                active.insert(key, stop.clone());
                if let Some(read) = self.inner.read.get(&topic) {
                    read.store(true, Ordering::Release);
                }
            }
        }
        let wake = Arc::new(Notify::new());
        {
            let mut listeners = self
                .inner
                .listeners
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for &topic in &subscription.topics {
                listeners.entry(topic).or_default().push(wake.clone());
            }
        }
        let (after, mut stopping) = (subscription.after, stop.clone());
        let consumer = GroupConsumer::new(
            self.clone(),
            ConsumerParts {
                group: Arc::from(subscription.group.as_str()),
                topics: subscription.topics,
                handler: subscription.handler,
                wake,
                stop,
                guard,
                resume: subscription.resume,
                share: match subscription.membership {
                    super::Membership::Alone(share) => share,
                    _ => super::Share::ALL,
                },
            },
        );
        let run = async move {
            // Dropped unstarted when stopped first: its guard tells the handle.
            if super::opened(after, &mut stopping).await {
                consumer.run().await;
            }
        };
        match &subscription.arbiter {
            Some(arbiter) => {
                arbiter.spawn(run);
            }
            None => {
                tokio::spawn(run);
            }
        }
        Ok(handle)
    }
}

#[cfg(test)]
mod tests;
