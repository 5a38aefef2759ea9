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
//! A system keeps in memory only its open work. When a case is finished at a system (see
//! [`KeepsState::finished`]; each system's rule is in its module) and its outputs are on the
//! bus, the system closes it: its last snapshot becomes a small closed marker
//! ([`Kept::Closed`]), and the system drops the case's state, its snapshot version and the ids
//! of its messages, keeping only a compact record of the closing ([`ClosedCases`]) for the
//! retention of the flow topics. A late message for a closed case is dropped as a repeat,
//! unless the system says it is new work ([`BusSystem::after_close`]).
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
mod holding;
pub mod intake;
mod kept;
mod processed;
pub mod supervisor;
pub mod terminal;

pub use holding::{GetHolding, Holding};
pub use kept::{ClosedMarker, Kept};
pub use processed::{ClosedCase, ClosedCases, Processed, Seen};

use crate::domain::{
    message_ids, CaseId, Envelope, EnvelopeHead, MessageId, MessageType, SystemId,
};
use crate::maps::Map;
use crate::port::{publish_shared, HandleError, Publish};
use crate::store::ClosedStates;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;

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
    /// What to do with a message for a case this system closed: by default it is a late
    /// repeat (a redelivery, a duplicate publish, a re-drive), dropped.
    fn after_close(&self, _envelope: &Envelope) -> Result<AfterClose, HandleError> {
        Ok(AfterClose::Drop)
    }

    /// A `state.snapshot` of `state` for `case_id`, numbered `version`.
    fn state_envelope<T: Serialize>(&self, case_id: &CaseId, version: u64, state: &T) -> Envelope {
        snapshot_envelope(self.system_id(), case_id, version, state, self.now())
    }

    /// Messages from this system, stamped now (see [`Sender::message`]).
    fn sender(&self) -> Sender {
        Sender::new(self.system_id(), self.now())
    }
}

/// What a system does with a message for a case it closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterClose {
    /// A late repeat: dropped.
    Drop,
    /// New work for the case (an event reassigned to the system): the case opens again.
    Reopen,
}

/// Whether a dispatch of `event` to a system that closed its case opens the case again: only
/// when it is a reassignment after a return, a new attempt the system has not seen. A dispatch
/// without returns is the event's first, which the system handled before it closed the case.
pub(crate) fn reassigned(event: &crate::domain::CollaborationEvent) -> AfterClose {
    if event.returns.is_empty() {
        AfterClose::Drop
    } else {
        AfterClose::Reopen
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

    /// Whether the system's work on `case_id` is finished: it holds nothing open for it.
    /// Asked after a message about the case was handled, and after an act on it.
    fn finished(&self, case_id: &CaseId) -> bool;
    /// Drops everything the system holds about `case_id`, which is closed.
    fn forget_case(&mut self, case_id: &CaseId);
    /// How many cases the system holds state for.
    fn open_cases(&self) -> usize;
    /// Drops what the system kept about closed cases it no longer remembers (past the flow
    /// topics' retention), beyond their record; by default nothing.
    fn forget_closed(&mut self, _case_ids: &[CaseId]) {}
    /// Where the closed markers of the cases it closed before it started are kept, on a bus
    /// that outlives the process: start-up takes back open cases only, and a message for a
    /// case the system does not know is checked against these first (see
    /// [`handle_delivery`]). None by default, and when the process keeps no store: start-up
    /// then reads the whole state topic, closed markers and all.
    fn closed_states(&self) -> Option<&ClosedStates> {
        None
    }

    /// The snapshot of a case as it stands now, if the system writes one: the closed marker
    /// once the case is finished here.
    fn snapshot_of(&mut self, case_id: &CaseId) -> Option<Envelope> {
        if !self.persists() {
            return None;
        }
        let kept = if self.finished(case_id) {
            Kept::Closed(ClosedMarker {
                closed_at: self.now(),
            })
        } else {
            Kept::Open(self.case_state(case_id)?)
        };
        let version = self.versions().next(case_id);
        Some(self.state_envelope(case_id, version, &kept))
    }

    /// Takes over what a snapshot (written by this or another instance) says about its case,
    /// if it is newer than what the system has: the case's state, or that it is closed.
    fn restore(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        let case_id = &envelope.case_id;
        match newer_kept(self, envelope)? {
            None => {}
            Some(Kept::Open(state)) => {
                self.check_restored(&state).map_err(HandleError::Poison)?;
                self.processed().reopen(case_id);
                self.restore_case(case_id, state);
            }
            Some(Kept::Closed(marker)) => close(self, case_id, marker.closed_at),
        }
        Ok(())
    }
}

/// Decodes a snapshot read from the state topic if it is newer than what `actor` has. For a
/// closed case, that is newer than its closed marker: the system's own earlier snapshots, read
/// back after it closed the case, must not open it again.
fn newer_kept<A: KeepsState>(
    actor: &mut A,
    envelope: &Envelope,
) -> Result<Option<Kept<A::CaseState>>, HandleError> {
    let case_id = &envelope.case_id;
    let closed = actor.processed().closed(case_id);
    if let Some(closed) = closed {
        actor.versions().resume(case_id, closed.version);
    }
    let kept = actor.versions().newer(envelope);
    if closed.is_some() && !matches!(kept, Ok(Some(_))) {
        actor.versions().forget(case_id);
    }
    kept.map_err(|e| HandleError::Poison(e.to_string()))
}

/// Closes `case_id` at `actor` if its work there is finished and nothing about it is still
/// being sent (a message whose outputs failed to go out is delivered again and must find
/// them).
pub fn close_if_finished<A: KeepsState>(actor: &mut A, case_id: &CaseId) {
    if actor.finished(case_id) && !actor.processed().busy(case_id) {
        let now = actor.now();
        close(actor, case_id, now);
    }
}

/// Closes `case_id` at `actor` as of `at`: drops its state, its snapshot version and the ids of
/// its messages, and records it closed.
fn close<A: KeepsState>(actor: &mut A, case_id: &CaseId, at: DateTime<Utc>) {
    let version = actor.versions().forget(case_id);
    actor.forget_case(case_id);
    let now = actor.now();
    let forgotten = actor
        .processed()
        .close(case_id, ClosedCase { at, version }, now);
    if !forgotten.is_empty() {
        actor.forget_closed(&forgotten);
    }
}

/// Forgets the cases `actor` closed longer ago than the flow topics' retention, and what it
/// kept about them.
fn forget_expired<A: KeepsState>(actor: &mut A) {
    let now = actor.now();
    let forgotten = actor.processed().forget_expired(now);
    if !forgotten.is_empty() {
        actor.forget_closed(&forgotten);
    }
}

/// Handles what a stateful system's consumer groups deliver: a snapshot from the state topic is
/// restored; anything else goes through [`handle_inbound`] — for a case the system does not
/// know, once its closed marker, if the store holds one, is taken back: a late repeat of a
/// message of a case closed before the process started is then recognised and dropped.
pub fn handle_delivery<A: KeepsState>(
    actor: &mut A,
    envelope: Arc<Envelope>,
    ctx: &mut Context<A>,
) -> ResponseActFuture<A, Result<(), HandleError>> {
    if envelope.kind == MessageType::StateSnapshot {
        return Box::pin(fut::ready(actor.restore(&envelope)));
    }
    match closed_marker_lookup(actor, &envelope.case_id) {
        Some(lookup) => handle_after_lookup(actor, envelope, lookup, ctx),
        None => handle_inbound(actor, envelope),
    }
}

/// What the store answers for the closed marker of a case.
type MarkerLookup = BoxFuture<'static, Result<Option<Vec<u8>>, crate::store::StoreError>>;

/// The lookup of `case_id`'s closed marker, when the system keeps its closed markers in a
/// store and knows nothing of the case: it neither holds it, nor wrote or read a snapshot of
/// it, nor closed it since it started — and the store may hold one (a case issued after every
/// marker the store held has none: see [`ClosedStates::may_hold`]). Each lookup holds the
/// system's other messages back until the store answers, so a new case must not need one.
fn closed_marker_lookup<A: KeepsState>(actor: &mut A, case_id: &CaseId) -> Option<MarkerLookup> {
    let states = actor.closed_states()?.clone();
    if actor.versions().knows(case_id)
        || actor.processed().closed(case_id).is_some()
        || !states.may_hold(case_id.as_str())
    {
        return None;
    }
    let (system, case) = (actor.system_id().to_string(), case_id.to_string());
    Some(Box::pin(crate::store::detached(async move {
        states.marker(&system, &case).await
    })))
}

/// Handles `envelope` once `lookup` answered, taking back the closed marker it found. The
/// system takes no other message meanwhile (`ctx.wait`), so that the next message of the case
/// finds what the lookup found; the handling itself then runs as any other.
fn handle_after_lookup<A: KeepsState>(
    actor: &mut A,
    envelope: Arc<Envelope>,
    lookup: MarkerLookup,
    ctx: &mut Context<A>,
) -> ResponseActFuture<A, Result<(), HandleError>> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    ctx.wait(
        lookup
            .into_actor(actor)
            .map(move |found, actor: &mut A, ctx: &mut Context<A>| {
                let handling = match found {
                    Ok(marker) => {
                        if let Some(marker) = marker {
                            take_back_marker(actor, &marker);
                        }
                        handle_inbound(actor, envelope)
                    }
                    Err(error) => Box::pin(fut::ready(Err(HandleError::Retry(format!(
                        "whether case {} was closed here is not known: {error}",
                        envelope.case_id
                    ))))),
                };
                ctx.spawn(handling.map(move |result, _, _| {
                    // Whoever delivered the message may have stopped waiting.
                    let _ = answer.send(result);
                }));
            }),
    );
    Box::pin(
        async move {
            answered.await.unwrap_or_else(|_| {
                Err(HandleError::Retry(
                    "the system stopped before handling the message".into(),
                ))
            })
        }
        .into_actor(actor),
    )
}

/// Takes back a closed marker the store kept. One that cannot be read is logged and left: the
/// system then knows no more than without a store.
fn take_back_marker<A: KeepsState>(actor: &mut A, marker: &[u8]) {
    let restored = Envelope::from_slice(marker)
        .map_err(|error| error.to_string())
        .and_then(|snapshot| actor.restore(&snapshot).map_err(|error| error.to_string()));
    if let Err(error) = restored {
        tracing::error!(system = %actor.system_id(), %error, "a stored closed marker cannot be read");
    }
}

/// Handles an inbound message idempotently: a new one is applied and its outputs published; a
/// repeat of a finished one does nothing; a repeat of one still publishing waits for that
/// publish; a repeat of one whose publish failed publishes the same outputs (same ids) again.
pub fn handle_inbound<A: KeepsState>(
    actor: &mut A,
    envelope: Arc<Envelope>,
) -> ResponseActFuture<A, Result<(), HandleError>> {
    let seen = actor.processed().check(&envelope.case_id, &envelope.id);
    if !matches!(seen, Seen::New | Seen::Closed) {
        crate::monitoring::record::repeated(actor.system_id().to_string(), envelope.kind);
    }
    let outputs = match seen {
        Seen::Done => return Box::pin(fut::ready(Ok(()))),
        Seen::Closed => match actor.after_close(&envelope) {
            Ok(AfterClose::Drop) => {
                crate::monitoring::record::repeated(actor.system_id().to_string(), envelope.kind);
                tracing::debug!(
                    case_id = %envelope.case_id, message_id = %envelope.id,
                    r#type = envelope.kind.as_str(), system = %actor.system_id(),
                    trace_id = %envelope.trace_id, "a message for a closed case; dropped"
                );
                return Box::pin(fut::ready(Ok(())));
            }
            Ok(AfterClose::Reopen) => {
                reopen(actor, &envelope.case_id);
                match apply_new(actor, &envelope) {
                    Ok(outputs) => outputs,
                    Err(error) => return Box::pin(fut::ready(Err(error))),
                }
            }
            Err(error) => return Box::pin(fut::ready(Err(error))),
        },
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
        Seen::New => match apply_new(actor, &envelope) {
            Ok(outputs) => outputs,
            Err(error) => return Box::pin(fut::ready(Err(error))),
        },
    };
    let id = envelope.id.clone();
    let case_id = envelope.case_id.clone();
    Box::pin(
        publish_shared(actor.bridge(), outputs)
            .into_actor(actor)
            .map(move |result, actor, _| {
                actor.processed().settle(&id, &result);
                if result.is_ok() {
                    close_if_finished(actor, &case_id);
                }
                result
            }),
    )
}

/// Applies a message not handled before: its outputs, followed by the case's snapshot, are
/// recorded as started and returned for publishing.
fn apply_new<A: KeepsState>(
    actor: &mut A,
    envelope: &Envelope,
) -> Result<Vec<Arc<Envelope>>, HandleError> {
    let mut outputs = actor.apply(envelope)?;
    outputs.extend(actor.snapshot_of(&envelope.case_id));
    // Kept, to be sent again if this publish fails, and published: the same envelopes.
    let outputs = crate::port::shared(outputs);
    actor
        .processed()
        .start(&envelope.case_id, envelope.id.clone(), outputs.clone());
    Ok(outputs)
}

/// Opens a closed case again: its snapshots go on numbering from its closed marker's.
fn reopen<A: KeepsState>(actor: &mut A, case_id: &CaseId) {
    if let Some(closed) = actor.processed().reopen(case_id) {
        actor.versions().resume(case_id, closed.version);
    }
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
pub struct Versions(Map<CaseId, u64>);

impl Versions {
    /// The version of the next snapshot of `case_id`.
    pub fn next(&mut self, case_id: &CaseId) -> u64 {
        let version = self.0.entry(case_id.clone()).or_insert(0);
        *version += 1;
        *version
    }

    /// Forgets `case_id`, which is closed; the version of its last snapshot (0 if none).
    pub fn forget(&mut self, case_id: &CaseId) -> u64 {
        self.0.remove(case_id).unwrap_or(0)
    }

    /// Numbers the snapshots of `case_id`, opened again, on from `version`.
    pub fn resume(&mut self, case_id: &CaseId, version: u64) {
        let known = self.0.entry(case_id.clone()).or_insert(0);
        *known = (*known).max(version);
    }

    /// Whether `case_id` has a snapshot version: the system holds the case, or wrote or
    /// read a snapshot of it since it started.
    pub fn knows(&self, case_id: &CaseId) -> bool {
        self.0.contains_key(case_id)
    }

    /// How many cases have a snapshot version.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no case has a snapshot version.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
