//! The message bus: one interface, an in-memory implementation, and the bridge actor through
//! which every system publishes and consumes.
//!
//! * [`Bus`] — publish batches of records; subscribe a consumer group to topics.
//! * [`Topic`] — the topics of the wire contract, and which message type goes on which
//!   ([`Topic::of`]).
//! * [`memory::MemoryBus`] — partitioned topics, consumer groups with committed offsets,
//!   at-least-once delivery and fault injection (the "mock bus").
//! * [`kafka::KafkaBus`] — the same over Kafka (rdkafka), or librdkafka's embedded mock cluster.
//! * `consumer_core` — what both buses' consumers share: records in flight per partition,
//!   storing only what is fully handled, pausing and rewinding a failed partition, draining on
//!   stop.
//! * [`bridge::Bridge`] — the actor that keys, batches, retries and orders every publish, and
//!   turns consumed records back into envelopes (dead-lettering the ones it cannot read).
//! * [`trace`] — the W3C `traceparent` of every envelope's record, and the span a consumer
//!   hands a record to its system in.
//!
//! Delivery guarantee: at least once. A consumer hands records of a partition to its handler in
//! offset order and commits an offset only when the handler, and every handler before it on that
//! partition, has finished. A failed handler pauses its own partition (the group's other
//! partitions keep flowing) and then rewinds it to its lowest unfinished record, so records
//! after it may be delivered again; systems drop repeats by message id.

pub mod bridge;
mod consumer_core;
pub mod embedded;
pub mod headers;
pub mod kafka;
mod kafka_consumer;
pub mod memory;
pub mod offsets;
mod partitions;
pub mod payload;
mod resume;
pub mod trace;

pub use partitions::{partition_for, Partitioner, Share};
pub use resume::{OffsetSink, Resume};

use crate::domain::MessageType;
use bytes::Bytes;
use futures::future::BoxFuture;
pub use headers::HeaderName;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The topics of the wire contract (without the configured prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `application.published`
    Applications,
    /// `application.accepted`
    Acceptances,
    /// `collaboration.requested`
    CollaborationRequests,
    /// `collaboration.dispatched`, `collaboration.extension_decided`
    CollaborationEvents,
    /// `collaboration.answered`, `collaboration.completed`, `collaboration.signed`,
    /// `collaboration.returned`, `collaboration.extension_requested`
    CollaborationResults,
    /// `approval.published`, `approval.delivered`
    Approvals,
    /// `case.suspended`, `case.supplemented`, `case.resumed`, `case.rated`
    CaseUpdates,
    /// `supervision.warning`, `collaboration.escalated`
    Supervision,
    /// `state.snapshot`: what each system must remember about a case to survive a restart;
    /// compacted, keyed by system and case.
    State,
    /// Records no system could read, with the reason in headers.
    DeadLetters,
    /// The audit trail: one hash-chained record per state-changing request and per read of
    /// personal data in clear, keyed by the writing process (see [`crate::audit`]). No system
    /// consumes it; auditors read it with `govfusion audit verify`.
    Audit,
}

impl Topic {
    /// Every topic, in flow order.
    pub const ALL: [Topic; 11] = [
        Topic::Applications,
        Topic::Acceptances,
        Topic::CollaborationRequests,
        Topic::CollaborationEvents,
        Topic::CollaborationResults,
        Topic::Approvals,
        Topic::CaseUpdates,
        Topic::Supervision,
        Topic::State,
        Topic::DeadLetters,
        Topic::Audit,
    ];

    /// The topics of the flow: every topic but the state topic, dead-letters and the audit
    /// trail.
    pub fn flow() -> Vec<Topic> {
        Topic::ALL
            .into_iter()
            .filter(|t| !matches!(t, Topic::State | Topic::DeadLetters | Topic::Audit))
            .collect()
    }

    /// The topic's name after the prefix, e.g. `collaboration.events`.
    pub fn suffix(self) -> &'static str {
        match self {
            Topic::Applications => "applications",
            Topic::Acceptances => "acceptances",
            Topic::CollaborationRequests => "collaboration.requests",
            Topic::CollaborationEvents => "collaboration.events",
            Topic::CollaborationResults => "collaboration.results",
            Topic::Approvals => "approvals",
            Topic::CaseUpdates => "case.updates",
            Topic::Supervision => "supervision",
            Topic::State => "state",
            Topic::DeadLetters => "dead-letters",
            Topic::Audit => "audit",
        }
    }

    /// The full topic name under `prefix`.
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}.{}", self.suffix())
    }

    /// The topic a message of type `kind` is published on.
    pub fn of(kind: MessageType) -> Topic {
        match kind {
            MessageType::ApplicationPublished => Topic::Applications,
            MessageType::ApplicationAccepted => Topic::Acceptances,
            MessageType::CollaborationRequested => Topic::CollaborationRequests,
            MessageType::CollaborationDispatched | MessageType::CollaborationExtensionDecided => {
                Topic::CollaborationEvents
            }
            MessageType::CollaborationAnswered
            | MessageType::CollaborationCompleted
            | MessageType::CollaborationSigned
            | MessageType::CollaborationReturned
            | MessageType::CollaborationExtensionRequested => Topic::CollaborationResults,
            MessageType::ApprovalPublished | MessageType::ApprovalDelivered => Topic::Approvals,
            MessageType::CaseSuspended
            | MessageType::CaseSupplemented
            | MessageType::CaseResumed
            | MessageType::CaseRated => Topic::CaseUpdates,
            MessageType::CollaborationEscalated | MessageType::SupervisionWarning => {
                Topic::Supervision
            }
            MessageType::StateSnapshot => Topic::State,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// One record on a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The topic it is (to be) written to.
    pub topic: Topic,
    /// The record key: the case id. It picks the partition.
    pub key: String,
    /// Headers, in order.
    pub headers: Vec<(HeaderName, String)>,
    /// The encoded envelope (or, on a poisoned topic, anything at all).
    pub payload: Bytes,
}

impl Record {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A record handed to a consumer, with where it came from.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The record.
    pub record: Arc<Record>,
    /// The consumer group it is delivered to.
    pub group: Arc<str>,
    /// Its partition.
    pub partition: u32,
    /// Its offset within the partition.
    pub offset: u64,
}

/// Why a handler did not finish a record. The record will be delivered again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HandlerFailed(pub String);

/// What a handler makes of a record.
pub enum Dispatch {
    /// Not for this group's systems: done at once, nothing to wait for.
    Skip,
    /// Being handled; the future resolves when the record is finished.
    Handle(BoxFuture<'static, Result<(), HandlerFailed>>),
}

/// What a consumer calls for each record.
pub type RecordHandler = Arc<dyn Fn(Delivery) -> Dispatch + Send + Sync>;

/// A consumer group's subscription to topics.
pub struct Subscription {
    /// The consumer group, e.g. `govfusion.department.market`.
    pub group: String,
    /// The topics to consume.
    pub topics: Vec<Topic>,
    /// Called for every record, in offset order per partition.
    pub handler: RecordHandler,
    /// The thread (arbiter) the consumers run on, best the one of the systems they feed;
    /// `None` runs them on the subscriber's thread.
    pub arbiter: Option<actix_rt::ArbiterHandle>,
    /// How the consumer takes its partitions (Kafka only: the memory bus has no membership).
    pub membership: Membership,
    /// The consumer receives nothing until this turns true (`None`: at once). Start-up
    /// subscribes groups before their systems have their state back, so that joining a group
    /// (seconds on some brokers, more while a dead member's session runs out) overlaps the
    /// state read. Waiting before receiving, rather than holding received records, keeps each
    /// partition's records in order.
    pub after: Option<tokio::sync::watch::Receiver<bool>>,
    /// For a consumer alone ([`Membership::Alone`]) whose group keeps its offsets with what it
    /// writes rather than on the bus: where it starts and where it reports its progress.
    pub resume: Option<Resume>,
}

/// Waits until `gate` (a [`Subscription::after`]) opens: true then (or at once without a
/// gate), false if the subscription is stopped first or the gate's sender is gone.
pub(crate) async fn opened(
    gate: Option<tokio::sync::watch::Receiver<bool>>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let Some(mut gate) = gate else {
        return true;
    };
    tokio::select! {
        open = gate.wait_for(|open| *open) => open.is_ok(),
        _ = stop.wait_for(|stopped| *stopped) => false,
    }
}

/// How a subscription's consumer takes its partitions on Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Joins the group; the broker shares the partitions among its members.
    Dynamic,
    /// Joins as the static member of this name (`group.instance.id`, KIP-345): restarted within
    /// its session, it gets its partitions back without a rebalance.
    Static(String),
    /// Joins no group: reads the partitions of its [`Share`] that the topics have when it
    /// starts (every one with [`Share::ALL`]), from the start, and keeps following them. For a
    /// group of one process's run, which no other process shares and no restart resumes: it
    /// skips the broker's join, which took 3 s per group on tansu with the default 6 s session
    /// (README, "How fast a process is back").
    Alone(Share),
}

impl Subscription {
    /// `group`'s subscription to `topics`, its consumers on the subscriber's thread.
    pub fn new(group: impl Into<String>, topics: Vec<Topic>, handler: RecordHandler) -> Self {
        Self {
            group: group.into(),
            topics,
            handler,
            arbiter: None,
            membership: Membership::Dynamic,
            after: None,
            resume: None,
        }
    }
}

/// The next offset of each (topic, partition).
pub type EndOffsets = HashMap<(Topic, u32), u64>;

/// How far a consumer group that reads its topics from the start has come, against the end
/// offsets they had when it started: the group has caught up once it finished every record
/// below them. A system rebuilding its state this way is ready then.
#[derive(Debug)]
pub struct CatchUp {
    /// The end offset of each partition when reading started.
    target: HashMap<(Topic, u32), u64>,
    /// The offset after the last record finished, per partition.
    reached: crate::maps::SharedMap<(Topic, u32), u64>,
    /// Records there were to read when reading started.
    total: u64,
}

impl CatchUp {
    /// Follows reading up to `target` (from [`Bus::end_offsets`]).
    pub fn new(target: HashMap<(Topic, u32), u64>) -> Arc<Self> {
        Self::resumed(target, &HashMap::new())
    }

    /// Follows reading up to `target` by a group that resumes at `from` (see [`Resume`]):
    /// what lies before `from` counts as read.
    pub fn resumed(
        target: HashMap<(Topic, u32), u64>,
        from: &HashMap<(Topic, u32), u64>,
    ) -> Arc<Self> {
        let total = target
            .iter()
            .map(|(key, &end)| end.saturating_sub(from.get(key).copied().unwrap_or(0)))
            .sum();
        let reached = from.iter().map(|(&key, &next)| (key, next)).collect();
        Arc::new(Self {
            target,
            reached,
            total,
        })
    }

    /// The record at `offset` of a partition is finished.
    pub fn record(&self, topic: Topic, partition: u32, offset: u64) {
        let mut reached = self.reached.entry((topic, partition)).or_insert(0);
        *reached = (*reached).max(offset + 1);
    }

    /// Records still to finish before the group has caught up.
    pub fn remaining(&self) -> u64 {
        self.target
            .iter()
            .map(|(key, &end)| {
                let reached = self.reached.get(key).map_or(0, |r| *r);
                end.saturating_sub(reached)
            })
            .sum()
    }

    /// The end offset of each partition when reading started.
    pub fn target(&self) -> HashMap<(Topic, u32), u64> {
        self.target.clone()
    }

    /// Records there were to read when reading started.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Why the bus refused an operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The records were not written; they may be retried.
    #[error("publish failed: {0}")]
    Publish(String),
    /// The bus can never take these records of the publish (too large, invalid): sending them
    /// again cannot help. Every other record of the publish was written.
    #[error("the bus refused {} record(s) for good: {}", .0.len(), .0.first().map_or("", |r| r.reason.as_str()))]
    Refused(Vec<Refusal>),
    /// The bus could not say where its partitions end.
    #[error("cannot read the partitions' end offsets: {0}")]
    Offsets(String),
    /// The subscription cannot be set up.
    #[error("subscription failed: {0}")]
    Subscribe(String),
}

/// A record of a publish that the bus can never take.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Its position among the records given to [`Bus::publish`].
    pub index: usize,
    /// Why, as the bus says it (e.g. `Broker: Message size too large`).
    pub reason: String,
    /// Whether it was the record's size: a smaller record would be taken.
    pub too_large: bool,
}

/// Stops a subscription's consumers when told to or when dropped, and tells when they are gone.
#[derive(Debug)]
pub struct SubscriptionHandle {
    /// The consumer group.
    group: String,
    /// The topics it reads.
    topics: Vec<Topic>,
    /// Whether the consumers have partitions to read (Kafka: after the first assignment).
    assigned: Arc<std::sync::atomic::AtomicBool>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Closed once every consumer task dropped its [`ConsumerGuard`].
    gone: tokio::sync::mpsc::Receiver<()>,
}

/// Held by each consumer task of a subscription; dropping the last one tells the handle that
/// the consumers are gone.
#[derive(Debug, Clone)]
pub struct ConsumerGuard {
    _alive: tokio::sync::mpsc::Sender<()>,
}

impl SubscriptionHandle {
    /// A handle for `group` reading `topics`, the receiver its consumers watch for the stop
    /// signal, and the guard they hold.
    pub fn new(
        group: &str,
        topics: &[Topic],
    ) -> (Self, tokio::sync::watch::Receiver<bool>, ConsumerGuard) {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let (alive, gone) = tokio::sync::mpsc::channel(1);
        let handle = Self {
            group: group.to_owned(),
            topics: topics.to_vec(),
            assigned: Arc::default(),
            stop,
            gone,
        };
        (handle, rx, ConsumerGuard { _alive: alive })
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The topics it reads.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// The flag the consumers raise once they have partitions to read.
    pub fn assigned_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.assigned.clone()
    }

    /// Whether the consumers have partitions to read.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops the consumers: they hand out no more records. Committed offsets stay.
    pub fn stop(&self) {
        // Fails only when every consumer has already gone, which is what we want anyway.
        let _ = self.stop.send(true);
    }

    /// Stops the consumers and waits until they finished their work and closed.
    pub async fn stopped(&mut self) {
        self.stop();
        // Nothing is ever sent: `recv` returns `None` once every guard is dropped.
        while self.gone.recv().await.is_some() {}
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A message bus: partitioned topics and consumer groups.
pub trait Bus: Send + Sync + 'static {
    /// Writes `records`; resolves once all are durably on the bus, in order per partition. The
    /// records are handed over before this returns: those of a later call come after them on
    /// their partition, and a failure known at once (the bus refusing the whole publish, a full
    /// local queue) is answered by a future that is ready. A record the bus can never take does
    /// not hold the others back: they are written and the publish answers
    /// [`BusError::Refused`] naming it.
    fn publish(&self, records: Vec<Arc<Record>>) -> BoxFuture<'static, Result<(), BusError>>;

    /// Starts consumers for `subscription`, resuming from the group's committed offsets.
    fn subscribe(&self, subscription: Subscription) -> Result<SubscriptionHandle, BusError>;

    /// The next offset of every partition of `topics` now (the high watermarks): a reader that
    /// has handled everything below them has caught up with what was there at this moment.
    fn end_offsets(&self, topics: Vec<Topic>) -> BoxFuture<'static, Result<EndOffsets, BusError>>;

    /// Whether records handed over in separate publishes, while earlier ones are still on their
    /// way, keep the order they were handed in on their partition through the bus's own retries
    /// (a publish takes its records before it returns). The bridge then keeps several batches
    /// on their way at once; otherwise one at a time.
    fn keeps_order_in_flight(&self) -> bool {
        true
    }

    /// Whether what is published outlives the systems running on it (a Kafka cluster, or a
    /// [`MemoryBus::durable`](memory::MemoryBus::durable) that tests restart systems over), so
    /// that systems write their state snapshots to it and rebuild from them after a restart.
    /// The embedded cluster and a plain in-memory bus end with the process: nothing written
    /// there could be read back, so systems keep their state in memory only.
    fn outlives_process(&self) -> bool {
        false
    }

    /// How it chooses a key's partition.
    fn partitioner(&self) -> Partitioner {
        Partitioner::Fnv1a
    }

    /// Waits until everything published is on the bus (or a configured time passed).
    fn shutdown(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// A record's size as a broker counts it against its limit: key, headers and payload.
pub fn record_size(record: &Record) -> u64 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (record.key.len() + headers + record.payload.len()) as u64
}

#[cfg(test)]
mod opened_tests {
    use super::opened;
    use tokio::sync::watch;

    #[tokio::test]
    async fn a_consumer_waits_for_its_gate_and_then_receives() {
        // Arrange
        let (state_rebuilt, gate) = watch::channel(false);
        let (_stop, mut stop) = watch::channel(false);
        let mut waiting = Box::pin(opened(Some(gate), &mut stop));

        // Act / Assert: nothing while the state is read, then it may receive.
        assert!(futures::poll!(&mut waiting).is_pending());
        state_rebuilt.send_replace(true);
        assert!(waiting.await);
    }

    #[tokio::test]
    async fn a_consumer_stopped_before_its_gate_opens_never_receives() {
        // Arrange
        let (_state_rebuilt, gate) = watch::channel(false);
        let (stopper, mut stop) = watch::channel(false);

        // Act
        stopper.send_replace(true);

        // Assert
        assert!(!opened(Some(gate), &mut stop).await);
        assert!(
            opened(None, &mut stop).await,
            "no gate: it receives at once"
        );
    }
}
