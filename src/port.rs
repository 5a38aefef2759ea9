//! The port between the systems and the bus: what a system is handed ([`Inbound`]), how it
//! says it could not finish it ([`HandleError`]), and how it hands its outputs to the bridge:
//! [`publish`] for the outputs of a bus message (whose redelivery retries them), and
//! [`send_until_taken`] for what nothing redelivers (a person's act, a submission, the intake
//! feed), which it sends again by itself until the bus takes it or refuses it for good.
//!
//! Actors and the bus both depend on this module and on nothing of each other: the bridge
//! delivers `Inbound`s to whatever `Recipient<Inbound>` it was given, and a system publishes
//! through whatever `Recipient<Publish>` it was given.

use crate::domain::{Envelope, MessageType};
use actix::prelude::*;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// An envelope delivered to a system, and the span its handling belongs under.
#[derive(Message, Clone)]
#[rtype(result = "Result<(), HandleError>")]
pub struct Inbound(
    /// The envelope.
    pub Arc<Envelope>,
    /// The parent of the system's handler span: the consumer's `message` span of the record
    /// ([`crate::bus::trace::handling_span`]). The handler runs in its actor's task, where that
    /// span is not current, so it travels with the message.
    pub tracing::Span,
);

impl Inbound {
    /// `envelope`, to be handled under the caller's current span.
    pub fn new(envelope: Arc<Envelope>) -> Self {
        Self(envelope, tracing::Span::current())
    }
}

/// Why a system did not finish an [`Inbound`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandleError {
    /// Try again later: the record is delivered again.
    #[error("not handled yet: {0}")]
    Retry(String),
    /// The message can never be handled (e.g. its data does not match its type): it goes to
    /// dead-letters.
    #[error("poison message: {0}")]
    Poison(String),
}

/// Publish envelopes, in order; resolves when all are on the bus.
#[derive(Message)]
#[rtype(result = "Result<(), PublishError>")]
pub struct Publish(
    /// The envelopes, shared with whoever keeps them to send again (see [`publish_shared`]).
    pub Vec<Arc<Envelope>>,
    /// The span they were made in, which their records' `traceparent` names as the sending
    /// hop; none, or one of another trace, and each record names a hop of its own.
    pub Option<Hop>,
);

impl Publish {
    /// `envelopes`, sent from the caller's current span.
    pub fn new(envelopes: Vec<Envelope>) -> Self {
        Self::shared(shared(envelopes))
    }

    /// `envelopes` kept by the caller as well, sent from the caller's current span.
    pub fn shared(envelopes: Vec<Arc<Envelope>>) -> Self {
        Self(envelopes, Hop::current())
    }
}

/// `envelopes`, each behind an `Arc`: sent again, or kept to be, without a copy.
pub fn shared(envelopes: Vec<Envelope>) -> Vec<Arc<Envelope>> {
    envelopes.into_iter().map(Arc::new).collect()
}

/// A span as OpenTelemetry exports it: its trace id and span id, in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The trace: 32 hex digits.
    pub trace_id: String,
    /// The span: 16 hex digits.
    pub span_id: String,
}

impl Hop {
    /// The current span, when it is exported (the OTLP layer is installed and the span is on);
    /// none otherwise.
    pub fn current() -> Option<Self> {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let span = tracing::Span::current();
        if span.is_none() {
            return None;
        }
        let context = span.context();
        let exported = context.span().span_context().clone();
        exported.is_valid().then(|| Self {
            trace_id: exported.trace_id().to_string(),
            span_id: exported.span_id().to_string(),
        })
    }
}

/// Why a publish did not reach the bus.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct PublishError {
    /// Sends tried.
    pub attempts: u32,
    /// The last error.
    pub reason: String,
    /// The bus can never take a record of this publish (too large, invalid): it was
    /// dead-lettered, and sending the publish again cannot help. The other records of the
    /// publish are on the bus.
    pub permanent: bool,
    /// With `permanent`: the bus refused the record for its size, so the sender can make it
    /// smaller.
    pub too_large: bool,
}

impl PublishError {
    /// A publish the bus did not take this time; sending it again may work.
    pub fn transient(attempts: u32, reason: impl Into<String>) -> Self {
        Self {
            attempts,
            reason: reason.into(),
            permanent: false,
            too_large: false,
        }
    }

    fn describe(&self) -> String {
        if self.permanent {
            format!("the bus refused a record for good: {}", self.reason)
        } else {
            format!(
                "publish failed after {} attempts: {}",
                self.attempts, self.reason
            )
        }
    }
}

/// Sends `outputs` through the bridge. The publish is queued when this is called (so a
/// handler's outputs keep the order of the handlers); the future tells whether it got through.
/// State snapshots among them are sent only once every other output is on the bus, so a
/// snapshot never records an effect whose messages could still be lost.
///
/// A message the bus refused for good is no such message: it is in dead-letters and will not be
/// sent again, while the state change that produced it stays. The snapshots are sent all the
/// same, and the refusal is returned after them (the inbound message becomes poison), so that
/// a restart does not lose the change along with the message.
pub fn publish(
    bridge: &Recipient<Publish>,
    outputs: Vec<Envelope>,
) -> impl Future<Output = Result<(), HandleError>> + 'static {
    publish_shared(bridge, shared(outputs))
}

/// [`publish`] for outputs the caller keeps as well (to send them again if this fails): the
/// bridge reads the same envelopes, no copy is made.
pub fn publish_shared(
    bridge: &Recipient<Publish>,
    outputs: Vec<Arc<Envelope>>,
) -> impl Future<Output = Result<(), HandleError>> + 'static {
    let sent = send_outputs(bridge, outputs);
    async move { sent.await.map_err(HandleError::from) }
}

/// [`publish`], reporting how the bus answered rather than what to do with an inbound message.
fn send_outputs(
    bridge: &Recipient<Publish>,
    outputs: Vec<Arc<Envelope>>,
) -> impl Future<Output = Result<(), PublishError>> + 'static {
    let (snapshots, messages): (Vec<_>, Vec<_>) = outputs
        .into_iter()
        .partition(|e| e.kind == MessageType::StateSnapshot);
    // The first publish is queued now: the messages, or the snapshots when there is nothing
    // else for them to wait for.
    let (first, snapshots) = match (messages.is_empty(), snapshots.is_empty()) {
        (false, _) => (Some(bridge.send(Publish::shared(messages))), snapshots),
        (true, false) => (Some(bridge.send(Publish(snapshots, None))), Vec::new()),
        (true, true) => (None, Vec::new()),
    };
    let bridge = bridge.clone();
    async move {
        let first = match first {
            Some(request) => answered(request.await),
            None => Ok(()),
        };
        match first {
            // Not on the bus yet: a snapshot now could record an effect that is then lost.
            Err(error) if !error.permanent => return Err(error),
            Ok(()) | Err(_) => {}
        }
        if !snapshots.is_empty() {
            answered(bridge.send(Publish(snapshots, None)).await)?;
        }
        first
    }
}

/// The bridge's answer, with a bridge that is gone counted as a bus that did not take it.
fn answered(sent: Result<Result<(), PublishError>, MailboxError>) -> Result<(), PublishError> {
    sent.unwrap_or_else(|error| {
        Err(PublishError::transient(
            1,
            format!("bridge unavailable: {error}"),
        ))
    })
}

impl From<PublishError> for HandleError {
    fn from(error: PublishError) -> Self {
        if error.permanent {
            // Handling the message again would produce the same record, refused again: the
            // message goes to dead-letters with the reason, and the records behind it flow on.
            HandleError::Poison(error.to_string())
        } else {
            HandleError::Retry(error.to_string())
        }
    }
}

/// How long [`send_until_taken`] waits before its first resend. The bridge already retried the
/// publish with backoff before it gave up, so this only paces the rounds.
const RESEND_FIRST: Duration = Duration::from_millis(500);

/// The longest wait between two rounds of [`send_until_taken`]: the bus is away, and a round
/// every few seconds notices its return soon enough without flooding the log.
const RESEND_MAX: Duration = Duration::from_secs(5);

/// How [`send_until_taken`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Every output is on the bus.
    Taken,
    /// The bus refused one of them for good: it is in dead-letters. The others, snapshots
    /// included, are on the bus.
    Refused(Refusal),
}

/// Where what a person asked for (an act, a submission) stands when they are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// On the bus: it survives this process.
    OnBus,
    /// Not on the bus within the time the person waits: it is kept and sent until the bus
    /// takes it.
    NotYet,
    /// The bus refused it for good: it is in dead-letters and will not be sent again.
    Refused(Refusal),
}

impl From<Sent> for Delivery {
    fn from(sent: Sent) -> Self {
        match sent {
            Sent::Taken => Delivery::OnBus,
            Sent::Refused(refusal) => Delivery::Refused(refusal),
        }
    }
}

/// A record the bus refused for good, as a person is told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, as the bus said it.
    pub reason: String,
    /// Whether it was the record's size: the sender can make it smaller.
    pub too_large: bool,
}

/// Sends `outputs` (as [`publish`] does: snapshots last) until the bus takes them, sending the
/// same envelopes (same ids) again after a transient failure, waiting longer each round up to
/// [`RESEND_MAX`]. Ends only when they are on the bus, or when the bus refused one for good:
/// sending it again would be refused again. The first round is queued when this is called.
///
/// This is how what no redelivery will bring back is sent: a person's act, a submission, the
/// applications the city centre takes from the intake feed.
pub fn send_until_taken(
    bridge: &Recipient<Publish>,
    outputs: Vec<Envelope>,
) -> impl Future<Output = Sent> + 'static {
    let outputs = shared(outputs);
    let first = send_outputs(bridge, outputs.clone());
    let bridge = bridge.clone();
    async move {
        let mut sent = first.await;
        let mut wait = RESEND_FIRST;
        loop {
            match sent {
                Ok(()) => return Sent::Taken,
                Err(error) if error.permanent => {
                    return Sent::Refused(Refusal {
                        reason: error.reason,
                        too_large: error.too_large,
                    })
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "not on the bus yet; sending again");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RESEND_MAX);
            sent = send_outputs(&bridge, outputs.clone()).await;
        }
    }
}

/// A bridge for tests of the systems: it refuses what it is told to refuse and keeps the ids of
/// what it takes.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Publish, PublishError};
    use crate::domain::MessageType;
    use actix::prelude::*;
    use std::sync::{Arc, Mutex};

    /// What it says when it refuses for good: what the in-memory bus says of a record too large.
    pub(crate) const REFUSAL: &str = "record of 1200000 bytes exceeds the bus's limit of 1000000";

    /// Refuses the first `transient` publishes for now, then the next `for_good` for good (as
    /// too large), and takes the rest.
    pub(crate) struct FakeBridge {
        /// Publishes still to refuse for now.
        pub transient: u32,
        /// Publishes still to refuse for good after those (`u32::MAX`: every one).
        pub for_good: u32,
        /// Whether a publish of snapshots alone is taken even while refusing for good.
        pub takes_snapshots: bool,
        /// The ids of the envelopes taken, in order.
        pub taken: Arc<Mutex<Vec<String>>>,
    }

    impl FakeBridge {
        /// One that takes every publish.
        pub(crate) fn taking_all() -> Self {
            Self {
                transient: 0,
                for_good: 0,
                takes_snapshots: false,
                taken: Arc::default(),
            }
        }
    }

    impl Actor for FakeBridge {
        type Context = Context<Self>;
    }

    impl Handler<Publish> for FakeBridge {
        type Result = Result<(), PublishError>;

        fn handle(&mut self, msg: Publish, _: &mut Self::Context) -> Self::Result {
            if self.transient > 0 {
                self.transient -= 1;
                return Err(PublishError::transient(1, "the bus is away"));
            }
            let snapshots = msg.0.iter().all(|e| e.kind == MessageType::StateSnapshot);
            if self.for_good > 0 && !(snapshots && self.takes_snapshots) {
                self.for_good = self
                    .for_good
                    .saturating_sub(u32::from(self.for_good != u32::MAX));
                return Err(PublishError {
                    attempts: 1,
                    reason: REFUSAL.into(),
                    permanent: true,
                    too_large: true,
                });
            }
            let ids = msg.0.into_iter().map(|e| e.id.to_string());
            self.taken.lock().expect("not poisoned").extend(ids);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeBridge;
    use super::*;
    use crate::domain::{CaseId, EnvelopeHead, MessageId, SystemId};
    use chrono::Utc;
    use std::sync::Mutex;

    /// A message and the snapshot that follows it, about case `c1`.
    fn outputs() -> Vec<Envelope> {
        [
            ("c1/approval", MessageType::ApprovalPublished),
            ("c1/state#1", MessageType::StateSnapshot),
        ]
        .into_iter()
        .map(|(id, kind)| {
            let head = EnvelopeHead {
                id: MessageId::from_string(id),
                kind,
                case_id: CaseId::from_string("c1"),
                source: SystemId::Intake,
                target: SystemId::Intake,
                trace_id: String::new(),
            };
            Envelope::new_at(head, &(), Utc::now())
        })
        .collect()
    }

    /// A bridge as described by [`FakeBridge`], and what it takes.
    fn bridge(
        transient: u32,
        refuse_messages: bool,
    ) -> (Recipient<Publish>, Arc<Mutex<Vec<String>>>) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let bridge = FakeBridge {
            transient,
            for_good: if refuse_messages { u32::MAX } else { 0 },
            takes_snapshots: true,
            taken: taken.clone(),
        };
        (bridge.start().recipient(), taken)
    }

    #[actix_rt::test]
    async fn a_message_refused_for_good_is_poison_and_its_snapshot_is_still_written() {
        // Arrange
        let (bridge, taken) = bridge(0, true);

        // Act
        let published = publish(&bridge, outputs()).await;

        // Assert: the state change the message came from survives a restart.
        assert!(
            matches!(&published, Err(HandleError::Poison(m)) if m.contains(testing::REFUSAL)),
            "{published:?}"
        );
        assert_eq!(*taken.lock().expect("not poisoned"), ["c1/state#1"]);
    }

    #[actix_rt::test]
    async fn sending_until_taken_sends_again_what_the_bus_did_not_take() {
        // Arrange
        let (bridge, taken) = bridge(1, false);

        // Act
        let sent = send_until_taken(&bridge, outputs()).await;

        // Assert
        assert_eq!(sent, Sent::Taken);
        assert_eq!(
            *taken.lock().expect("not poisoned"),
            ["c1/approval", "c1/state#1"]
        );
    }

    #[actix_rt::test]
    async fn snapshots_with_no_message_to_wait_for_are_queued_when_published() {
        // Arrange
        let (bridge, taken) = bridge(0, false);
        let [message, snapshot]: [Envelope; 2] = outputs().try_into().expect("two outputs");

        // Act: the snapshot published first, the message after it, the message awaited first.
        let snapshot_sent = publish(&bridge, vec![snapshot]);
        let message_sent = publish(&bridge, vec![message]);
        let message_sent = message_sent.await;
        let snapshot_sent = snapshot_sent.await;

        // Assert: on the bus in the order they were published.
        assert!(message_sent.is_ok() && snapshot_sent.is_ok());
        assert_eq!(
            *taken.lock().expect("not poisoned"),
            ["c1/state#1", "c1/approval"]
        );
    }

    #[actix_rt::test]
    async fn sending_until_taken_ends_on_a_refusal_for_good_saying_why() {
        // Arrange
        let (bridge, taken) = bridge(0, true);

        // Act
        let sent = send_until_taken(&bridge, outputs()).await;

        // Assert: not sent again; the snapshot is on the bus.
        let Sent::Refused(refusal) = sent else {
            panic!("refused for good, not {sent:?}");
        };
        assert_eq!(refusal.reason, testing::REFUSAL);
        assert!(refusal.too_large);
        assert_eq!(*taken.lock().expect("not poisoned"), ["c1/state#1"]);
    }
}
