//! The Kafka bus (rdkafka).
//!
//! Producer: idempotent (`enable.idempotence=true`: acks=all, and per-partition order kept
//! through librdkafka's own retries; with `bus.kafka.idempotence = false`, acks=all and one
//! request in flight per connection keep the order instead), batching by `linger.ms` /
//! `batch.num.messages` with compression, keys hashed with `murmur2_random` (the Java client's
//! partitioner, so other systems producing keyed records agree on partitions). A publish
//! enqueues its records in order and resolves when the broker acknowledged all of them; a record
//! that fails (broker away, timeout) fails the publish, and the bridge sends the whole batch
//! again in order (consumers drop the repeats by message id). A record that can never be
//! written (over `message.max.bytes` — set from `bus.max_record_bytes` — or the broker's limit,
//! or invalid) does not hold the others: they are written and the publish names it
//! ([`BusError::Refused`]), for the bridge to dead-letter. A publish hands its records to
//! librdkafka before it returns (so the bridge may keep several on their way, in order); on a
//! full local queue it fails at once, and the bridge sends it again when what is in flight was
//! answered.
//!
//! Consumers: see [`super::kafka_consumer`] — at least once, offsets stored only after a record
//! (and every one before it on its partition) was handled.

use super::embedded::EmbeddedCluster;
use super::kafka_consumer::GroupConsumer;
use super::{Bus, BusError, EndOffsets, Record, Refusal, Subscription, SubscriptionHandle, Topic};
use crate::settings::{AuditSettings, BusKind, BusSettings, KafkaSettings};
use futures::future::BoxFuture;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The producer and the generation it belongs to.
#[derive(Clone)]
struct Producer_ {
    producer: FutureProducer,
    generation: u64,
}

/// The Kafka bus: one producer for the process, one consumer per subscription.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// The process's producer; replaced when librdkafka declares it unusable (see
    /// [`KafkaBus::producer_failed`]).
    producer: std::sync::RwLock<Producer_>,
    /// Settings the consumers are built from.
    settings: BusSettings,
    /// The bootstrap servers actually used.
    brokers: String,
    /// Full topic names.
    names: HashMap<Topic, String>,
    /// The mock cluster, for the embedded kind. Consumers hold it too: it must outlive them,
    /// or closing a consumer waits forever for a broker that is gone.
    embedded: Option<Arc<EmbeddedCluster>>,
}

impl KafkaBus {
    /// Connects to the cluster of `settings` (starting the mock cluster for the embedded kind)
    /// and creates missing topics.
    pub async fn connect(settings: &BusSettings) -> Result<Self, BusError> {
        Self::connect_with_audit(settings, &AuditSettings::default()).await
    }

    /// Like [`connect`](Self::connect), creating a missing audit topic with the retention of
    /// `audit`.
    pub async fn connect_with_audit(
        settings: &BusSettings,
        audit: &AuditSettings,
    ) -> Result<Self, BusError> {
        let names: HashMap<Topic, String> = Topic::ALL
            .iter()
            .map(|t| (*t, t.name(&settings.topic_prefix)))
            .collect();
        let partitions = i32::try_from(settings.partitions).unwrap_or(i32::MAX);
        let (brokers, embedded) = match settings.kind {
            BusKind::Embedded => {
                let cluster = EmbeddedCluster::start(names.values().cloned().collect(), partitions)
                    .map_err(BusError::Subscribe)?;
                (
                    cluster.bootstrap_servers().to_owned(),
                    Some(Arc::new(cluster)),
                )
            }
            _ => (settings.brokers.clone(), None),
        };
        let producer: FutureProducer = producer_config(settings, &brokers)?
            .create()
            .map_err(|e| BusError::Publish(format!("cannot create the Kafka producer: {e}")))?;
        if embedded.is_none() && settings.kafka.create_topics {
            create_topics(settings, audit, &brokers, &names).await?;
        }
        tracing::info!(%brokers, kind = ?settings.kind, "connected to Kafka");
        Ok(Self {
            inner: Arc::new(Inner {
                producer: std::sync::RwLock::new(Producer_ {
                    producer,
                    generation: 0,
                }),
                settings: settings.clone(),
                brokers,
                names,
                embedded,
            }),
        })
    }

    /// The bootstrap servers in use (the mock cluster's for the embedded kind).
    pub fn brokers(&self) -> &str {
        &self.inner.brokers
    }

    /// The embedded mock cluster, for fault injection.
    pub fn embedded(&self) -> Option<&EmbeddedCluster> {
        self.inner.embedded.as_deref()
    }

    /// Full name of `topic`.
    pub fn topic_name(&self, topic: Topic) -> &str {
        &self.inner.names[&topic]
    }

    /// Waits until every produced record is acknowledged, or the timeout passes.
    pub async fn flush(&self) {
        let producer = self.inner.producer().producer;
        let timeout = Duration::from_millis(self.inner.settings.kafka.flush_timeout_ms);
        let flushed = tokio::task::spawn_blocking(move || {
            let result = producer.flush(timeout);
            (result, producer.in_flight_count())
        })
        .await;
        match flushed {
            Ok((Ok(()), _)) => tracing::info!("Kafka producer flushed"),
            Ok((Err(error), left)) => {
                tracing::error!(%error, records_left = left, "Kafka producer not fully flushed")
            }
            Err(error) => tracing::error!(%error, "Kafka producer flush did not run"),
        }
    }
}

impl Inner {
    /// The current producer.
    fn producer(&self) -> Producer_ {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a failed delivery: if librdkafka declared the producer of `generation` unusable
    /// (a fatal error, e.g. the idempotent producer fenced after a broker came back from a long
    /// silence), replaces it with a new one. The failed records are sent again by the bridge,
    /// through the new producer, with the same message ids.
    fn producer_failed(&self, generation: u64, error: &KafkaError) {
        let current = self.producer();
        if current.generation != generation {
            return;
        }
        let fenced = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
        );
        let fatal = current.producer.client().fatal_error();
        if !fenced && fatal.is_none() {
            return;
        }
        let created = producer_config(&self.settings, &self.brokers)
            .map_err(|e| e.to_string())
            .and_then(|config| config.create::<FutureProducer>().map_err(|e| e.to_string()));
        match created {
            Ok(producer) => {
                tracing::error!(%error, ?fatal, "the Kafka producer is unusable; replaced by a new one");
                let mut slot = self.producer.write().unwrap_or_else(|e| e.into_inner());
                if slot.generation == generation {
                    *slot = Producer_ {
                        producer,
                        generation: generation + 1,
                    };
                }
            }
            Err(create) => {
                tracing::error!(%error, %create, "the Kafka producer is unusable and cannot be replaced yet")
            }
        }
    }
}

/// Sets `[bus.kafka.options]` on `config`, with the SASL password read from its source (an
/// environment variable or a file are read again for every client, so a rotated secret is used
/// by the next one).
pub(super) fn set_options(config: &mut ClientConfig, kafka: &KafkaSettings) -> Result<(), String> {
    let options = kafka
        .client_options()
        .map_err(|problem| format!("cannot read the Kafka SASL password: {problem}"))?;
    for (key, value) in &options {
        config.set(key, value);
    }
    Ok(())
}

/// The producer's configuration; fails when the SASL password cannot be read.
pub fn producer_config(settings: &BusSettings, brokers: &str) -> Result<ClientConfig, BusError> {
    let kafka = &settings.kafka;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", kafka.idempotence.to_string())
        .set("linger.ms", kafka.linger_ms.to_string())
        .set("batch.num.messages", kafka.batch_num_messages.to_string())
        .set("compression.type", &kafka.compression)
        .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
        // A record over the limit is refused here, before it reaches a broker, and is
        // dead-lettered by the bridge instead of blocking the records behind it.
        .set("message.max.bytes", settings.max_record_bytes.to_string())
        .set("partitioner", "murmur2_random");
    if kafka.idempotence {
        // A failure that could leave a gap in a partition (a later record written, an earlier
        // one not) turns the producer fatal instead: every record after it fails too, and the
        // bridge sends them again, in order, through a new producer.
        config.set("enable.gapless.guarantee", "true");
    } else {
        // Without the broker's sequence numbers only one request in flight per connection keeps
        // a partition's order through retries.
        config
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "1");
    }
    set_options(&mut config, kafka).map_err(BusError::Publish)?;
    Ok(config)
}

/// Hands one record to librdkafka. A full local queue is an error like any other here: the
/// bridge keeps fewer records in flight than the queue holds, and sends the batch again once
/// what is on its way was answered.
fn enqueue(
    inner: &Inner,
    producer: &FutureProducer,
    record: &Record,
) -> Result<DeliveryFuture, KafkaError> {
    let topic = &inner.names[&record.topic];
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let future_record = FutureRecord::to(topic)
        .key(record.key.as_bytes())
        .payload(record.payload.as_ref())
        .headers(headers);
    producer
        .send_result(future_record)
        .map_err(|(error, _)| error)
}

/// Whether `error` says this record can never be written, however often it is sent: too large
/// for the producer's `message.max.bytes` or the broker's limit, or invalid. Anything else (a
/// broker away, a timeout, a full queue) may pass on a later try.
fn refused_for_good(error: &KafkaError) -> bool {
    too_large(error)
        || matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::InvalidMessage
                    | RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::BadMessage
            )
        )
}

/// Whether librdkafka or the broker refused a record for its size.
fn too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
        )
    )
}

async fn create_topics(
    settings: &BusSettings,
    audit: &AuditSettings,
    brokers: &str,
    names: &HashMap<Topic, String>,
) -> Result<(), BusError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    set_options(&mut config, &settings.kafka).map_err(BusError::Subscribe)?;
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| BusError::Subscribe(format!("cannot create the Kafka admin client: {e}")))?;
    let partitions = i32::try_from(settings.partitions).unwrap_or(i32::MAX);
    // The state topic keeps the latest snapshot per key. The flow topics keep a record for
    // `bus.flow_retention_hours`: departments and centres keep only open work (their state on
    // the state topic) and remember a closed case for as long, so a message older than that
    // can no longer be delivered to them. The audit trail is append-only and kept as long as
    // the law asks (`audit.retention_days`).
    let audit_retention = audit.retention_ms().to_string();
    let flow_retention = settings.flow_retention_ms().to_string();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|(topic, name)| {
            let new = NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(settings.kafka.replication_factor),
            );
            match topic {
                Topic::State => new.set("cleanup.policy", "compact"),
                Topic::DeadLetters => new,
                Topic::Audit => new
                    .set("cleanup.policy", "delete")
                    .set("retention.ms", &audit_retention),
                _ => new
                    .set("cleanup.policy", "delete")
                    .set("retention.ms", &flow_retention),
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(|e| BusError::Subscribe(format!("cannot create topics at {brokers}: {e}")))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, partitions, "topic created"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic exists")
            }
            Err((name, code)) => {
                return Err(BusError::Subscribe(format!(
                    "cannot create topic {name}: {code}"
                )))
            }
        }
    }
    Ok(())
}

impl Bus for KafkaBus {
    fn partitioner(&self) -> super::Partitioner {
        super::Partitioner::Murmur2
    }

    fn outlives_process(&self) -> bool {
        self.inner.embedded.is_none()
    }

    fn end_offsets(&self, topics: Vec<Topic>) -> BoxFuture<'static, Result<EndOffsets, BusError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let producer = inner.producer().producer;
                let client = producer.client();
                let timeout = Duration::from_secs(10);
                let mut ends = HashMap::new();
                for topic in topics {
                    let name = &inner.names[&topic];
                    let metadata = client
                        .fetch_metadata(Some(name), timeout)
                        .map_err(|e| BusError::Offsets(format!("{name}: {e}")))?;
                    let partitions = metadata
                        .topics()
                        .iter()
                        .find(|t| t.name() == name)
                        .map(|t| t.partitions().len())
                        .unwrap_or(0);
                    for partition in 0..partitions {
                        let partition = i32::try_from(partition).unwrap_or(i32::MAX);
                        let (_, high) = client
                            .fetch_watermarks(name, partition, timeout)
                            .map_err(|e| BusError::Offsets(format!("{name}/{partition}: {e}")))?;
                        ends.insert(
                            (topic, u32::try_from(partition).unwrap_or(0)),
                            u64::try_from(high).unwrap_or(0),
                        );
                    }
                }
                Ok(ends)
            })
            .await
            .map_err(|e| BusError::Offsets(format!("the offsets lookup stopped: {e}")))?
        })
    }

    fn keeps_order_in_flight(&self) -> bool {
        // The idempotent producer keeps each partition's order through its retries, and with
        // `enable.gapless.guarantee` a record that fails fails every later one (the producer
        // turns fatal and is replaced). Without it, only one request in flight keeps the order.
        self.inner.settings.kafka.idempotence
    }

    fn publish(&self, records: Vec<Arc<Record>>) -> BoxFuture<'static, Result<(), BusError>> {
        let Producer_ {
            producer,
            generation,
        } = self.inner.producer();
        let mut deliveries = Vec::with_capacity(records.len());
        let mut refused = Vec::new();
        for (index, record) in records.iter().enumerate() {
            match enqueue(&self.inner, &producer, record) {
                Ok(delivery) => deliveries.push((index, delivery)),
                Err(error) if refused_for_good(&error) => refused.push(Refusal {
                    index,
                    reason: error.to_string(),
                    too_large: too_large(&error),
                }),
                Err(error) => {
                    self.inner.producer_failed(generation, &error);
                    let failed = BusError::Publish(format!("cannot enqueue record: {error}"));
                    return Box::pin(std::future::ready(Err(failed)));
                }
            }
        }
        let inner = self.inner.clone();
        Box::pin(async move {
            for (index, delivery) in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) if refused_for_good(&error) => refused.push(Refusal {
                        index,
                        reason: error.to_string(),
                        too_large: too_large(&error),
                    }),
                    Ok(Err((error, _))) => {
                        inner.producer_failed(generation, &error);
                        return Err(BusError::Publish(format!(
                            "broker did not take record: {error}"
                        )));
                    }
                    Err(_) => return Err(BusError::Publish("producer shut down".into())),
                }
            }
            if refused.is_empty() {
                return Ok(());
            }
            refused.sort_by_key(|r| r.index);
            Err(BusError::Refused(refused))
        })
    }

    fn subscribe(&self, subscription: Subscription) -> Result<SubscriptionHandle, BusError> {
        GroupConsumer::start(
            &self.inner.settings,
            &self.inner.brokers,
            &self.inner.names,
            self.inner.embedded.clone(),
            subscription,
        )
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        let bus = self.clone();
        Box::pin(async move { bus.flush().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Settings, DEFAULT_CONFIG};

    fn shipped_bus_settings() -> BusSettings {
        Settings::from_toml(DEFAULT_CONFIG, "default", false)
            .expect("the default config is valid")
            .bus
    }

    #[test]
    fn the_shipped_producer_is_idempotent() {
        let config = producer_config(&shipped_bus_settings(), "h1:9092").unwrap();
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("max.in.flight.requests.per.connection"), None);
    }

    #[test]
    fn the_producer_refuses_records_over_the_configured_limit() {
        let mut settings = shipped_bus_settings();
        settings.max_record_bytes = 250_000;
        let config = producer_config(&settings, "h1:9092").unwrap();
        assert_eq!(config.get("message.max.bytes"), Some("250000"));
    }

    #[test]
    fn without_idempotence_one_request_in_flight_keeps_the_order() {
        let mut settings = shipped_bus_settings();
        settings.kafka.idempotence = false;
        let config = producer_config(&settings, "h1:9092").unwrap();
        assert_eq!(config.get("enable.idempotence"), Some("false"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(
            config.get("max.in.flight.requests.per.connection"),
            Some("1")
        );
    }
}
