//! Traces across processes (W3C Trace Context, level 1): every record of an envelope carries a
//! `traceparent` header naming the case's trace, and the consumer hands the record to its
//! system inside a `message` span carrying that trace id, whose parent is the hop that sent it.
//! One case's path through the systems, whichever processes they run in, is then one trace.
//!
//! The trace id is the envelope's `trace_id`: the intake system makes it a random id of 32
//! lowercase hex digits, which is a W3C trace id as it is. A `trace_id` of another shape (an
//! outside system's) is mapped to one by hashing it — the first 16 bytes of its SHA-256 — so
//! every process derives the same. Each record names the hop that sent it, which the handling
//! span names as its parent: the span the record was made in when spans are exported
//! ([`crate::telemetry`]; the publish carries it, [`crate::port::Hop`]), else a span id of the
//! record's own. Exported, the handling span's OpenTelemetry parent is that hop, so one case's
//! spans are one trace in the collector.
//!
//! The header is optional for outside systems: a record without it, or with one that cannot be
//! read, is handled like any other, its span starting from the envelope's `trace_id` alone. The
//! envelope decides the trace: a `traceparent` of another trace (an outside system's own) is
//! kept on the span as `linked_trace_id`, not followed.

use super::Delivery;
use crate::domain::Envelope;
use crate::port::Hop;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use sha2::{Digest, Sha256};
use std::fmt;
use tracing::field::display;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The version of the `traceparent` format written.
const VERSION: &str = "00";

/// The context a `traceparent` header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace: 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// The span that sent the record: 16 lowercase hex digits, not all zero.
    pub parent_id: String,
    /// The `sampled` flag.
    pub sampled: bool,
}

impl TraceParent {
    /// The header of a record of `envelope` made in the span `hop`: its trace, and `hop` as
    /// the sending hop when it is of that trace (an exported span), else a fresh span id for
    /// this hop. None for an envelope without a trace id (a state snapshot belongs to no
    /// case's path).
    pub fn for_envelope(envelope: &Envelope, hop: Option<&Hop>) -> Option<Self> {
        let trace_id = w3c_trace_id(&envelope.trace_id)?;
        let parent_id = hop
            .filter(|hop| hop.trace_id == trace_id)
            .map_or_else(new_span_id, |hop| hop.span_id.clone());
        Some(Self {
            trace_id,
            parent_id,
            sampled: true,
        })
    }

    /// Reads a `traceparent` value; none when it is not one (W3C Trace Context, level 1: a
    /// version other than `ff`, which for `00` has exactly four fields and for a later version
    /// at least four, a trace id and a parent id of the right length in lowercase hex and not
    /// all zero, two hex digits of flags).
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.trim().split('-');
        let version = fields.next()?;
        let trace_id = fields.next()?;
        let parent_id = fields.next()?;
        let flags = fields.next()?;
        let more = fields.next().is_some();
        let valid = lower_hex(version, 2)
            && version != "ff"
            && !(version == VERSION && more)
            && lower_hex(trace_id, 32)
            && lower_hex(parent_id, 16)
            && lower_hex(flags, 2)
            && !all_zero(trace_id)
            && !all_zero(parent_id);
        let flags = u8::from_str_radix(flags, 16).ok().filter(|_| valid)?;
        Some(Self {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = if self.sampled { "01" } else { "00" };
        write!(f, "{VERSION}-{}-{}-{flags}", self.trace_id, self.parent_id)
    }
}

/// The W3C trace id of an envelope's `trace_id`: itself (in lower case) when it is 32 hex
/// digits, not all zero; else the first 16 bytes of its SHA-256, in hex. None for an empty one.
pub fn w3c_trace_id(trace_id: &str) -> Option<String> {
    if trace_id.is_empty() {
        return None;
    }
    let lower = trace_id.to_ascii_lowercase();
    if lower_hex(&lower, 32) && !all_zero(&lower) {
        return Some(lower);
    }
    let digest = Sha256::digest(trace_id.as_bytes());
    Some(hex::encode(&digest[..16]))
}

/// A random span id: 16 lowercase hex digits, not all zero.
pub fn new_span_id() -> String {
    // A zero id is invalid; the chance of drawing one is 2^-64, but the loop makes it none.
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return format!("{id:016x}");
        }
    }
}

/// The span a consumer hands `envelope`, read from `delivery`, to its system in: the case's
/// trace id, a span id of its own, the sending hop as its parent (when the record's
/// `traceparent` names the same trace), and what names the message and where it was read.
///
/// Exported over OTLP ([`crate::telemetry`]), the span joins the case's trace under the
/// sending hop, and its `span_id` is the exported span's. A record that names no hop of the
/// case's trace (no header, an unreadable one, another trace's, which is linked) has its span
/// put under a hop derived from the message id ([`unseen_hop`]), which no process exports: the
/// span is still in its case's trace, its parent missing, as a sender outside shows.
pub fn handling_span(delivery: &Delivery, envelope: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "message",
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
        linked_trace_id = tracing::field::Empty,
        case_id = %envelope.case_id,
        message_id = %envelope.id,
        kind = %envelope.kind,
        target = %envelope.target,
        group = %delivery.group,
        topic = %delivery.record.topic,
        partition = delivery.partition,
        offset = delivery.offset,
    );
    // Below the `info` level (`simulate` logs at `warn`) the span is not made: nothing to fill.
    if span.is_disabled() {
        return span;
    }
    let trace_id = w3c_trace_id(&envelope.trace_id).unwrap_or_default();
    span.record("trace_id", display(&trace_id));
    let header = delivery.record.header(super::headers::TRACEPARENT);
    let parsed = header.map(|value| (value, TraceParent::parse(value)));
    let parent_id = match &parsed {
        Some((_, Some(parent))) if parent.trace_id == trace_id => {
            span.record("parent_span_id", display(&parent.parent_id));
            parent.parent_id.clone()
        }
        Some((_, Some(other))) => {
            span.record("linked_trace_id", display(&other.trace_id));
            if let Some(linked) = span_context(&other.trace_id, &other.parent_id) {
                span.add_link(linked);
            }
            unseen_hop(envelope.id.as_str())
        }
        None | Some((_, None)) => unseen_hop(envelope.id.as_str()),
    };
    // Before the span is first entered, which starts it: its parent is fixed then. Without the
    // OTLP layer there is nothing to join, and the error says only that.
    if let Some(parent) = span_context(&trace_id, &parent_id) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    let exported = span.context().span().span_context().clone();
    let span_id = if exported.is_valid() {
        exported.span_id().to_string()
    } else {
        new_span_id()
    };
    span.record("span_id", display(span_id));
    if let Some((value, None)) = parsed {
        let _inside = span.enter();
        tracing::debug!(
            traceparent = value,
            "the record's traceparent cannot be read; the span starts from the envelope's trace id"
        );
    }
    span
}

/// The span `span_id` of the trace `trace_id` in another process (remote, sampled), as
/// OpenTelemetry knows it; none unless both ids are valid hex.
fn span_context(trace_id: &str, span_id: &str) -> Option<SpanContext> {
    let context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// The span id standing for the unseen hop that sent the message `message_id`: the first 8
/// bytes of its SHA-256, in hex, the same in every process; never all zero.
pub fn unseen_hop(message_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"hop:")
        .chain_update(message_id.as_bytes())
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    // A zero id is invalid; the chance of one is 2^-64, and the last bit makes it none.
    id[7] |= u8::from(id == [0; 8]);
    hex::encode(id)
}

/// Whether `text` is `len` lowercase hex digits.
fn lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `hex` is all zeros.
fn all_zero(hex: &str) -> bool {
    hex.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    #[test]
    fn a_header_reads_back_as_it_was_written() {
        let written = TraceParent {
            trace_id: TRACE.into(),
            parent_id: PARENT.into(),
            sampled: true,
        };

        let text = written.to_string();

        assert_eq!(text, format!("00-{TRACE}-{PARENT}-01"));
        assert_eq!(TraceParent::parse(&text), Some(written));
    }

    #[test]
    fn a_later_version_may_carry_more_fields_and_unsampled_is_read() {
        let parsed = TraceParent::parse(&format!("01-{TRACE}-{PARENT}-00-what-comes-next"));

        assert_eq!(parsed.map(|p| p.sampled), Some(false));
    }

    #[test]
    fn what_is_not_a_traceparent_is_refused() {
        let zero_trace = "0".repeat(32);
        let zero_parent = "0".repeat(16);
        let upper = TRACE.to_uppercase();
        for bad in [
            String::new(),
            "garbage".into(),
            format!("00-{TRACE}-{PARENT}"),
            format!("00-{TRACE}-{PARENT}-01-extra"),
            format!("ff-{TRACE}-{PARENT}-01"),
            format!("00-{zero_trace}-{PARENT}-01"),
            format!("00-{TRACE}-{zero_parent}-01"),
            format!("00-{upper}-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-0g"),
            format!("00-{}-{PARENT}-01", &TRACE[1..]),
        ] {
            assert_eq!(TraceParent::parse(&bad), None, "`{bad}` was read");
        }
    }

    #[test]
    fn the_intake_systems_trace_ids_are_w3c_trace_ids_as_they_are() {
        let id = uuid::Uuid::new_v4().simple().to_string();

        assert_eq!(w3c_trace_id(&id), Some(id));
    }

    #[test]
    fn any_other_trace_id_maps_to_the_same_w3c_trace_id_everywhere() {
        let mapped = w3c_trace_id("t-outside").expect("a trace id");

        assert!(lower_hex(&mapped, 32) && !all_zero(&mapped), "{mapped}");
        assert_eq!(w3c_trace_id("t-outside").as_deref(), Some(mapped.as_str()));
        assert_ne!(w3c_trace_id("t-other").as_deref(), Some(mapped.as_str()));
        assert_eq!(w3c_trace_id(""), None);
    }

    #[test]
    fn derived_ids_are_the_sha256_prefixes_every_version_derives() {
        // Pinned to SHA-256 computed apart from this code (Python's hashlib): processes of
        // different versions must derive the same ids for one message and one trace.
        assert_eq!(unseen_hop("msg-0001"), "ca3c5df5cf0a0b9d");
        assert_eq!(
            w3c_trace_id("案件-trace-7").as_deref(),
            Some("72c32507962ae817c4a72e4d49b6f5b0")
        );
    }

    /// What a `message` span of a record with `traceparent` (if any) shows on a line logged
    /// inside it, for an envelope of the trace `TRACE`.
    fn logged_inside_span(traceparent: Option<String>) -> String {
        use crate::bus::bridge::envelope_record;
        use crate::bus::Delivery;
        use crate::domain::{CaseId, EnvelopeHead, MessageId, MessageType, SystemId};
        use std::sync::{Arc, Mutex};
        let envelope = Envelope::new(
            EnvelopeHead {
                id: MessageId::from("c/published"),
                kind: MessageType::ApplicationPublished,
                case_id: CaseId::from_string("c"),
                source: SystemId::Governance("500000".into()),
                target: SystemId::Department("market".into()),
                trace_id: TRACE.into(),
            },
            &serde_json::json!({}),
        );
        let mut record = envelope_record(&envelope);
        record.headers.retain(|(name, _)| name != "traceparent");
        record
            .headers
            .extend(traceparent.map(|v| ("traceparent".into(), v)));
        let delivery = Delivery {
            record: Arc::new(record),
            group: "g".into(),
            partition: 0,
            offset: 7,
        };
        let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let lines = Arc::clone(&lines);
            move || Lines(Arc::clone(&lines))
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = handling_span(&delivery, &envelope);
            let _inside = span.enter();
            tracing::info!("handled");
        });
        let text = lines.lock().map(|l| l.clone()).unwrap_or_default();
        String::from_utf8_lossy(&text).into_owned()
    }

    /// A test log's lines, shared with the subscriber that writes them.
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut lines) = self.0.lock() {
                lines.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_handling_span_continues_the_sending_hop_of_the_same_trace() {
        let logged = logged_inside_span(Some(format!("00-{TRACE}-{PARENT}-01")));

        assert!(logged.contains(&format!("trace_id={TRACE}")), "{logged}");
        assert!(
            logged.contains(&format!("parent_span_id={PARENT}")),
            "{logged}"
        );
        assert!(logged.contains("message_id=c/published"), "{logged}");
    }

    #[test]
    fn another_trace_is_linked_and_a_missing_or_unreadable_header_only_has_no_parent() {
        let other = "0af7651916cd43dd8448eb211c80319c";

        let linked = logged_inside_span(Some(format!("00-{other}-{PARENT}-01")));
        let missing = logged_inside_span(None);
        let unreadable = logged_inside_span(Some("not-a-traceparent".into()));

        assert!(linked.contains(&format!("trace_id={TRACE}")), "{linked}");
        assert!(
            linked.contains(&format!("linked_trace_id={other}")),
            "{linked}"
        );
        assert!(!linked.contains("parent_span_id"), "{linked}");
        for logged in [missing, unreadable] {
            assert!(logged.contains(&format!("trace_id={TRACE}")), "{logged}");
            assert!(logged.contains("handled"), "{logged}");
            assert!(!logged.contains("parent_span_id"), "{logged}");
        }
    }

    #[test]
    fn a_record_names_the_span_it_was_made_in_when_that_span_is_of_its_trace() {
        use crate::domain::{CaseId, EnvelopeHead, MessageId, MessageType, SystemId};
        let envelope = Envelope::new(
            EnvelopeHead {
                id: MessageId::from("c/accepted"),
                kind: MessageType::ApplicationAccepted,
                case_id: CaseId::from_string("c"),
                source: SystemId::Department("market".into()),
                target: SystemId::Intake,
                trace_id: TRACE.into(),
            },
            &serde_json::json!({}),
        );
        let hop = |trace_id: &str| Hop {
            trace_id: trace_id.into(),
            span_id: PARENT.into(),
        };

        let same = TraceParent::for_envelope(&envelope, Some(&hop(TRACE)));
        let other = TraceParent::for_envelope(&envelope, Some(&hop(&"1".repeat(32))));
        let none = TraceParent::for_envelope(&envelope, None);

        assert_eq!(same.map(|p| p.parent_id).as_deref(), Some(PARENT));
        for header in [other, none] {
            let header = header.expect("the envelope is of a trace");
            assert_eq!(header.trace_id, TRACE);
            assert_ne!(header.parent_id, PARENT);
        }
    }

    #[test]
    fn the_unseen_hop_of_a_message_is_the_same_everywhere_and_valid() {
        let hop = unseen_hop("c/published");

        assert!(lower_hex(&hop, 16) && !all_zero(&hop), "{hop}");
        assert_eq!(unseen_hop("c/published"), hop);
        assert_ne!(unseen_hop("c/accepted"), hop);
    }

    #[test]
    fn every_hop_gets_a_span_id_of_its_own() {
        let ids: std::collections::HashSet<String> = (0..100).map(|_| new_span_id()).collect();

        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|id| lower_hex(id, 16) && !all_zero(id)));
    }
}
