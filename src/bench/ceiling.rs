//! `govfusion bench --ceiling`: the service's throughput as a share of what raw librdkafka
//! clients reach moving the same records through the same consumer groups on the same broker.
//!
//! A simulation runs first, on topics of its own (a prefix of this run): its throughput is the
//! service's. Then, in the same process and on the same broker, every record it wrote is read
//! back and written again by one raw producer (configured as the service's) to a second set of
//! topics with the same partitions, while raw consumers read them: one per consumer group the
//! service ran, each reading every partition of that group's topics. (On the embedded bus the
//! copies go to a second mock cluster started like the first, which creates topics only when
//! it starts.) The clock runs from the first record produced until every such consumer has
//! read every record of its topics. The run's cases divided by that time is the ceiling: the
//! most cases a second this broker carries with this topology when nothing is done with a
//! record and no hop of a case waits for the one before.

use crate::bus::kafka::{producer_config, KafkaBus};
use crate::bus::{Record, Topic};
use crate::settings::BusSettings;
use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long reading the run back, or one raw consumer reading its topics, may take.
const READ_FOR: Duration = Duration::from_secs(300);

/// One consumer group of the service: its name and the topics it reads.
pub type ConsumerGroup = (String, Vec<Topic>);

/// The measurement.
#[derive(Debug, Clone)]
pub struct CeilingReport {
    /// Cases the simulation completed.
    pub cases: usize,
    /// The simulation's throughput, cases a second.
    pub service_rate: f64,
    /// Records the run wrote, on every topic.
    pub records: usize,
    /// Their payload, key and header bytes.
    pub bytes: usize,
    /// The service's consumer groups.
    pub groups: usize,
    /// Records handed to a consumer: each record once per group reading its topic.
    pub deliveries: usize,
    /// How long the raw clients took to move them.
    pub raw: Duration,
}

impl CeilingReport {
    /// Cases a second the raw clients moved.
    pub fn ceiling_rate(&self) -> f64 {
        self.cases as f64 / self.raw.as_secs_f64().max(f64::EPSILON)
    }

    /// The service's throughput as a share of the ceiling.
    pub fn share(&self) -> f64 {
        self.service_rate / self.ceiling_rate().max(f64::EPSILON)
    }

    fn per_case(&self, n: usize) -> f64 {
        n as f64 / self.cases.max(1) as f64
    }
}

impl std::fmt::Display for CeilingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "topology    {:.1} records a case ({:.1} KB), {} consumer groups, {:.1} deliveries a case",
            self.per_case(self.records),
            self.per_case(self.bytes) / 1000.0,
            self.groups,
            self.per_case(self.deliveries),
        )?;
        writeln!(
            f,
            "ceiling     {:.0} cases/s (raw rdkafka: {} records, {} deliveries in {:.2} s)",
            self.ceiling_rate(),
            self.records,
            self.deliveries,
            self.raw.as_secs_f64()
        )?;
        writeln!(
            f,
            "share       {:.2} (service {:.0} cases/s / ceiling)",
            self.share(),
            self.service_rate
        )
    }
}

/// Moves the records `bus` holds under its prefix through `groups` with raw clients, and
/// compares the time with the service's `service_rate` for `cases`.
pub async fn measure(
    bus: &KafkaBus,
    settings: &BusSettings,
    groups: &[ConsumerGroup],
    cases: usize,
    service_rate: f64,
) -> anyhow::Result<CeilingReport> {
    anyhow::ensure!(
        cases > 0,
        "the simulation completed no case: nothing to compare"
    );
    let brokers = bus.brokers().to_owned();
    let written = {
        let (brokers, prefix) = (brokers.clone(), settings.topic_prefix.clone());
        tokio::task::spawn_blocking(move || read_back(&brokers, &prefix))
            .await
            .context("reading the run back panicked")??
    };
    // The raw copies: topics of their own, with the service's partitions, on the same broker
    // (on the embedded bus, a second mock cluster started alike: the first creates no topic
    // after its start).
    let mut raw_settings = settings.clone();
    raw_settings.topic_prefix = format!("{}-raw", settings.topic_prefix);
    let raw_bus = KafkaBus::connect(&raw_settings)
        .await
        .context("Failed to create the raw topics")?;
    let brokers = raw_bus.brokers().to_owned();
    let producer: FutureProducer = producer_config(&raw_settings, &brokers)?
        .create()
        .context("Failed to create the raw producer")?;

    let mut on_topic: HashMap<Topic, usize> = HashMap::new();
    for record in &written {
        *on_topic.entry(record.topic).or_default() += 1;
    }
    let mut readers = Vec::new();
    let mut deliveries = 0;
    for (group, topics) in groups {
        let expected: usize = topics
            .iter()
            .map(|t| on_topic.get(t).copied().unwrap_or(0))
            .sum();
        deliveries += expected;
        let names: Vec<String> = topics
            .iter()
            .map(|t| raw_bus.topic_name(*t).to_owned())
            .collect();
        let consumer = raw_consumer(&brokers, settings, group, &names)?;
        readers.push(tokio::task::spawn_blocking(move || {
            read_count(&consumer, expected)
        }));
    }
    // Let the consumers fetch their metadata and positions before the clock runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    produce(&producer, &raw_bus, &written).await?;
    for reader in readers {
        reader.await.context("a raw consumer panicked")??;
    }
    let raw = started.elapsed();
    Ok(CeilingReport {
        cases,
        service_rate,
        records: written.len(),
        bytes: written.iter().map(size).sum(),
        groups: groups.len(),
        deliveries,
        raw,
    })
}

/// A record's key, header and payload bytes.
fn size(record: &Record) -> usize {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    record.key.len() + headers + record.payload.len()
}

/// How many partitions `topic` has (none when the broker does not know it).
fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), READ_FOR)
        .with_context(|| format!("no metadata for {topic}"))?;
    let count = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    Ok(i32::try_from(count)?)
}

/// Every record on the topics of `prefix`, read from each partition's start to its end.
fn read_back(brokers: &str, prefix: &str) -> anyhow::Result<Vec<Record>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{prefix}-ceiling-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .context("Failed to create the reader of the run")?;
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    let mut topics: HashMap<String, Topic> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for topic in Topic::ALL {
        let name = topic.name(prefix);
        for partition in 0..partitions(&consumer, &name)? {
            let (low, high) = consumer
                .fetch_watermarks(&name, partition, READ_FOR)
                .with_context(|| format!("no watermarks for {name}/{partition}"))?;
            if high > low {
                ends.insert((name.clone(), partition), high);
                assignment.add_partition_offset(&name, partition, Offset::Offset(low))?;
            }
        }
        topics.insert(name, topic);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + READ_FOR;
    let mut records = Vec::new();
    while !ends.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the run's records not read within {READ_FOR:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("reading the run back failed")?;
        let key = (message.topic().to_owned(), message.partition());
        if ends
            .get(&key)
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&key);
        }
        let text =
            |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (crate::bus::headers::name(h.key), text(h.value)))
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            topic: topics[message.topic()],
            key: text(message.key()),
            headers,
            payload: bytes::Bytes::copy_from_slice(message.payload().unwrap_or_default()),
        });
    }
    Ok(records)
}

/// A raw consumer for the service's group `group`, reading every partition of `topics` from
/// the start with the service's fetch settings (it joins no group, as none of its kind shares
/// the partitions with another).
fn raw_consumer(
    brokers: &str,
    settings: &BusSettings,
    group: &str,
    topics: &[String],
) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{}-raw-{group}", settings.topic_prefix))
        .set("enable.auto.commit", "true")
        .set(
            "fetch.wait.max.ms",
            settings.kafka.fetch_wait_max_ms.to_string(),
        )
        .create()
        .with_context(|| format!("Failed to create the raw consumer of {group}"))?;
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..partitions(&consumer, topic)? {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Polls `consumer` until it has read `expected` records.
fn read_count(consumer: &BaseConsumer, expected: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + READ_FOR;
    let mut read = 0;
    while read < expected {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a raw consumer read {read} of {expected} records in {READ_FOR:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => read += 1,
            Some(Err(error)) => anyhow::bail!("a raw consumer failed: {error}"),
            None => {}
        }
    }
    Ok(())
}

/// Writes `records` to their topics of `bus` with `producer`: every record enqueued, then
/// every delivery awaited.
pub async fn produce(
    producer: &FutureProducer,
    bus: &KafkaBus,
    records: &[Record],
) -> anyhow::Result<()> {
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut future_record = FutureRecord::to(bus.topic_name(record.topic))
            .key(record.key.as_bytes())
            .payload(record.payload.as_ref())
            .headers(headers);
        loop {
            match producer.send_result(future_record) {
                Ok(delivery) => break deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    future_record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((error, _)) => anyhow::bail!("raw producer refused a record: {error}"),
            }
        }
    }
    for delivery in deliveries {
        delivery
            .await
            .context("raw producer shut down")?
            .map_err(|(e, _)| anyhow::anyhow!("raw record not delivered: {e}"))?;
    }
    Ok(())
}
