//! Raw rdkafka clients, written without govfusion's bus code, to check the topics as an outside
//! system sees them and to write what an outside system would write.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long one broker request, or reading a topic to its end, may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// One record as read from a topic.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Full topic name.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Key, as text.
    pub key: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl RawRecord {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Its case id (the key), `type` and `id` headers, for the checks of [`super::once`].
    pub fn sent(&self) -> super::once::Sent<'_> {
        let header = |name| self.header(name).unwrap_or_default();
        (&self.key, header("type"), header("id"))
    }

    /// The payload as JSON; panics when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("payload is not JSON ({e}): {self:?}"))
    }
}

/// A producer configured as `docs/asyncapi.yaml` asks of outside systems: idempotent, with the
/// Java client's murmur2 partitioner, so that its records of a case join govfusion's partition.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()
        .expect("Failed to create a raw producer")
}

/// Writes one record and waits for the broker's acknowledgement; returns (partition, offset).
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> (i32, i64) {
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (name, value) in headers {
        owned = owned.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    let record = FutureRecord::to(topic)
        .key(key)
        .payload(payload)
        .headers(owned);
    let delivery = producer
        .send(record, TIMEOUT)
        .await
        .unwrap_or_else(|(e, _)| panic!("the broker refused a raw record on {topic}: {e}"));
    (delivery.partition, delivery.offset)
}

/// Every record on `topics` right now, sorted by topic, partition and offset.
pub async fn read_topics(brokers: &str, topics: &[String]) -> Vec<RawRecord> {
    let brokers = brokers.to_owned();
    let topics = topics.to_vec();
    // The client blocks: keep it off the test's actix thread, where the service runs too.
    tokio::task::spawn_blocking(move || read_topics_blocking(&brokers, &topics))
        .await
        .expect("reading the topics panicked")
}

/// How long reading past the high watermarks must find nothing before a topic counts as read:
/// several of the reader's fetch waits ([`FETCH_WAIT`]). A fetch at a partition's high
/// watermark is held by the broker for the whole wait even when a record lies past it.
const QUIET: Duration = Duration::from_millis(600);

/// The reader's `fetch.wait.max.ms`.
const FETCH_WAIT: &str = "50";

/// Reads every partition of `topics` from its low to its high watermark, then asks for the
/// watermarks again and reads on until they show nothing more, then reads past them until
/// [`QUIET`] brings nothing: a broker may report a high watermark that lags a record it already
/// holds and hands to a consumer (tansu did, right after a freeze; and under load it set a
/// partition's high watermark one short after a batch of two records, until the next write),
/// and the records a test checks were all written before it reads.
fn read_topics_blocking(brokers: &str, topics: &[String]) -> Vec<RawRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", FETCH_WAIT)
        .create()
        .expect("Failed to create a raw reader");
    let deadline = Instant::now() + TIMEOUT;
    let mut next: HashMap<(String, i32), i64> = HashMap::new();
    let mut records = Vec::new();
    loop {
        let ends = unread_ends(&consumer, topics, &next);
        if !ends.is_empty() {
            read_to(&consumer, topics, ends, &mut next, &mut records, deadline);
            continue;
        }
        if !read_past_ends(&consumer, topics, &mut next, &mut records) {
            break;
        }
    }
    records
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    records
}

/// How many partitions `topic` has (none when the broker does not know it).
fn partitions(consumer: &BaseConsumer, topic: &str) -> i32 {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .unwrap_or_else(|e| panic!("no metadata for topic {topic}: {e}"));
    let count = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    i32::try_from(count).expect("a partition count fits an i32")
}

/// The partitions of `topics` holding records past `next` (or past their low watermark when
/// not read yet), with where to start and their high watermark.
fn unread_ends(
    consumer: &BaseConsumer,
    topics: &[String],
    next: &HashMap<(String, i32), i64>,
) -> HashMap<(String, i32), (i64, i64)> {
    let mut ends = HashMap::new();
    for topic in topics {
        let partitions = partitions(consumer, topic);
        assert!(partitions > 0, "topic {topic} has no partitions");
        for partition in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .unwrap_or_else(|e| panic!("no watermarks for {topic}/{partition}: {e}"));
            let key = (topic.clone(), partition);
            let from = next.get(&key).copied().unwrap_or(low).max(low);
            if high > from {
                ends.insert(key, (from, high));
            }
        }
    }
    ends
}

/// Reads each partition of `ends` from its start to its end, recording where it stopped.
fn read_to(
    consumer: &BaseConsumer,
    topics: &[String],
    ends: HashMap<(String, i32), (i64, i64)>,
    next: &mut HashMap<(String, i32), i64>,
    records: &mut Vec<RawRecord>,
    deadline: Instant,
) {
    let mut assignment = TopicPartitionList::new();
    for ((topic, partition), (from, _)) in &ends {
        assignment
            .add_partition_offset(topic, *partition, Offset::Offset(*from))
            .expect("a valid partition");
    }
    consumer
        .assign(&assignment)
        .expect("Failed to assign partitions");
    let mut ends: HashMap<(String, i32), i64> =
        ends.into_iter().map(|(key, (_, end))| (key, end)).collect();
    while !ends.is_empty() {
        assert!(
            Instant::now() < deadline,
            "gave up after {TIMEOUT:?} reading {topics:?}; partitions not read to the end: {ends:?}"
        );
        let Some(received) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = received.unwrap_or_else(|e| panic!("reading {topics:?} failed: {e}"));
        let key = (message.topic().to_owned(), message.partition());
        let after = message.offset() + 1;
        if next.get(&key).is_some_and(|&read| after <= read) {
            // Read in an earlier round already.
            continue;
        }
        next.insert(key.clone(), after);
        if ends.get(&key).is_some_and(|end| after >= *end) {
            ends.remove(&key);
        }
        records.push(to_raw(&message));
    }
}

/// Reads every partition of `topics` from where [`read_to`] stopped (or its start) until
/// [`QUIET`] passes without a record: the records a lagging high watermark hides. Answers
/// whether it found any.
fn read_past_ends(
    consumer: &BaseConsumer,
    topics: &[String],
    next: &mut HashMap<(String, i32), i64>,
    records: &mut Vec<RawRecord>,
) -> bool {
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..partitions(consumer, topic) {
            let from = next
                .get(&(topic.clone(), partition))
                .map_or(Offset::Beginning, |&at| Offset::Offset(at));
            assignment
                .add_partition_offset(topic, partition, from)
                .expect("a valid partition");
        }
    }
    consumer
        .assign(&assignment)
        .expect("Failed to assign partitions");
    let mut found = false;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < QUIET {
        // Past the end a broker may answer "offset out of range": nothing there, then.
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let key = (message.topic().to_owned(), message.partition());
        let after = message.offset() + 1;
        if next.get(&key).is_some_and(|&read| after <= read) {
            continue;
        }
        next.insert(key, after);
        records.push(to_raw(&message));
        found = true;
        quiet_since = Instant::now();
    }
    found
}

/// Copies a message.
pub fn to_raw(message: &impl Message) -> RawRecord {
    let text =
        |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), text(h.value)))
                .collect()
        })
        .unwrap_or_default();
    RawRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: text(message.key()),
        headers,
        payload: message.payload().unwrap_or_default().to_vec(),
    }
}

/// Whether consumer group `group` has committed every record now on `topics`: `Ok` when on
/// every partition holding records its committed offset is the end of the partition, else
/// `Err` naming the partitions behind.
pub async fn group_caught_up(brokers: &str, group: &str, topics: &[String]) -> Result<(), String> {
    let (brokers, group, topics) = (brokers.to_owned(), group.to_owned(), topics.to_vec());
    // The client blocks: keep it off the test's async threads.
    tokio::task::spawn_blocking(move || group_caught_up_blocking(&brokers, &group, &topics))
        .await
        .expect("reading the committed offsets panicked")
}

fn group_caught_up_blocking(brokers: &str, group: &str, topics: &[String]) -> Result<(), String> {
    // A client that names the group but never joins it: it only asks for its offsets.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("no client for group {group}: {e}"))?;
    let mut ends = HashMap::new();
    let mut wanted = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(|e| format!("no metadata for topic {topic}: {e}"))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        for partition in 0..partitions as i32 {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .map_err(|e| format!("no watermarks for {topic}/{partition}: {e}"))?;
            if high > low {
                wanted.add_partition(topic, partition);
                ends.insert((topic.clone(), partition), high);
            }
        }
    }
    let committed = consumer
        .committed_offsets(wanted, TIMEOUT)
        .map_err(|e| format!("no committed offsets of group {group}: {e}"))?;
    let behind: Vec<String> = committed
        .elements()
        .iter()
        .filter_map(|element| {
            let end = ends[&(element.topic().to_owned(), element.partition())];
            match element.offset() {
                Offset::Offset(at) if at >= end => None,
                at => Some(format!(
                    "{}/{}: committed {at:?} of {end}",
                    element.topic(),
                    element.partition()
                )),
            }
        })
        .collect();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(format!("group {group} behind on {behind:?}"))
    }
}
