//! One function per thing that happens, called where it happens. Before [`super::install`]
//! (a library user that never serves `/metrics`), each is a no-op of the `metrics` facade.

use super::names;
use crate::domain::{Channel, Decision, MessageType};
use crate::maps::{Map, SharedMap};
use metrics::{counter, gauge, histogram, Counter};
use std::time::Duration;

/// An HTTP request was answered with `status` after `elapsed`; `route` is the pattern it
/// matched (`/api/v1/cases/{case_id}`), never the path itself.
pub fn http_request(method: &'static str, route: String, status: u16, elapsed: Duration) {
    let status = status_label(status);
    counter!(names::HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!(names::HTTP_DURATION, "method" => method, "route" => route, "status" => status)
        .record(elapsed.as_secs_f64());
}

/// The intake system took an application submitted at a terminal of `channel`.
pub fn case_submitted(channel: Channel) {
    let channel = match channel {
        Channel::Pc => "pc",
        Channel::App => "app",
        Channel::Kiosk => "kiosk",
    };
    counter!(names::CASES_SUBMITTED, "channel" => channel).increment(1);
}

/// A case completed with `decision`, `elapsed` after its submission.
pub fn case_completed(decision: Decision, elapsed: Duration) {
    let outcome = match decision {
        Decision::Approved => "approved",
        Decision::Rejected => "rejected",
    };
    counter!(names::CASES_COMPLETED, "outcome" => outcome).increment(1);
    histogram!(names::CASE_DURATION, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// A case failed: its application was not handed on.
pub fn case_failed() {
    counter!(names::CASES_FAILED).increment(1);
}

/// What became of a bus message at a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handled {
    /// Finished: its offset may be committed.
    Done,
    /// Not finished: it is delivered again.
    Failed,
    /// Unreadable or refused: written to dead-letters.
    DeadLettered,
}

/// A bus message of type `kind` (the record's `type` header) reached `system` and was
/// `handled`. A type this version does not know is counted as `unknown`, so that a stranger
/// on the bus cannot make up label values.
pub fn message(system: &str, kind: Option<&str>, handled: Handled) {
    let kind = type_label(kind);
    let make = || {
        let name = match handled {
            Handled::Done => names::MESSAGES_HANDLED,
            Handled::Failed => names::MESSAGES_FAILED,
            Handled::DeadLettered => names::MESSAGES_DEAD_LETTERED,
        };
        counter!(name, "system" => system.to_owned(), "type" => kind)
    };
    if !super::installed() {
        make().increment(1);
        return;
    }
    let key = (handled, kind);
    if let Some(counter) = MESSAGE_COUNTERS
        .get(&key)
        .and_then(|c| c.get(system).cloned())
    {
        counter.increment(1);
        return;
    }
    let counter = make();
    counter.increment(1);
    MESSAGE_COUNTERS
        .entry(key)
        .or_default()
        .insert(system.into(), counter);
}

/// The counters of handled messages, by what became of them and their type, then by system,
/// kept once made while this module's recorder is installed. Every delivery is counted, and
/// making the counter's key each time (its labels, their hash, the registry's look-up) cost
/// more than the count. The keys are bounded: the systems are the process's own, and a type
/// this version does not know is `unknown`.
static MESSAGE_COUNTERS: std::sync::LazyLock<MessageCounters> =
    std::sync::LazyLock::new(SharedMap::default);

/// Counters by what became of a message and its type label, then by system.
type MessageCounters = SharedMap<(Handled, &'static str), Map<Box<str>, Counter>>;

/// `system` got a message it had already handled (redelivered, or published twice).
pub fn repeated(system: String, kind: MessageType) {
    counter!(names::MESSAGES_REPEATED, "system" => system, "type" => kind.as_str()).increment(1);
}

/// The bridge holds `records` queued for their batch.
pub fn bridge_queued(records: usize) {
    gauge!(names::BRIDGE_QUEUED).set(records as f64);
}

/// The bridge got a batch of `records` onto the bus (all of them, or all but those it
/// refused), or gave up on it, `elapsed` after its first send.
pub fn bridge_batch(records: usize, elapsed: Duration) {
    histogram!(names::BRIDGE_BATCH_RECORDS).record(records as f64);
    histogram!(names::BRIDGE_SEND_DURATION).record(elapsed.as_secs_f64());
}

/// A batch send failed and is tried again.
pub fn bridge_retry() {
    counter!(names::BRIDGE_RETRIES).increment(1);
}

/// A batch failed for good.
pub fn bridge_failed_batch() {
    counter!(names::BRIDGE_FAILED_BATCHES).increment(1);
}

/// The bus refused `records` for good.
pub fn bridge_refused(records: usize) {
    counter!(names::BRIDGE_REFUSED).increment(records as u64);
}

/// Where a consumer group stands on one partition: `lag` records not committed (when the bus
/// can tell), `in_flight` handed out and not finished.
pub fn consumer_partition(
    group: &str,
    topic: &'static str,
    partition: u32,
    lag: Option<u64>,
    in_flight: usize,
) {
    let partition = partition.to_string();
    if let Some(lag) = lag {
        consumer_lag_labelled(group, topic, partition.clone(), lag);
    }
    gauge!(names::CONSUMER_IN_FLIGHT, "group" => group.to_owned(), "topic" => topic,
        "partition" => partition)
    .set(in_flight as f64);
}

/// A consumer group's partition lags `lag` records behind its end (Kafka's statistics).
pub fn consumer_lag(group: &str, topic: &'static str, partition: u32, lag: u64) {
    consumer_lag_labelled(group, topic, partition.to_string(), lag);
}

fn consumer_lag_labelled(group: &str, topic: &'static str, partition: String, lag: u64) {
    gauge!(names::CONSUMER_LAG, "group" => group.to_owned(), "topic" => topic,
        "partition" => partition)
    .set(lag as f64);
}

/// A consumer group starts: its rewinds are exported from 0.
pub fn consumer_started(group: &str) {
    counter!(names::CONSUMER_REWINDS, "group" => group.to_owned()).increment(0);
}

/// A consumer group rewound a partition after a failed handler.
pub fn consumer_rewind(group: &str) {
    counter!(names::CONSUMER_REWINDS, "group" => group.to_owned()).increment(1);
}

/// The label of a message type header: its name when this version knows it.
fn type_label(kind: Option<&str>) -> &'static str {
    use serde::de::{value::StrDeserializer, Deserialize};
    kind.and_then(|k| {
        MessageType::deserialize(StrDeserializer::<serde::de::value::Error>::new(k)).ok()
    })
    .map_or("unknown", MessageType::as_str)
}

/// The statuses this service answers, each its own label; any other falls into its class.
const STATUSES: [(u16, &str); 18] = [
    (200, "200"),
    (201, "201"),
    (202, "202"),
    (204, "204"),
    (304, "304"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (503, "503"),
];

/// An HTTP status as a label, without formatting one for each request.
fn status_label(status: u16) -> &'static str {
    match STATUSES.iter().find(|(code, _)| *code == status) {
        Some((_, label)) => label,
        None => match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_this_version_does_not_know_is_one_label() {
        assert_eq!(type_label(Some("approval.published")), "approval.published");
        assert_eq!(type_label(Some("made.up.by.a.stranger")), "unknown");
        assert_eq!(type_label(None), "unknown");
    }

    #[test]
    fn every_status_is_a_bounded_label() {
        assert_eq!(status_label(422), "422");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(0), "5xx");
    }
}
