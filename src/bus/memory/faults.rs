//! Fault injection on the memory bus, for tests: what a broker or a dying process can do to
//! the flow, made to happen on demand. Each fault is armed by a method of [`MemoryBus`] and
//! consumed as it fires (or, for refused snapshots, lasts until disarmed).

use super::MemoryBus;
use crate::bus::{Record, Topic};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Injected faults.
#[derive(Default)]
pub(super) struct Faults {
    /// Publishes still to fail.
    fail_publishes: AtomicU32,
    /// Deliveries still to hand out twice.
    duplicate_deliveries: AtomicU32,
    /// Delay before each delivery, in microseconds.
    delay_micros: AtomicU64,
    /// The system (`department/urban_management`) whose state snapshots are refused, if any.
    refused_snapshots_of: Mutex<Option<String>>,
    /// Publishes refused because they carried one of those snapshots.
    snapshots_refused: AtomicU64,
    /// Deliveries still to lose, by (consumer group, target, message type).
    lose_deliveries: Mutex<HashMap<(String, String, String), u32>>,
    /// Deliveries lost so far.
    deliveries_lost: AtomicU64,
}

impl Faults {
    /// Whether this publish is to fail: a publish failure is armed, or the records carry a
    /// refused system's snapshot. Consumes one armed publish failure.
    pub(super) fn refuses(&self, records: &[Arc<Record>]) -> Option<&'static str> {
        let failed = self
            .fail_publishes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Some("injected fault: publish refused");
        }
        let refused = self
            .refused_snapshots_of
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // A snapshot's key is `<system>|<case id>` (see `Envelope::record_key`).
        let prefix = refused.as_ref().map(|system| format!("{system}|"))?;
        let hit = records
            .iter()
            .any(|r| r.topic == Topic::State && r.key.starts_with(&prefix));
        hit.then(|| {
            self.snapshots_refused.fetch_add(1, Ordering::SeqCst);
            "injected fault: state snapshot refused"
        })
    }

    /// Whether the next delivery is to be handed out twice; consumes one armed duplicate.
    pub(super) fn duplicates(&self) -> bool {
        self.duplicate_deliveries
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Whether `group` is to lose this delivery of `record`: done without its handler seeing
    /// it, so its offset is committed past it. Consumes one armed loss of the record's target
    /// and type.
    pub(super) fn loses(&self, group: &str, record: &Record) -> bool {
        let mut armed = self
            .lose_deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Nothing armed, as in every run but a test's: no key to build for each delivery.
        if armed.is_empty() {
            return false;
        }
        let target = record.header("target").unwrap_or_default();
        let kind = record.header("type").unwrap_or_default();
        let key = (group.to_owned(), target.to_owned(), kind.to_owned());
        let Some(left) = armed.get_mut(&key) else {
            return false;
        };
        *left = left.saturating_sub(1);
        if *left == 0 {
            armed.remove(&key);
        }
        self.deliveries_lost.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// The delay to put before each delivery, in microseconds (0: none).
    pub(super) fn delay_micros(&self) -> u64 {
        self.delay_micros.load(Ordering::Relaxed)
    }
}

impl MemoryBus {
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

    /// Until [`accept_snapshots`](Self::accept_snapshots), fails every publish that carries a
    /// state snapshot of `system` (e.g. `department/urban_management`), writing nothing of it.
    /// The system's other outputs reach the bus first (a handler's snapshot is published only
    /// once its messages are on the bus), so this is the moment a process dies between a
    /// message's effects and its snapshot: what the state topic says lags what the flow shows.
    pub fn refuse_snapshots_of(&self, system: &str) {
        *self
            .inner
            .faults
            .refused_snapshots_of
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(system.to_owned());
    }

    /// Ends [`refuse_snapshots_of`](Self::refuse_snapshots_of).
    pub fn accept_snapshots(&self) {
        *self
            .inner
            .faults
            .refused_snapshots_of
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How many publishes [`refuse_snapshots_of`](Self::refuse_snapshots_of) failed so far.
    pub fn snapshots_refused(&self) -> u64 {
        self.inner.faults.snapshots_refused.load(Ordering::SeqCst)
    }

    /// Makes consumer group `group` lose its next `n` deliveries of messages for `target`
    /// (e.g. `department/market`) of type `kind` (e.g. `application.published`): each is
    /// committed past without reaching the system, as when a system drops a message as handled
    /// before it could handle it. The record stays on the bus, and other groups get it as usual.
    pub fn lose_next_deliveries(&self, group: &str, target: &str, kind: &str, n: u32) {
        let mut armed = self
            .inner
            .faults
            .lose_deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = (group.to_owned(), target.to_owned(), kind.to_owned());
        if n == 0 {
            armed.remove(&key);
        } else {
            armed.insert(key, n);
        }
    }

    /// How many deliveries [`lose_next_deliveries`](Self::lose_next_deliveries) lost so far.
    pub fn deliveries_lost(&self) -> u64 {
        self.inner.faults.deliveries_lost.load(Ordering::SeqCst)
    }

    /// Forgets every offset `group` committed, as if its consumers had died before committing
    /// anything: the next subscription of the group reads its topics from the start. Only for
    /// a group with no running consumer (one would commit again over it).
    pub fn forget_commits(&self, group: &str) {
        self.inner.committed.remove(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, Delivery, Dispatch, Subscription};
    use crate::settings::{BusKind, BusSettings};
    use bytes::Bytes;

    fn bus() -> MemoryBus {
        MemoryBus::durable(&BusSettings {
            kind: BusKind::Memory,
            topic_prefix: "t".into(),
            partitions: 1,
            consumer_max_in_flight: 8,
            redelivery_backoff_ms: 1,
            max_record_bytes: 1_000_000,
            flow_retention_hours: 168,
            memory_trim: false,
            memory_unread_bytes: 0,
            brokers: String::new(),
            kafka: Default::default(),
        })
    }

    fn record(topic: Topic, key: &str) -> Arc<Record> {
        Arc::new(Record {
            topic,
            key: key.into(),
            headers: vec![],
            payload: Bytes::from_static(b"{}"),
        })
    }

    /// Waits (boundedly) until `done` holds; panics if it never does.
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the condition never held");
    }

    #[tokio::test]
    async fn refused_snapshots_fail_only_publishes_that_carry_one_of_that_system() {
        // Arrange
        let bus = bus();
        bus.refuse_snapshots_of("department/market");

        // Act
        let own = bus
            .publish(vec![
                record(Topic::Acceptances, "c1"),
                record(Topic::State, "department/market|c1"),
            ])
            .await;
        let other = bus
            .publish(vec![record(Topic::State, "department/fire|c1")])
            .await;
        let flow = bus.publish(vec![record(Topic::Acceptances, "c2")]).await;
        bus.accept_snapshots();
        let after = bus
            .publish(vec![record(Topic::State, "department/market|c1")])
            .await;

        // Assert: the refused publish wrote nothing, not even its flow record.
        assert!(own.is_err() && other.is_ok() && flow.is_ok() && after.is_ok());
        assert_eq!(bus.snapshots_refused(), 1);
        let keys: Vec<_> = bus
            .all_records(Topic::Acceptances)
            .into_iter()
            .map(|(_, r)| r.key.clone())
            .collect();
        assert_eq!(keys, ["c2"]);
        assert_eq!(bus.all_records(Topic::State).len(), 2);
    }

    #[tokio::test]
    async fn a_lost_delivery_is_committed_past_for_that_group_target_and_type_only() {
        // Arrange: records of two types for two targets, read by two groups.
        let bus = bus();
        let typed = |target: &str, kind: &str, key: &str| {
            let mut r = Record::clone(&record(Topic::Applications, key));
            r.headers = vec![
                ("target".into(), target.into()),
                ("type".into(), kind.into()),
            ];
            Arc::new(r)
        };
        bus.publish(vec![
            typed("department/fire", "application.published", "x"),
            typed("department/market", "application.published", "a"),
            typed("department/market", "case.rated", "b"),
            typed("department/market", "application.published", "c"),
        ])
        .await
        .unwrap();
        bus.lose_next_deliveries("g", "department/market", "application.published", 1);
        let keys = |seen: Arc<Mutex<Vec<String>>>| {
            Arc::new(move |d: Delivery| {
                seen.lock().unwrap().push(d.record.key.clone());
                Dispatch::Skip
            })
        };
        let (lossy, other) = (Arc::default(), Arc::default());

        // Act
        let _g = bus
            .subscribe(Subscription::new(
                "g",
                vec![Topic::Applications],
                keys(Arc::clone(&lossy)),
            ))
            .unwrap();
        let _h = bus
            .subscribe(Subscription::new(
                "h",
                vec![Topic::Applications],
                keys(Arc::clone(&other)),
            ))
            .unwrap();

        // Assert: `g` lost the market's first `application.published` only, yet committed past
        // it.
        until(|| bus.committed_offset("g", Topic::Applications, 0) == 4).await;
        until(|| other.lock().unwrap().len() == 4).await;
        assert_eq!(*lossy.lock().unwrap(), ["x", "b", "c"]);
        assert_eq!(bus.deliveries_lost(), 1);
    }

    #[tokio::test]
    async fn a_group_whose_commits_were_forgotten_reads_from_the_start_again() {
        // Arrange: a group read and committed two records, then stopped.
        let bus = bus();
        bus.publish(vec![
            record(Topic::Applications, "a"),
            record(Topic::Applications, "b"),
        ])
        .await
        .unwrap();
        let seen = Arc::new(AtomicU32::new(0));
        let count = |seen: Arc<AtomicU32>| {
            Arc::new(move |_: Delivery| {
                seen.fetch_add(1, Ordering::SeqCst);
                Dispatch::Skip
            })
        };
        let mut first = bus
            .subscribe(Subscription::new(
                "g",
                vec![Topic::Applications],
                count(seen.clone()),
            ))
            .unwrap();
        until(|| bus.committed_offset("g", Topic::Applications, 0) == 2).await;
        first.stopped().await;

        // Act
        bus.forget_commits("g");
        let again = Arc::new(AtomicU32::new(0));
        let _second = bus
            .subscribe(Subscription::new(
                "g",
                vec![Topic::Applications],
                count(again.clone()),
            ))
            .unwrap();

        // Assert
        until(|| again.load(Ordering::SeqCst) == 2).await;
        assert_eq!(bus.committed_offset("g", Topic::Applications, 0), 2);
    }
}
