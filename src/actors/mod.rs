//! The systems of the fusion, one actix actor each, one actor per file:
//!
//! * [`terminal::Terminal`] — a PC site, app or kiosk; hands submissions to the intake system.
//! * [`intake::IntakeSystem`] — issues case ids, feeds new applications to the city centre,
//!   follows every case on the bus and answers the applicant's self-query.
//! * [`governance_center::GovernanceCenter`] — one per centre of the three-tier tree; the city
//!   centre publishes applications, splits collaboration requests into events, gathers the
//!   answers and hands approvals back to the intake system; district and street centres route
//!   events down and answers up.
//! * [`department::Department`] — a department's approval system: accepts, checks materials,
//!   asks for collaboration, answers collaboration events, decides (by rule or by staff).
//!
//! Systems reach each other only through the bus (the bridge actor), except the intake feed.
//! Every system handles a bus message at most once in effect: [`Processed`] remembers finished
//! message ids and the outputs of started ones, so a redelivered message either changes nothing
//! or re-sends exactly the outputs it produced the first time (same message ids).

pub mod department;
pub mod governance_center;
pub mod intake;
pub mod terminal;

use crate::bus::bridge::{HandleError, Publish};
use crate::domain::{Envelope, MessageId};
use actix::Recipient;
use std::collections::{HashMap, HashSet};
use std::future::Future;

/// What a system knows about an inbound message id.
pub enum Seen {
    /// Handled and its outputs are on the bus: nothing to do.
    Done,
    /// Handled, but its outputs were not confirmed: send these again.
    Started(Vec<Envelope>),
    /// Never seen.
    New,
}

/// The inbound messages a system has handled.
#[derive(Default)]
pub struct Processed {
    /// Messages whose outputs are on the bus.
    done: HashSet<MessageId>,
    /// Messages whose outputs were produced but not yet confirmed.
    started: HashMap<MessageId, Vec<Envelope>>,
}

impl Processed {
    /// Where `id` stands.
    pub fn check(&self, id: &MessageId) -> Seen {
        if self.done.contains(id) {
            Seen::Done
        } else if let Some(outputs) = self.started.get(id) {
            Seen::Started(outputs.clone())
        } else {
            Seen::New
        }
    }

    /// Records the outputs produced for `id`, before they are sent.
    pub fn start(&mut self, id: MessageId, outputs: Vec<Envelope>) {
        self.started.insert(id, outputs);
    }

    /// Records that the outputs of `id` are on the bus.
    pub fn finish(&mut self, id: &MessageId) {
        self.started.remove(id);
        self.done.insert(id.clone());
    }
}

/// Sends `outputs` through the bridge. The publish is queued when this is called (so a
/// handler's outputs keep the order of the handlers); the future tells whether it got through.
pub fn publish(
    bridge: &Recipient<Publish>,
    outputs: Vec<Envelope>,
) -> impl Future<Output = Result<(), HandleError>> + 'static {
    let sent = (!outputs.is_empty()).then(|| bridge.send(Publish(outputs)));
    async move {
        match sent {
            None => Ok(()),
            Some(request) => match request.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(HandleError::Retry(error.to_string())),
                Err(error) => Err(HandleError::Retry(format!("bridge unavailable: {error}"))),
            },
        }
    }
}
