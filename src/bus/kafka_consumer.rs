//! A consumer group's consumer on Kafka, at least once.
//!
//! `enable.auto.commit=true` with `enable.auto.offset.store=false`: librdkafka commits in the
//! background only offsets we stored, and we store a partition's offset (`store_offset`) only
//! when its record and every record before it on that partition was handled (the
//! `consumer_core` tracks that). A failed handler pauses its own partition only: fetching it
//! stops (`pause`), records of it already fetched are dropped, and after
//! `redelivery_backoff_ms` the partition seeks back to its lowest unfinished record and resumes,
//! so it and the records after it are delivered again; the other partitions keep flowing.
//! Partitions taken away by a rebalance are forgotten: nothing is stored for them (not even by a
//! handler that finishes after the revocation), and the consumer that gets the partition reads
//! their unfinished records again. On stop the consumer waits (bounded) for unfinished records,
//! stores, commits synchronously and closes — the blocking calls off the async threads.
//!
//! A consumer alone ([`Membership::Alone`], the groups a process reads its state and views
//! with) joins no group: it asks the broker for its topics' partitions and assigns itself all of
//! them from the start, so no rebalance ever takes one away; a static member
//! ([`Membership::Static`]) joins with `group.instance.id`.

use super::consumer_core::{ConsumerCore, PartitionControl};
use super::embedded::EmbeddedCluster;
use super::{
    BusError, Delivery, Dispatch, Membership, OffsetSink, Record, Subscription, SubscriptionHandle,
    Topic,
};
use crate::monitoring::record;
use crate::settings::BusSettings;
use bytes::Bytes;
use config::consumer_config;
use futures::future::{BoxFuture, FutureExt};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the consumer reports its records in flight to the metrics.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Remembers partitions revoked by rebalances until the consumer loop forgets their work, and
/// raises the subscription's `assigned` flag at the first assignment.
pub struct GroupContext {
    /// Partitions revoked since the loop last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    /// The subscription's flag: raised at the first assignment.
    assigned: Arc<std::sync::atomic::AtomicBool>,
    /// The consumer group, for the log of the first assignment.
    group: Arc<str>,
    /// When the consumer subscribed: the first assignment logs how long joining took, the
    /// largest part of a restart on a slow group coordinator (README, "What survives a
    /// process").
    subscribed: std::time::Instant,
    /// Topic names → topics, to label the lag librdkafka reports.
    topics: HashMap<String, Topic>,
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics, every [`STATISTICS_INTERVAL_MS`](config::STATISTICS_INTERVAL_MS): the lag of each partition
    /// the consumer holds (its end less the group's committed offset, or the offset stored
    /// for commit while nothing is committed yet), for `/metrics`.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (name, topic) in &statistics.topics {
            let Some(known) = self.topics.get(name) else {
                continue;
            };
            for (&partition, stats) in &topic.partitions {
                let Ok(partition) = u32::try_from(partition) else {
                    // librdkafka's internal "unassigned" partition, -1.
                    continue;
                };
                let lag = [stats.consumer_lag, stats.consumer_lag_stored]
                    .into_iter()
                    .find_map(|lag| u64::try_from(lag).ok());
                if let Some(lag) = lag {
                    record::consumer_lag(&self.group, known.suffix(), partition, lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let first = !self
                .assigned
                .swap(true, std::sync::atomic::Ordering::AcqRel);
            if first {
                tracing::info!(
                    group = %self.group,
                    partitions = list.count(),
                    seconds = self.subscribed.elapsed().as_secs_f64(),
                    "consumer group has its partitions"
                );
            }
        }
        if let Rebalance::Revoke(list) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            for element in list.elements() {
                revoked.push((element.topic().to_owned(), element.partition()));
            }
        }
        tracing::debug!(?rebalance, "rebalance");
    }
}

type Consumer_ = StreamConsumer<GroupContext>;

/// Starts consuming for a subscription.
pub struct GroupConsumer;

impl GroupConsumer {
    /// Creates the consumer, subscribes it and spawns its loop.
    pub fn start(
        settings: &BusSettings,
        brokers: &str,
        names: &HashMap<Topic, String>,
        cluster: Option<Arc<EmbeddedCluster>>,
        subscription: Subscription,
    ) -> Result<SubscriptionHandle, BusError> {
        let mut config = consumer_config(settings, brokers, &subscription.group)?;
        if let Membership::Static(instance) = &subscription.membership {
            config.set("group.instance.id", instance);
        }
        let (handle, stop, guard) =
            SubscriptionHandle::new(&subscription.group, &subscription.topics);
        let by_name: HashMap<String, Topic> = names.iter().map(|(t, n)| (n.clone(), *t)).collect();
        let context = GroupContext {
            revoked: Mutex::default(),
            assigned: handle.assigned_flag(),
            group: Arc::from(subscription.group.as_str()),
            subscribed: std::time::Instant::now(),
            topics: by_name.clone(),
        };
        let consumer: Consumer_ = config.create_with_context(context).map_err(|e| {
            BusError::Subscribe(format!(
                "cannot create consumer {}: {e}",
                subscription.group
            ))
        })?;
        let topic_names: Vec<&str> = subscription
            .topics
            .iter()
            .map(|t| names[t].as_str())
            .collect();
        // Alone, the loop assigns the partitions itself (asking the broker for them blocks).
        let share = match subscription.membership {
            Membership::Alone(share) => Some(share),
            _ => None,
        };
        let alone = share.is_some();
        if !alone {
            consumer.subscribe(&topic_names).map_err(|e| {
                BusError::Subscribe(format!(
                    "consumer {} cannot subscribe: {e}",
                    subscription.group
                ))
            })?;
        }
        let assign = share.map(|share| Assignment {
            topics: topic_names.iter().map(|t| (*t).to_owned()).collect(),
            share,
            from: subscription
                .resume
                .as_ref()
                .map_or_else(HashMap::new, |resume| {
                    resume
                        .from
                        .iter()
                        .map(|((topic, partition), &next)| {
                            let at = i64::try_from(next).unwrap_or(i64::MAX);
                            ((names[topic].clone(), *partition as i32), at)
                        })
                        .collect()
                }),
        });
        let consumer = Arc::new(consumer);
        let group: Arc<str> = Arc::from(subscription.group.as_str());
        let backoff = Duration::from_millis(settings.redelivery_backoff_ms);
        let run = ConsumerLoop {
            control: KafkaPartitions {
                consumer: consumer.clone(),
                group: group.clone(),
                sink: subscription
                    .resume
                    .map(|resume| (resume.store, by_name.clone())),
            },
            consumer,
            core: ConsumerCore::new(group.clone(), backoff),
            group,
            handler: subscription.handler,
            topics: by_name,
            assign,
            after: subscription.after,
            max_in_flight: settings.consumer_max_in_flight.max(1)
                * settings.partitions.max(1) as usize,
            backoff,
            stop,
            _guard: guard,
            _cluster: cluster,
        }
        .run();
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

/// A (topic name, partition) of the Kafka cluster.
type Key = (String, i32);

/// The Kafka side of the consumer core: stores offsets with `store_offset`, pauses a failed
/// partition's fetching and seeks back for a rewind.
struct KafkaPartitions {
    /// The consumer (shared with the loop, which receives from it).
    consumer: Arc<Consumer_>,
    /// The consumer group, for the logs.
    group: Arc<str>,
    /// Told what is stored, with the topics by name, for a group that keeps its offsets
    /// itself ([`Resume`](super::Resume)).
    sink: Option<(OffsetSink, HashMap<String, Topic>)>,
}

impl KafkaPartitions {
    /// A list holding one partition.
    fn list((topic, partition): &Key) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, *partition);
        list
    }
}

impl PartitionControl for KafkaPartitions {
    type Key = Key;

    fn store(&mut self, key: &Key, last: i64) {
        let (topic, partition) = key;
        // Revoked since the loop last forgot revoked partitions (the rebalance callback runs
        // while the loop polls): its new owner re-reads it, so store nothing.
        if revoked(&self.consumer).contains(key) {
            return;
        }
        if let Some((sink, topics)) = &self.sink {
            if let (Some(&topic), Ok(partition)) = (topics.get(topic), u32::try_from(*partition)) {
                sink(
                    topic,
                    partition,
                    u64::try_from(last).unwrap_or_default() + 1,
                );
            }
            return;
        }
        if let Err(error) = self.consumer.store_offset(topic, *partition, last) {
            tracing::debug!(group = %self.group, topic, partition, last, %error, "offset not stored");
        }
    }

    fn pause(&mut self, key: &Key) {
        // Fetching stops meanwhile; records of the partition fetched before are dropped by
        // the loop while the core says it is paused.
        if let Err(error) = self.consumer.pause(&Self::list(key)) {
            tracing::debug!(group = %self.group, ?key, %error, "cannot pause the partition");
        }
    }

    fn rewind(&mut self, key: &Key, from: i64) -> BoxFuture<'_, bool> {
        let consumer = self.consumer.clone();
        let (topic, partition) = key.clone();
        let list = Self::list(key);
        let key = key.clone();
        async move {
            // Seeking blocks: off the async threads.
            let sought = tokio::task::spawn_blocking(move || {
                consumer.seek(
                    &topic,
                    partition,
                    Offset::Offset(from),
                    Duration::from_secs(5),
                )
            })
            .await;
            if !matches!(sought, Ok(Ok(()))) {
                tracing::warn!(group = %self.group, ?key, from, ?sought, "cannot seek back");
                return false;
            }
            if let Err(error) = self.consumer.resume(&list) {
                tracing::warn!(group = %self.group, ?key, %error, "cannot resume the partition");
                return false;
            }
            true
        }
        .boxed()
    }
}

/// The revoked partitions the loop has not forgotten yet.
fn revoked(consumer: &Consumer_) -> std::sync::MutexGuard<'_, Vec<Key>> {
    consumer
        .context()
        .revoked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// One subscription's consumer: receives records, hands them to the handler through the core.
struct ConsumerLoop {
    /// Declared first: fields drop in order, so the consumer closes while the embedded
    /// cluster (below) is still up.
    consumer: Arc<Consumer_>,
    /// Stores, pauses and rewinds for the core.
    control: KafkaPartitions,
    /// In-flight tracking, rewind and drain.
    core: ConsumerCore<Key>,
    /// The consumer group.
    group: Arc<str>,
    /// Called for every record.
    handler: super::RecordHandler,
    /// Topic names → topics.
    topics: HashMap<String, Topic>,
    /// For a consumer alone ([`Membership::Alone`]): the partitions it assigns itself before
    /// it receives.
    assign: Option<Assignment>,
    /// Receiving waits until it turns true ([`Subscription::after`]); a group joins meanwhile,
    /// and takes its assignment at the first receive.
    after: Option<tokio::sync::watch::Receiver<bool>>,
    /// Records in flight at most, over every partition: receiving waits above it.
    max_in_flight: usize,
    /// Pause after a consumer error.
    backoff: Duration,
    /// Turns true when the subscription stops.
    stop: tokio::sync::watch::Receiver<bool>,
    /// Tells the subscription handle when this consumer is gone.
    _guard: super::ConsumerGuard,
    /// The embedded cluster, kept alive until the consumer is closed.
    _cluster: Option<Arc<EmbeddedCluster>>,
}

impl ConsumerLoop {
    async fn run(mut self) {
        // A handle of our own to receive from: a received message borrows it while `self`
        // is changed.
        let consumer = self.consumer.clone();
        let assigned = match self.assign.take() {
            Some(topics) => self.assign_all(topics).await,
            None => true,
        };
        let after = self.after.take();
        if !assigned || !super::opened(after, &mut self.stop).await {
            drop(consumer);
            return self.close().await;
        }
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            self.forget_revoked();
            let room = self.core.in_flight() < self.max_in_flight;
            tokio::select! {
                _ = self.stop.changed() => break,
                _ = report.tick() => self.report(),
                () = self.core.turn(&mut self.control) => {}
                received = consumer.recv(), if room => match received {
                    Ok(message) => self.dispatch(&message),
                    Err(error) => {
                        tracing::warn!(group = %self.group, %error, "Kafka consumer error");
                        tokio::time::sleep(self.backoff).await;
                    }
                },
            }
        }
        drop(consumer);
        self.close().await;
    }

    /// Sets the records in flight of every partition the consumer handed records of, for
    /// `/metrics` (the lag comes from librdkafka's statistics, see [`GroupContext`]).
    fn report(&self) {
        for ((name, partition), in_flight) in self.core.partitions_pending() {
            let (Some(topic), Ok(partition)) = (self.topics.get(name), u32::try_from(*partition))
            else {
                continue;
            };
            record::consumer_partition(&self.group, topic.suffix(), partition, None, in_flight);
        }
    }

    /// Assigns every partition of the topics, asking the broker again until it answers; false
    /// when the subscription stopped first.
    async fn assign_all(&mut self, assignment: Assignment) -> bool {
        let assignment = Arc::new(assignment);
        let since = std::time::Instant::now();
        loop {
            let consumer = self.consumer.clone();
            let assignment = assignment.clone();
            // Reading metadata blocks: off the async threads.
            let assigned =
                tokio::task::spawn_blocking(move || assign_every_partition(&consumer, &assignment))
                    .await
                    .unwrap_or_else(|e| Err(format!("the assigning task failed: {e}")));
            match assigned {
                Ok(partitions) => {
                    let context = self.consumer.context();
                    context
                        .assigned
                        .store(true, std::sync::atomic::Ordering::Release);
                    tracing::info!(
                        group = %self.group,
                        partitions,
                        seconds = since.elapsed().as_secs_f64(),
                        "consumer group has its partitions"
                    );
                    return true;
                }
                Err(error) => {
                    tracing::warn!(group = %self.group, %error, "cannot assign the partitions yet");
                    tokio::select! {
                        _ = self.stop.changed() => return false,
                        () = tokio::time::sleep(self.backoff.max(Duration::from_millis(500))) => {}
                    }
                }
            }
        }
    }

    /// Hands a record to the handler, unless its partition is paused (the rewind after the
    /// pause delivers it again).
    fn dispatch(&mut self, message: &BorrowedMessage<'_>) {
        let key = (message.topic().to_owned(), message.partition());
        let offset = message.offset();
        if self.core.is_paused(&key) {
            return;
        }
        let dispatch = match self.topics.get(message.topic()) {
            Some(&topic) => (self.handler)(Delivery {
                record: Arc::new(to_record(topic, message)),
                group: self.group.clone(),
                partition: u32::try_from(message.partition()).unwrap_or_default(),
                offset: u64::try_from(offset).unwrap_or_default(),
            }),
            // Not a topic of the subscription: nothing to do but move past it.
            None => Dispatch::Skip,
        };
        self.core.deliver(&mut self.control, key, offset, dispatch);
    }

    /// Forgets the unfinished work of partitions a rebalance took away: nothing is stored for
    /// them, and one paused after a failure is resumed so that it is fetched if it comes back.
    fn forget_revoked(&mut self) {
        let keys: Vec<Key> = revoked(&self.consumer).drain(..).collect();
        for key in keys {
            if self.core.forget(&key) {
                if let Err(error) = self.consumer.resume(&KafkaPartitions::list(&key)) {
                    tracing::debug!(group = %self.group, ?key, %error, "cannot resume a revoked partition");
                }
            }
        }
    }

    /// Finishes what is in flight (for a bounded time), stores, commits and closes.
    async fn close(mut self) {
        self.core.drain(&mut self.control).await;
        let ConsumerLoop {
            consumer,
            control,
            core,
            group,
            _guard,
            _cluster,
            ..
        } = self;
        // Only `consumer` may hold the consumer now: its last reference must drop in the
        // blocking task below.
        drop(core);
        drop(control);
        // Committing and closing block: do both off the async threads.
        let closed = tokio::task::spawn_blocking(move || {
            if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(%group, %error, "final commit");
            }
            consumer.unsubscribe();
            drop(consumer);
            drop(_cluster);
        })
        .await;
        if let Err(error) = closed {
            tracing::error!(%error, "consumer did not close cleanly");
        }
        drop(_guard);
    }
}

/// The partitions a consumer alone assigns itself.
struct Assignment {
    /// Every partition of these topics in its share.
    topics: Vec<String>,
    /// Which of their partitions.
    share: super::Share,
    /// Where to start by (topic name, partition); from the beginning where not named.
    from: HashMap<(String, i32), i64>,
}

/// Assigns `consumer` every partition of the assignment's topics in its share, each where the
/// assignment says; answers how many.
fn assign_every_partition(consumer: &Consumer_, assignment: &Assignment) -> Result<usize, String> {
    let mut list = TopicPartitionList::new();
    for topic in &assignment.topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| format!("cannot read the partitions of {topic}: {e}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(format!("{topic} has no partitions yet"));
        }
        let shared = partitions
            .into_iter()
            .filter(|&p| u32::try_from(p).is_ok_and(|p| assignment.share.takes(p)));
        for partition in shared {
            let from = match assignment.from.get(&(topic.clone(), partition)) {
                Some(&next) => Offset::Offset(next),
                None => Offset::Beginning,
            };
            list.add_partition_offset(topic, partition, from)
                .map_err(|e| format!("cannot assign {topic}/{partition}: {e}"))?;
        }
    }
    consumer
        .assign(&list)
        .map_err(|e| format!("cannot assign the partitions: {e}"))?;
    Ok(list.count())
}

/// Copies a Kafka message into a [`Record`].
fn to_record(topic: Topic, message: &BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                    (super::headers::name(h.key), value.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic,
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        headers,
        payload: Bytes::copy_from_slice(message.payload().unwrap_or_default()),
    }
}

mod config;
#[cfg(test)]
mod tests;
