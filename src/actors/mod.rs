//! The systems of the fusion, one actix actor each. Each system is a folder whose files read top
//! to bottom — the messages it takes, its state and snapshot, its handlers, one function per
//! message type — except the terminal, which is small enough for one file:
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
//! * [`supervisor::Supervisor`] — watches every deadline on the bus, raises yellow and red
//!   warnings, escalates overdue events one tier up, and keeps the supervision figures.
//!
//! Systems reach each other only through the bus (the bridge actor), except the intake feed.
//! Every system handles a bus message at most once in effect: [`Processed`] remembers finished
//! message ids and the outputs of started ones, so a redelivered message either changes nothing
//! or re-sends exactly the outputs it produced the first time (same message ids).
//!
//! A person's act (a staff decision, a centre's reassignment, the applicant's rating) is handled
//! the same way, with the id of the message it causes: see [`acts`].
//!
//! What a system must remember about a case to survive a restart is written to the state topic
//! as a `state.snapshot` ([`Snapshot`]) after the message's outputs are on the bus and before
//! its offset is committed: a crash before the snapshot redelivers the message, which produces
//! the same outputs (same ids, dropped by their receivers as repeats); a crash after it finds
//! the message's effect in the restored state. Every process reads the snapshots of its systems
//! from the start of the state topic and keeps following it, so a second instance of a
//! department knows the cases the first one handled when it takes over their partitions.
//! Snapshots are written only when the bus outlives the process ([`Bus::outlives_process`]): a
//! Kafka cluster, or an in-memory bus that tests keep across restarts; the default in-memory bus
//! and the embedded cluster end with the process.
//!
//! [`Bus::outlives_process`]: crate::bus::Bus::outlives_process

pub mod acts;
pub mod department;
pub mod governance_center;
pub mod intake;
pub mod supervisor;
pub mod terminal;

use crate::domain::{
    message_ids, CaseId, Envelope, EnvelopeHead, MessageId, MessageType, SystemId,
};
use crate::port::{publish, HandleError, Publish};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a system knows about an inbound message id.
pub enum Seen {
    /// Handled and its outputs are on the bus: nothing to do.
    Done,
    /// Handled, and its outputs are on their way: wait for how that ends.
    Pending(oneshot::Receiver<Result<(), HandleError>>),
    /// Handled, but sending its outputs failed: send these again.
    Failed(Vec<Envelope>),
    /// Never seen.
    New,
}

/// A message whose outputs are not yet confirmed.
struct Started {
    /// The outputs it produced.
    outputs: Vec<Envelope>,
    /// While the publish is out: who else waits for it. `None` once it failed.
    waiters: Option<Vec<oneshot::Sender<Result<(), HandleError>>>>,
}

/// The inbound messages a system has handled.
#[derive(Default)]
pub struct Processed {
    /// Messages whose outputs are on the bus.
    done: HashSet<MessageId>,
    /// Messages whose outputs were produced but not yet confirmed.
    started: HashMap<MessageId, Started>,
}

impl Processed {
    /// Where `id` stands. A repeat of a message whose publish is still out waits for it rather
    /// than publishing the same outputs again.
    pub fn check(&mut self, id: &MessageId) -> Seen {
        if self.done.contains(id) {
            return Seen::Done;
        }
        let Some(started) = self.started.get_mut(id) else {
            return Seen::New;
        };
        match &mut started.waiters {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Seen::Pending(rx)
            }
            None => {
                started.waiters = Some(Vec::new());
                Seen::Failed(started.outputs.clone())
            }
        }
    }

    /// Records the outputs produced for `id`, just before they are sent.
    pub fn start(&mut self, id: MessageId, outputs: Vec<Envelope>) {
        self.started.insert(
            id,
            Started {
                outputs,
                waiters: Some(Vec::new()),
            },
        );
    }

    /// Records how sending the outputs of `id` ended, and tells whoever waited.
    pub fn settle(&mut self, id: &MessageId, result: &Result<(), HandleError>) {
        let waiters = match result {
            Ok(()) => {
                self.done.insert(id.clone());
                self.started.remove(id).and_then(|s| s.waiters)
            }
            Err(_) => self.started.get_mut(id).and_then(|s| s.waiters.take()),
        };
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(result.clone());
        }
    }
}

/// A system that turns bus messages into state changes and outputs, at most once in effect.
pub trait BusSystem: Actor<Context = Context<Self>> {
    /// Its id on the bus: the `source` of what it publishes.
    fn system_id(&self) -> SystemId;
    /// Its record of handled messages.
    fn processed(&mut self) -> &mut Processed;
    /// Where its outputs go.
    fn bridge(&self) -> &Recipient<Publish>;
    /// Applies a message: changes state now and returns the messages to publish.
    fn apply(&mut self, envelope: &Envelope) -> Result<Vec<Envelope>, HandleError>;
    /// The current time, from the clock every system shares.
    fn now(&self) -> DateTime<Utc>;

    /// A `state.snapshot` of `state` for `case_id`, numbered `version`.
    fn state_envelope<T: Serialize>(&self, case_id: &CaseId, version: u64, state: &T) -> Envelope {
        snapshot_envelope(self.system_id(), case_id, version, state, self.now())
    }

    /// Messages from this system, stamped now (see [`Sender::message`]).
    fn sender(&self) -> Sender {
        Sender::new(self.system_id(), self.now())
    }
}

/// Who sends a message and the instant it is stamped with: what every message a system
/// builds has in common. The one place an envelope of a system's own is put together.
pub struct Sender {
    /// The system that sends.
    source: SystemId,
    /// When the messages happen.
    at: DateTime<Utc>,
}

impl Sender {
    /// Messages from `source`, stamped `at`.
    pub fn new(source: SystemId, at: DateTime<Utc>) -> Self {
        Self { source, at }
    }

    /// A message `id` of `kind` about `case_id`, to `target`. `id` must be derived from what
    /// caused it (see [`message_ids`](crate::domain::message_ids)), so that sending it again
    /// keeps its id.
    pub fn message<T: Serialize>(
        &self,
        id: MessageId,
        kind: MessageType,
        case_id: &CaseId,
        target: SystemId,
        trace_id: &str,
        data: &T,
    ) -> Envelope {
        Envelope::new_at(
            EnvelopeHead {
                id,
                kind,
                case_id: case_id.clone(),
                source: self.source.clone(),
                target,
                trace_id: trace_id.to_owned(),
            },
            data,
            self.at,
        )
    }
}

/// A system that remembers something about cases on the state topic.
pub trait KeepsState: BusSystem {
    /// What it remembers about one case.
    type CaseState: Serialize + serde::de::DeserializeOwned;
    /// Whether it writes snapshots: only when the bus outlives the process
    /// ([`Bus::outlives_process`](crate::bus::Bus::outlives_process)).
    fn persists(&self) -> bool;
    /// The versions of its snapshots.
    fn versions(&mut self) -> &mut Versions;
    /// What it remembers about `case_id` now; none when nothing.
    fn case_state(&self, case_id: &CaseId) -> Option<Self::CaseState>;
    /// Takes over `state` for `case_id`, read from the state topic.
    fn restore_case(&mut self, case_id: &CaseId, state: Self::CaseState);
    /// Why `state`, read from the state topic, cannot be taken over (personal data the system
    /// must show but cannot open, say); by default any state can.
    fn check_restored(&self, _state: &Self::CaseState) -> Result<(), String> {
        Ok(())
    }

    /// The snapshot of a case as it stands now, if the system writes one.
    fn snapshot_of(&mut self, case_id: &CaseId) -> Option<Envelope> {
        if !self.persists() {
            return None;
        }
        let state = self.case_state(case_id)?;
        let version = self.versions().next(case_id);
        Some(self.state_envelope(case_id, version, &state))
    }

    /// Takes over what a snapshot (written by this or another instance) says about its case,
    /// if it is newer than what the system has.
    fn restore(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        let state = self
            .versions()
            .newer(envelope)
            .map_err(|e| HandleError::Poison(e.to_string()))?;
        if let Some(state) = state {
            self.check_restored(&state).map_err(HandleError::Poison)?;
            self.restore_case(&envelope.case_id, state);
        }
        Ok(())
    }
}

/// Handles what a stateful system's consumer groups deliver: a snapshot from the state topic is
/// restored; anything else goes through [`handle_inbound`].
pub fn handle_delivery<A: KeepsState>(
    actor: &mut A,
    envelope: Arc<Envelope>,
) -> ResponseActFuture<A, Result<(), HandleError>> {
    if envelope.kind == MessageType::StateSnapshot {
        return Box::pin(fut::ready(actor.restore(&envelope)));
    }
    handle_inbound(actor, envelope)
}

/// Handles an inbound message idempotently: a new one is applied and its outputs published; a
/// repeat of a finished one does nothing; a repeat of one still publishing waits for that
/// publish; a repeat of one whose publish failed publishes the same outputs (same ids) again.
pub fn handle_inbound<A: KeepsState>(
    actor: &mut A,
    envelope: Arc<Envelope>,
) -> ResponseActFuture<A, Result<(), HandleError>> {
    let outputs = match actor.processed().check(&envelope.id) {
        Seen::Done => return Box::pin(fut::ready(Ok(()))),
        Seen::Pending(outcome) => {
            return Box::pin(
                async move {
                    outcome.await.unwrap_or_else(|_| {
                        Err(HandleError::Retry(
                            "the first handling was abandoned".into(),
                        ))
                    })
                }
                .into_actor(actor),
            )
        }
        Seen::Failed(outputs) => outputs,
        Seen::New => match actor.apply(&envelope) {
            Ok(mut outputs) => {
                outputs.extend(actor.snapshot_of(&envelope.case_id));
                actor
                    .processed()
                    .start(envelope.id.clone(), outputs.clone());
                outputs
            }
            Err(error) => return Box::pin(fut::ready(Err(error))),
        },
    };
    let id = envelope.id.clone();
    Box::pin(
        publish(actor.bridge(), outputs)
            .into_actor(actor)
            .map(move |result, actor, _| {
                actor.processed().settle(&id, &result);
                result
            }),
    )
}

/// The `state.snapshot` of `system` for `case_id`, numbered `version`, stamped `at`. Its id
/// ends in `#<version>`, which [`Versions::newer`] reads without decoding the state.
pub fn snapshot_envelope<T: Serialize>(
    system: SystemId,
    case_id: &CaseId,
    version: u64,
    state: &T,
    at: DateTime<Utc>,
) -> Envelope {
    Sender::new(system.clone(), at).message(
        message_ids::snapshot(&system, case_id, version),
        MessageType::StateSnapshot,
        case_id,
        system,
        "",
        &Snapshot { version, state },
    )
}

/// What a system remembers about one case, as written to the state topic.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Snapshot<T> {
    /// Rises with every snapshot of the case; a reader keeps the highest.
    pub version: u64,
    /// The system's state for the case.
    pub state: T,
}

/// The snapshot versions a system wrote or restored, per case.
#[derive(Debug, Default)]
pub struct Versions(HashMap<CaseId, u64>);

impl Versions {
    /// The version of the next snapshot of `case_id`.
    pub fn next(&mut self, case_id: &CaseId) -> u64 {
        let version = self.0.entry(case_id.clone()).or_insert(0);
        *version += 1;
        *version
    }

    /// Forgets the versions of `case_id`: the system keeps nothing more of it.
    pub fn forget(&mut self, case_id: &CaseId) {
        self.0.remove(case_id);
    }

    /// Decodes a snapshot read from the state topic if it is newer than what the system has
    /// (its own snapshots come back too, and are not).
    pub fn newer<T: serde::de::DeserializeOwned>(
        &mut self,
        envelope: &Envelope,
    ) -> Result<Option<T>, crate::domain::EnvelopeError> {
        // A snapshot the system already has — its own, read back — is skipped without
        // decoding its state: the version is in the id.
        let version = message_ids::snapshot_version(&envelope.id);
        let known = self.0.get(&envelope.case_id).copied().unwrap_or(0);
        if version.is_some_and(|v| v <= known) {
            return Ok(None);
        }
        let snapshot: Snapshot<T> = envelope.data()?;
        let known = self.0.entry(envelope.case_id.clone()).or_insert(0);
        if snapshot.version <= *known {
            return Ok(None);
        }
        *known = snapshot.version;
        Ok(Some(snapshot.state))
    }
}
