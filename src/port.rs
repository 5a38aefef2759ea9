//! The port between the systems and the bus: what a system is handed ([`Inbound`]), how it
//! says it could not finish it ([`HandleError`]), and how it hands its outputs to the bridge
//! ([`Publish`], [`publish`]).
//!
//! Actors and the bus both depend on this module and on nothing of each other: the bridge
//! delivers `Inbound`s to whatever `Recipient<Inbound>` it was given, and a system publishes
//! through whatever `Recipient<Publish>` it was given.

use crate::domain::{Envelope, MessageType};
use actix::prelude::*;
use std::future::Future;
use std::sync::Arc;

/// An envelope delivered to a system.
#[derive(Message, Clone)]
#[rtype(result = "Result<(), HandleError>")]
pub struct Inbound(pub Arc<Envelope>);

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
pub struct Publish(pub Vec<Envelope>);

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
}

impl PublishError {
    /// A publish the bus did not take this time; sending it again may work.
    pub fn transient(attempts: u32, reason: impl Into<String>) -> Self {
        Self {
            attempts,
            reason: reason.into(),
            permanent: false,
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
pub fn publish(
    bridge: &Recipient<Publish>,
    outputs: Vec<Envelope>,
) -> impl Future<Output = Result<(), HandleError>> + 'static {
    let (snapshots, messages): (Vec<_>, Vec<_>) = outputs
        .into_iter()
        .partition(|e| e.kind == MessageType::StateSnapshot);
    let sent = (!messages.is_empty()).then(|| bridge.send(Publish(messages)));
    let bridge = bridge.clone();
    async move {
        if let Some(request) = sent {
            confirm(request.await)?;
        }
        if !snapshots.is_empty() {
            confirm(bridge.send(Publish(snapshots)).await)?;
        }
        Ok(())
    }
}

fn confirm(sent: Result<Result<(), PublishError>, MailboxError>) -> Result<(), HandleError> {
    match sent {
        Ok(Ok(())) => Ok(()),
        // Handling the message again would produce the same record, refused again: the message
        // goes to dead-letters with the reason, and the records behind it flow on.
        Ok(Err(error)) if error.permanent => Err(HandleError::Poison(error.to_string())),
        Ok(Err(error)) => Err(HandleError::Retry(error.to_string())),
        Err(error) => Err(HandleError::Retry(format!("bridge unavailable: {error}"))),
    }
}
