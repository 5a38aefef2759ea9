//! The one builder of dead letters, so that every dead letter carries the same `dlq.*` headers
//! whichever way its record failed: unreadable or poisoned when consumed, or refused by the bus
//! when published (or when its own dead letter was).

use crate::bus::{headers, record_size, Delivery, HeaderName, Record, Topic};

/// Whether a dead letter carries its record's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    /// The record's bytes, key and every header: the whole record, for a person to inspect.
    Kept,
    /// Left out, because the bus could not take it (or a letter carrying it): the letter keeps
    /// the key and routing headers and says in `dlq.size` how big the record was.
    LeftOut,
}

/// The dead letter of `original`: why (`reason`), the topic it was read from or meant for,
/// where it was consumed (when `consumed` names the delivery) and, per `payload`, its bytes or
/// its size.
pub(super) fn dead_letter(
    original: &Record,
    reason: &str,
    consumed: Option<&Delivery>,
    payload: Payload,
) -> Record {
    let mut headers: Vec<(HeaderName, String)> = match payload {
        Payload::Kept => original.headers.clone(),
        // The routing headers are small and name the record; the others could be what made it
        // too large.
        Payload::LeftOut => original
            .headers
            .iter()
            .filter(|(k, _)| ROUTING.contains(&k.as_ref()))
            .cloned()
            .collect(),
    };
    headers.push((headers::DLQ_ERROR.into(), reason.to_owned()));
    headers.push((
        headers::DLQ_TOPIC.into(),
        original.topic.suffix().to_owned(),
    ));
    if let Some(delivery) = consumed {
        headers.extend([
            (
                headers::DLQ_PARTITION.into(),
                delivery.partition.to_string(),
            ),
            (headers::DLQ_OFFSET.into(), delivery.offset.to_string()),
            (headers::DLQ_GROUP.into(), delivery.group.to_string()),
        ]);
    }
    let payload = match payload {
        Payload::Kept => original.payload.clone(),
        Payload::LeftOut => {
            headers.push((headers::DLQ_SIZE.into(), record_size(original).to_string()));
            bytes::Bytes::new()
        }
    };
    Record {
        topic: Topic::DeadLetters,
        key: original.key.clone(),
        headers,
        payload,
    }
}

/// The headers a payload-less dead letter keeps: they name the record and where it was going.
const ROUTING: [&str; 4] = [
    headers::ID,
    headers::TYPE,
    headers::TARGET,
    headers::TRACE_ID,
];
