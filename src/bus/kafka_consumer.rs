//! A consumer group's consumer on Kafka, at least once.
//!
//! `enable.auto.commit=true` with `enable.auto.offset.store=false`: librdkafka commits in the
//! background only offsets we stored, and we store a partition's offset only when its record and
//! every record before it on that partition was handled (see [`PartitionOffsets`]). A failed
//! handler makes the partition seek back to its lowest unfinished record, so it and the records
//! after it are delivered again. Partitions taken away by a rebalance are forgotten: their unfinished
//! records are not stored, and the consumer that gets the partition reads them again. On stop the
//! consumer waits (bounded) for unfinished records, stores, commits synchronously and closes —
//! the blocking calls off the async threads.

use super::embedded::EmbeddedCluster;
use super::offsets::PartitionOffsets;
use super::{
    BusError, Delivery, Dispatch, HandlerFailed, Record, Subscription, SubscriptionHandle, Topic,
};
use crate::settings::BusSettings;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Remembers partitions revoked by rebalances until the consumer loop forgets their work, and
/// raises the subscription's `assigned` flag at the first assignment.
pub struct GroupContext {
    revoked: Mutex<Vec<(String, i32)>>,
    assigned: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.assigned
                .store(true, std::sync::atomic::Ordering::Release);
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

/// A handled (or failed) record: where it was, which generation, and how it went.
type Completion = ((String, i32), i64, u64, Result<(), HandlerFailed>);

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
        let kafka = &settings.kafka;
        let fetch_wait_max_ms = match settings.kind {
            crate::settings::BusKind::Embedded => kafka.fetch_wait_max_ms.min(5),
            _ => kafka.fetch_wait_max_ms,
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("group.id", &subscription.group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                kafka.heartbeat_interval_ms.to_string(),
            )
            .set("partition.assignment.strategy", &kafka.assignment_strategy)
            .set("fetch.wait.max.ms", fetch_wait_max_ms.to_string());
        for (key, value) in &kafka.options {
            config.set(key, value);
        }
        let (handle, stop, guard) = SubscriptionHandle::new(&subscription.group);
        let context = GroupContext {
            revoked: Mutex::default(),
            assigned: handle.assigned_flag(),
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
        consumer.subscribe(&topic_names).map_err(|e| {
            BusError::Subscribe(format!(
                "consumer {} cannot subscribe: {e}",
                subscription.group
            ))
        })?;
        let by_name: HashMap<String, Topic> = names.iter().map(|(t, n)| (n.clone(), *t)).collect();
        let run = ConsumerLoop {
            consumer: Arc::new(consumer),
            group: Arc::from(subscription.group.as_str()),
            handler: subscription.handler,
            topics: by_name,
            max_in_flight: settings.consumer_max_in_flight.max(1)
                * settings.partitions.max(1) as usize,
            backoff: Duration::from_millis(settings.redelivery_backoff_ms),
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

struct ConsumerLoop {
    /// Declared first: fields drop in order, so the consumer closes while the embedded
    /// cluster (below) is still up.
    consumer: Arc<Consumer_>,
    group: Arc<str>,
    handler: super::RecordHandler,
    topics: HashMap<String, Topic>,
    max_in_flight: usize,
    backoff: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
    _guard: super::ConsumerGuard,
    /// The embedded cluster, kept alive until the consumer is closed.
    _cluster: Option<Arc<EmbeddedCluster>>,
}

impl ConsumerLoop {
    async fn run(mut self) {
        let mut partitions: HashMap<(String, i32), PartitionOffsets> = HashMap::new();
        let mut in_flight: FuturesUnordered<BoxFuture<'static, Completion>> =
            FuturesUnordered::new();
        loop {
            self.forget_revoked(&mut partitions);
            tokio::select! {
                _ = self.stop.changed() => break,
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    self.complete(&mut partitions, done).await;
                }
                received = self.consumer.recv(), if in_flight.len() < self.max_in_flight => {
                    match received {
                        Ok(message) => {
                            if let Some(handling) = self.dispatch(&mut partitions, &message) {
                                in_flight.push(handling);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(group = %self.group, %error, "Kafka consumer error");
                            tokio::time::sleep(self.backoff).await;
                        }
                    }
                }
            }
        }
        self.close(partitions, in_flight).await;
    }

    /// Hands a record to the handler; returns its completion future unless it was skipped.
    fn dispatch(
        &self,
        partitions: &mut HashMap<(String, i32), PartitionOffsets>,
        message: &BorrowedMessage<'_>,
    ) -> Option<BoxFuture<'static, Completion>> {
        let key = (message.topic().to_owned(), message.partition());
        let offset = message.offset();
        let track = partitions.entry(key.clone()).or_default();
        let generation = track.generation();
        let Some(&topic) = self.topics.get(message.topic()) else {
            track.delivered(offset, true);
            return None;
        };
        let record = Arc::new(to_record(topic, message));
        let delivery = Delivery {
            record,
            group: self.group.clone(),
            partition: u32::try_from(message.partition()).unwrap_or_default(),
            offset: u64::try_from(offset).unwrap_or_default(),
        };
        match (self.handler)(delivery) {
            Dispatch::Skip => {
                track.delivered(offset, true);
                if let Some(last) = track.take_finished() {
                    self.store(&key, last);
                }
                None
            }
            Dispatch::Handle(handled) => {
                track.delivered(offset, false);
                Some(
                    handled
                        .map(move |result| (key, offset, generation, result))
                        .boxed(),
                )
            }
        }
    }

    async fn complete(
        &self,
        partitions: &mut HashMap<(String, i32), PartitionOffsets>,
        (key, offset, generation, result): Completion,
    ) {
        let Some(track) = partitions.get_mut(&key) else {
            return;
        };
        match result {
            Ok(()) => {
                if let Some(last) = track.finished(offset, generation) {
                    self.store(&key, last);
                }
            }
            Err(error) if generation == track.generation() => {
                tracing::warn!(group = %self.group, topic = %key.0, partition = key.1, offset, %error,
                    "handler failed; the record will be delivered again");
                // Go back to the lowest unfinished record (the failed one or an earlier one still
                // running, whose outcome the rewind forgets), so nothing is skipped.
                let from = track
                    .first_unfinished()
                    .map_or(offset, |first| first.min(offset));
                track.rewind();
                tokio::time::sleep(self.backoff).await;
                let consumer = self.consumer.clone();
                let (topic, partition) = key.clone();
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
                    tracing::error!(group = %self.group, topic = %key.0, partition = key.1, offset, ?sought,
                        "cannot seek back; the record is delivered again after the next restart or rebalance");
                }
            }
            Err(_) => {}
        }
    }

    fn store(&self, (topic, partition): &(String, i32), offset: i64) {
        if let Err(error) = self.consumer.store_offset(topic, *partition, offset) {
            // Happens when the partition was just revoked: its new owner re-reads it.
            tracing::debug!(group = %self.group, topic, partition, offset, %error, "offset not stored");
        }
    }

    fn forget_revoked(&self, partitions: &mut HashMap<(String, i32), PartitionOffsets>) {
        let revoked: Vec<_> = {
            let mut revoked = self
                .consumer
                .context()
                .revoked
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            revoked.drain(..).collect()
        };
        for key in revoked {
            // Keep the tracker, rewound: its new generation makes completions of records
            // handed out before the revocation count for nothing if the partition comes back.
            if let Some(track) = partitions.get_mut(&key) {
                track.rewind();
            }
        }
    }

    /// Finishes what is in flight (for a bounded time), stores, commits and closes.
    async fn close(
        self,
        mut partitions: HashMap<(String, i32), PartitionOffsets>,
        mut in_flight: FuturesUnordered<BoxFuture<'static, Completion>>,
    ) {
        let drain = async {
            while let Some(done) = in_flight.next().await {
                self.complete(&mut partitions, done).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            tracing::warn!(group = %self.group, "records still unfinished at shutdown; they will be delivered again");
        }
        let ConsumerLoop {
            consumer,
            group,
            _guard,
            _cluster,
            ..
        } = self;
        // Committing and closing block: do both off the async threads, and make sure the last
        // reference to the consumer is dropped there too.
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

/// Copies a Kafka message into a [`Record`].
fn to_record(topic: Topic, message: &BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                    (h.key.to_owned(), value.into_owned())
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
