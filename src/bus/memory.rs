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
//! snapshot) and [`MemoryBus::forget_commits`] (one dying before its group committed).
//!
//! The logs are not trimmed: a memory bus holds every record it was given until the process
//! ends.

mod consumer;
mod faults;

use super::{
    partition_for, Bus, BusError, EndOffsets, Record, Subscription, SubscriptionHandle, Topic,
};
use crate::settings::BusSettings;
use consumer::{ConsumerParts, GroupConsumer};
use faults::Faults;
use dashmap::DashMap;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// One partition's log.
struct PartitionLog {
    /// The records, by offset.
    records: RwLock<Vec<Arc<Record>>>,
    /// The log length, readable without the lock.
    len: AtomicU64,
    /// The state topic's compaction: the offset of the latest record of each key (empty on
    /// other topics). A reader skips a record whose key has a later one.
    latest: RwLock<HashMap<String, u64>>,
}

/// One consumer group's committed offsets: (topic, partition) → next offset to deliver.
type GroupOffsets = DashMap<(Topic, u32), u64>;

/// What a memory bus is: its logs, the groups' offsets, the running consumers and faults.
struct Inner {
    /// Every topic's partitions.
    topics: HashMap<Topic, Vec<PartitionLog>>,
    /// Committed offsets by group.
    committed: DashMap<String, Arc<GroupOffsets>>,
    /// (group, topic) pairs with a running consumer.
    active: Mutex<HashMap<(String, Topic), watch::Receiver<bool>>>,
    /// The wake-up of every running consumer, by the topics it reads.
    listeners: RwLock<HashMap<Topic, Vec<Arc<Notify>>>>,
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
                        records: RwLock::new(Vec::new()),
                        len: AtomicU64::new(0),
                        latest: RwLock::new(HashMap::new()),
                    })
                    .collect();
                (topic, logs)
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                topics,
                committed: DashMap::new(),
                active: Mutex::new(HashMap::new()),
                listeners: RwLock::new(HashMap::new()),
                faults: Faults::default(),
                durable,
                partitions,
                max_in_flight: settings.consumer_max_in_flight.max(1),
                redelivery_backoff: Duration::from_millis(settings.redelivery_backoff_ms),
            }),
        }
    }

    /// Every record on a partition of `topic`, in offset order.
    pub fn records(&self, topic: Topic, partition: u32) -> Vec<Arc<Record>> {
        self.log(topic, partition)
            .map(|log| read(&log.records).clone())
            .unwrap_or_default()
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
        let mut ends = HashMap::new();
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
        for record in records {
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
                latest.insert(record.key.clone(), records.len() as u64);
            }
            records.push(record);
            log.len.store(records.len() as u64, Ordering::Release);
        }
        // One wake-up per consumer per publish, however many records it carried.
        let listeners = read(&self.inner.listeners);
        for topic in touched {
            for listener in listeners.get(&topic).into_iter().flatten() {
                listener.notify_one();
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self, subscription: Subscription) -> Result<SubscriptionHandle, BusError> {
        let (handle, stop, guard) = SubscriptionHandle::new(&subscription.group);
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
        let consumer = GroupConsumer::new(
            self.clone(),
            ConsumerParts {
                group: Arc::from(subscription.group.as_str()),
                topics: subscription.topics,
                handler: subscription.handler,
                wake,
                stop,
                guard,
            },
        );
        match &subscription.arbiter {
            Some(arbiter) => {
                arbiter.spawn(consumer.run());
            }
            None => {
                tokio::spawn(consumer.run());
            }
        }
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Delivery, Dispatch, HandlerFailed, RecordHandler};
    use bytes::Bytes;
    use std::sync::atomic::AtomicUsize;

    fn settings() -> BusSettings {
        BusSettings {
            kind: crate::settings::BusKind::Memory,
            topic_prefix: "t".into(),
            partitions: 3,
            consumer_max_in_flight: 8,
            redelivery_backoff_ms: 1,
            brokers: String::new(),
            kafka: Default::default(),
        }
    }

    fn record(key: &str, n: u32) -> Arc<Record> {
        Arc::new(Record {
            topic: Topic::Applications,
            key: key.into(),
            headers: vec![],
            payload: Bytes::from(n.to_string()),
        })
    }

    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    fn collecting_handler(seen: Seen, fail_first: Arc<AtomicUsize>) -> RecordHandler {
        Arc::new(move |d: Delivery| {
            let seen = seen.clone();
            let fail_first = fail_first.clone();
            Dispatch::Handle(Box::pin(async move {
                if fail_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(HandlerFailed("injected".into()));
                }
                let payload = String::from_utf8(d.record.payload.to_vec()).unwrap();
                seen.lock().unwrap().push((d.record.key.clone(), payload));
                Ok(())
            }))
        })
    }

    async fn wait_for(seen: &Seen, n: usize) {
        for _ in 0..500 {
            if seen.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("only {} deliveries arrived", seen.lock().unwrap().len());
    }

    #[tokio::test]
    async fn one_key_stays_on_one_partition_in_order_and_failed_handlers_redeliver() {
        let bus = MemoryBus::new(&settings());
        let seen: Seen = Arc::default();
        let _sub = bus
            .subscribe(Subscription::new(
                "g",
                vec![Topic::Applications],
                collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(2))),
            ))
            .unwrap();
        let records = (0..20).map(|n| record("case-a", n)).collect();
        bus.publish(records).await.unwrap();
        wait_for(&seen, 20).await;

        let seen = seen.lock().unwrap().clone();
        let order: Vec<_> = seen
            .iter()
            .map(|(_, p)| p.parse::<u32>().unwrap())
            .collect();
        // The first two handlings fail; the partition rewinds to the lowest unfinished record and hands
        // out everything from there again, in order.
        assert_eq!(
            order[order.len() - 20..].to_vec(),
            (0..20).collect::<Vec<_>>(),
            "after the rewind every record comes again in offset order: {order:?}"
        );
        let partition = partition_for("case-a", 3);
        assert_eq!(bus.records(Topic::Applications, partition).len(), 20);
        assert_eq!(
            bus.committed_offset("g", Topic::Applications, partition),
            20
        );
    }

    #[tokio::test]
    async fn a_restarted_group_resumes_from_its_committed_offset() {
        let bus = MemoryBus::new(&settings());
        let seen: Seen = Arc::default();
        let sub = bus
            .subscribe(Subscription::new(
                "g",
                vec![Topic::Applications],
                collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(0))),
            ))
            .unwrap();
        bus.publish(vec![record("k", 1)]).await.unwrap();
        wait_for(&seen, 1).await;
        drop(sub);
        tokio::time::sleep(Duration::from_millis(10)).await;
        bus.publish(vec![record("k", 2)]).await.unwrap();

        let again: Seen = Arc::default();
        let _sub = bus
            .subscribe(Subscription::new(
                "g",
                vec![Topic::Applications],
                collecting_handler(again.clone(), Arc::new(AtomicUsize::new(0))),
            ))
            .unwrap();
        wait_for(&again, 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            *again.lock().unwrap(),
            vec![("k".to_owned(), "2".to_owned())]
        );
    }

    #[tokio::test]
    async fn a_failing_partition_pauses_alone_and_the_others_keep_flowing() {
        // Arrange: a backoff far longer than the test, a handler that always fails case-a's
        // first record, and case-a and case-b on different partitions.
        let bus = MemoryBus::new(&BusSettings {
            redelivery_backoff_ms: 60_000,
            ..settings()
        });
        let (a, b) = (partition_for("case-a", 3), partition_for("case-b", 3));
        assert_ne!(a, b, "the test needs two partitions");
        let attempts_on_a = Arc::new(AtomicUsize::new(0));
        let seen: Seen = Arc::default();
        let handler: RecordHandler = {
            let (seen, attempts_on_a) = (seen.clone(), attempts_on_a.clone());
            Arc::new(move |d: Delivery| {
                let (seen, attempts_on_a) = (seen.clone(), attempts_on_a.clone());
                Dispatch::Handle(Box::pin(async move {
                    if d.record.key == "case-a" && d.offset == 0 {
                        attempts_on_a.fetch_add(1, Ordering::SeqCst);
                        return Err(HandlerFailed("injected".into()));
                    }
                    let payload = String::from_utf8(d.record.payload.to_vec()).unwrap();
                    seen.lock().unwrap().push((d.record.key.clone(), payload));
                    Ok(())
                }))
            })
        };
        let _sub = bus
            .subscribe(Subscription::new("g", vec![Topic::Applications], handler))
            .unwrap();

        // Act: case-a's record fails first, then case-b's records arrive.
        bus.publish(vec![record("case-a", 0)]).await.unwrap();
        for _ in 0..500 {
            if attempts_on_a.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bus.publish((0..10).map(|n| record("case-b", n)).collect())
            .await
            .unwrap();
        wait_for(&seen, 10).await;

        // Assert: case-b's partition was handled and committed while case-a's waits out its
        // backoff, its failed record not yet tried again and nothing committed past it.
        let of_b: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(of_b, (0..10).map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(bus.committed_offset("g", Topic::Applications, b), 10);
        assert_eq!(bus.committed_offset("g", Topic::Applications, a), 0);
        assert_eq!(attempts_on_a.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn injected_publish_failures_write_nothing() {
        let bus = MemoryBus::new(&settings());
        bus.fail_next_publishes(1);
        assert!(bus.publish(vec![record("k", 1)]).await.is_err());
        bus.publish(vec![record("k", 2)]).await.unwrap();
        let all = bus.all_records(Topic::Applications);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.payload, Bytes::from("2"));
    }
}
