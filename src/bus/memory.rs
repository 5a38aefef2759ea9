//! The in-memory bus: the mock bus of the tests and the bus of a single-process deployment.
//!
//! Each topic has a fixed number of partitions; a partition is an append-only log. A consumer
//! group keeps one committed offset per (topic, partition); its consumer hands records to the
//! handler in order, at most `consumer_max_in_flight` at a time, and commits the offset after a
//! record and every record before it were handled. When a handler fails, the consumer rewinds
//! to that record and delivers it (and those after it) again after a pause. A subscription that
//! is stopped and started again resumes from the committed offsets.
//!
//! Fault injection for tests: [`MemoryBus::fail_next_publishes`],
//! [`MemoryBus::duplicate_next_deliveries`] and [`MemoryBus::delay_deliveries`].
//!
//! The logs are not trimmed: a memory bus holds every record it was given until the process
//! ends.

use super::{
    partition_for, Bus, BusError, Delivery, Dispatch, HandlerFailed, Record, RecordHandler,
    Subscription, SubscriptionHandle, Topic,
};
use crate::settings::BusSettings;
use dashmap::DashMap;
use futures::future::{self, BoxFuture, Either};
use futures::stream::{FuturesOrdered, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// One partition's log; `len` tells waiting consumers that it grew.
struct PartitionLog {
    /// The records, by offset.
    records: RwLock<Vec<Arc<Record>>>,
    /// The log length, watched by the consumers of this partition.
    len: watch::Sender<u64>,
}

/// One consumer group's committed offsets: (topic, partition) → next offset to deliver.
type GroupOffsets = DashMap<(Topic, u32), u64>;

/// Injected faults, consumed as they fire.
#[derive(Default)]
struct Faults {
    /// Publishes still to fail.
    fail_publishes: AtomicU32,
    /// Deliveries still to hand out twice.
    duplicate_deliveries: AtomicU32,
    /// Delay before each delivery, in microseconds.
    delay_micros: AtomicU64,
}

struct Inner {
    /// Every topic's partitions.
    topics: HashMap<Topic, Vec<PartitionLog>>,
    /// Committed offsets: group → (topic, partition) → next offset to deliver.
    committed: DashMap<String, Arc<GroupOffsets>>,
    /// (group, topic) pairs with a running consumer.
    active: Mutex<HashMap<(String, Topic), watch::Receiver<bool>>>,
    /// Injected faults.
    faults: Faults,
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
    inner: Arc<Inner>,
}

impl MemoryBus {
    /// An empty bus with every topic of the wire contract.
    pub fn new(settings: &BusSettings) -> Self {
        let partitions = settings.partitions.max(1);
        let topics = Topic::ALL
            .iter()
            .map(|&topic| {
                let logs = (0..partitions)
                    .map(|_| PartitionLog {
                        records: RwLock::new(Vec::new()),
                        len: watch::channel(0).0,
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
                faults: Faults::default(),
                partitions,
                max_in_flight: settings.consumer_max_in_flight.max(1),
                redelivery_backoff: Duration::from_millis(settings.redelivery_backoff_ms),
            }),
        }
    }

    /// Makes the next `n` publishes fail without writing anything.
    pub fn fail_next_publishes(&self, n: u32) {
        self.inner.faults.fail_publishes.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` deliveries (to any group) happen twice.
    pub fn duplicate_next_deliveries(&self, n: u32) {
        self.inner
            .faults
            .duplicate_deliveries
            .store(n, Ordering::SeqCst);
    }

    /// Delays every delivery by `delay` (zero turns the delay off).
    pub fn delay_deliveries(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.inner
            .faults
            .delay_micros
            .store(micros, Ordering::SeqCst);
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
}

/// Reads a lock, recovering the data if a writer panicked (the log itself stays consistent:
/// a push either happened or it did not).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Bus for MemoryBus {
    fn publish(&self, records: Vec<Arc<Record>>) -> BoxFuture<'static, Result<(), BusError>> {
        let faults = &self.inner.faults;
        let failed = faults
            .fail_publishes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Box::pin(async {
                Err(BusError::Publish("injected fault: publish refused".into()))
            });
        }
        for record in records {
            let partition = partition_for(&record.key, self.inner.partitions);
            // Every topic exists with `partitions` partitions, and `partition_for` stays below it.
            let Some(log) = self.log(record.topic, partition) else {
                continue;
            };
            let mut records = log.records.write().unwrap_or_else(|p| p.into_inner());
            records.push(record);
            let len = records.len() as u64;
            drop(records);
            log.len.send_replace(len);
        }
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self, subscription: Subscription) -> Result<SubscriptionHandle, BusError> {
        let (handle, stop, guard) = SubscriptionHandle::new();
        let group: Arc<str> = Arc::from(subscription.group.as_str());
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
        let offsets = self
            .inner
            .committed
            .entry(subscription.group.clone())
            .or_default()
            .clone();
        for &topic in &subscription.topics {
            for partition in 0..self.inner.partitions {
                let consumer = PartitionConsumer {
                    bus: self.clone(),
                    group: group.clone(),
                    topic,
                    partition,
                    offsets: offsets.clone(),
                    handler: subscription.handler.clone(),
                    stop: stop.clone(),
                    _guard: guard.clone(),
                };
                match &subscription.arbiter {
                    Some(arbiter) => {
                        arbiter.spawn(consumer.run());
                    }
                    None => {
                        tokio::spawn(consumer.run());
                    }
                }
            }
        }
        Ok(handle)
    }

    fn partitions(&self) -> u32 {
        self.inner.partitions
    }
}

/// Consumes one partition of one topic for one group.
struct PartitionConsumer {
    bus: MemoryBus,
    group: Arc<str>,
    topic: Topic,
    partition: u32,
    offsets: Arc<GroupOffsets>,
    handler: RecordHandler,
    stop: watch::Receiver<bool>,
    _guard: super::ConsumerGuard,
}

impl PartitionConsumer {
    async fn run(mut self) {
        let Some(log) = self.bus.log(self.topic, self.partition) else {
            return;
        };
        let mut grown = log.len.subscribe();
        let key = (self.topic, self.partition);
        let mut position = self.offsets.get(&key).map(|o| *o).unwrap_or(0);
        let mut in_flight = FuturesOrdered::new();
        loop {
            if *self.stop.borrow() {
                return;
            }
            // Fill the window with the next records, in order.
            let available = *grown.borrow_and_update();
            while in_flight.len() < self.bus.inner.max_in_flight && position < available {
                let record = read(&log.records)[position as usize].clone();
                for _ in 0..self.copies() {
                    match self.deliver(record.clone(), position) {
                        // Nothing before it is pending: it is done, commit straight away.
                        None if in_flight.is_empty() => {
                            self.offsets.insert(key, position + 1);
                        }
                        None => {
                            in_flight.push_back(Either::Left(future::ready((position, Ok(())))))
                        }
                        Some(handling) => in_flight.push_back(Either::Right(handling)),
                    }
                }
                position += 1;
            }
            let waiting_for_records = position >= available;
            tokio::select! {
                done = in_flight.next(), if !in_flight.is_empty() => {
                    let Some((offset, result)) = done else { continue };
                    match result {
                        Ok(()) => {
                            self.offsets.insert(key, offset + 1);
                        }
                        Err(error) => {
                            tracing::warn!(
                                group = %self.group, topic = %self.topic,
                                partition = self.partition, offset, %error,
                                "handler failed; the record will be delivered again"
                            );
                            // Everything after the failed record is delivered again too, so
                            // that records are never handled out of order.
                            in_flight = FuturesOrdered::new();
                            position = offset;
                            tokio::time::sleep(self.bus.inner.redelivery_backoff).await;
                        }
                    }
                }
                changed = grown.changed(), if waiting_for_records => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = self.stop.changed() => {}
            }
        }
    }

    /// How many times to hand out the next record (2 while a duplicate fault is armed).
    fn copies(&self) -> usize {
        let duplicate = self
            .bus
            .inner
            .faults
            .duplicate_deliveries
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if duplicate {
            2
        } else {
            1
        }
    }

    /// Hands a record to the handler; `None` when the handler skipped it.
    fn deliver(
        &self,
        record: Arc<Record>,
        offset: u64,
    ) -> Option<BoxFuture<'static, (u64, Result<(), HandlerFailed>)>> {
        let delivery = Delivery {
            record,
            group: self.group.clone(),
            partition: self.partition,
            offset,
        };
        let delay = self.bus.inner.faults.delay_micros.load(Ordering::Relaxed);
        let Dispatch::Handle(handled) = (self.handler)(delivery) else {
            return None;
        };
        Some(Box::pin(async move {
            if delay > 0 {
                tokio::time::sleep(Duration::from_micros(delay)).await;
            }
            (offset, handled.await)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::AtomicUsize;

    fn settings() -> BusSettings {
        BusSettings {
            kind: crate::settings::BusKind::Memory,
            topic_prefix: "t".into(),
            partitions: 3,
            consumer_max_in_flight: 8,
            redelivery_backoff_ms: 1,
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
            .subscribe(Subscription {
                group: "g".into(),
                topics: vec![Topic::Applications],
                handler: collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(2))),
                arbiter: None,
            })
            .unwrap();
        let records = (0..20).map(|n| record("case-a", n)).collect();
        bus.publish(records).await.unwrap();
        wait_for(&seen, 20).await;

        let seen = seen.lock().unwrap().clone();
        let order: Vec<_> = seen
            .iter()
            .map(|(_, p)| p.parse::<u32>().unwrap())
            .collect();
        let mut deduped = order.clone();
        deduped.dedup();
        assert_eq!(deduped[..20].to_vec(), (0..20).collect::<Vec<_>>());
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
            .subscribe(Subscription {
                group: "g".into(),
                topics: vec![Topic::Applications],
                handler: collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(0))),
                arbiter: None,
            })
            .unwrap();
        bus.publish(vec![record("k", 1)]).await.unwrap();
        wait_for(&seen, 1).await;
        drop(sub);
        tokio::time::sleep(Duration::from_millis(10)).await;
        bus.publish(vec![record("k", 2)]).await.unwrap();

        let again: Seen = Arc::default();
        let _sub = bus
            .subscribe(Subscription {
                group: "g".into(),
                topics: vec![Topic::Applications],
                handler: collecting_handler(again.clone(), Arc::new(AtomicUsize::new(0))),
                arbiter: None,
            })
            .unwrap();
        wait_for(&again, 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            *again.lock().unwrap(),
            vec![("k".to_owned(), "2".to_owned())]
        );
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
