//! Header names every govfusion record carries (besides the key, which is the case id).

/// A record header's name: most are one of the names below, which a record shares instead
/// of copying.
pub type HeaderName = std::borrow::Cow<'static, str>;

/// The envelope's message id.
pub const ID: &str = "id";
/// The envelope's type.
pub const TYPE: &str = "type";
/// The envelope's target system.
pub const TARGET: &str = "target";
/// The envelope's trace id.
pub const TRACE_ID: &str = "trace_id";
/// The trace context, W3C Trace Context (`00-<trace id>-<span id>-<flags>`); see
/// [`super::trace`]. Optional on records of outside systems.
pub const TRACEPARENT: &str = "traceparent";
/// On a dead letter: why it could not be handled.
pub const DLQ_ERROR: &str = "dlq.error";
/// On a dead letter: the topic it was read from.
pub const DLQ_TOPIC: &str = "dlq.topic";
/// On a dead letter: the partition it was read from.
pub const DLQ_PARTITION: &str = "dlq.partition";
/// On a dead letter: its offset there.
pub const DLQ_OFFSET: &str = "dlq.offset";
/// On a dead letter: the consumer group that could not handle it.
pub const DLQ_GROUP: &str = "dlq.group";
/// On a dead letter without its record's payload (the bus refused the record, or its dead
/// letter with the payload): the record's size in bytes.
pub const DLQ_SIZE: &str = "dlq.size";

/// Every name above.
const KNOWN: [&str; 11] = [
    ID,
    TYPE,
    TARGET,
    TRACE_ID,
    TRACEPARENT,
    DLQ_ERROR,
    DLQ_TOPIC,
    DLQ_PARTITION,
    DLQ_OFFSET,
    DLQ_GROUP,
    DLQ_SIZE,
];

/// A header name read from a broker: one of the names above shares its text, any other
/// is copied.
pub fn name(read: &str) -> HeaderName {
    KNOWN
        .into_iter()
        .find(|known| *known == read)
        .map_or_else(|| read.to_owned().into(), Into::into)
}

#[cfg(test)]
mod tests {
    use super::{self as headers, HeaderName};

    #[test]
    fn a_known_header_name_read_from_a_broker_shares_its_text_and_another_is_copied() {
        let known = headers::name("type");
        assert!(matches!(known, HeaderName::Borrowed(_)), "{known:?}");
        assert_eq!(known.as_ptr(), headers::TYPE.as_ptr());
        let dead_letter = headers::name("dlq.size");
        assert_eq!(dead_letter.as_ptr(), headers::DLQ_SIZE.as_ptr());
        let other = headers::name("x-origin");
        assert!(matches!(other, HeaderName::Owned(_)), "{other:?}");
        assert_eq!(other, "x-origin");
    }
}
