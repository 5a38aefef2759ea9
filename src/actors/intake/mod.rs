//! The intake system (收件系统).
//!
//! It issues a case id for every submission, keeps the application until the city centre takes
//! it from the feed ([`TakeNewApplications`], read with a cursor), follows each case on the bus
//! (its consumer group reads every topic) and answers the applicant's self-query
//! ([`GetCase`]). A case is complete when the city centre hands the approval over
//! (`approval.delivered`).
//!
//! It is also where the applicant acts on a case after submitting it: supplying the materials a
//! department asked for while the case is suspended ([`SupplementCase`], published as
//! `case.supplemented`) and rating a completed case once ([`RateCase`], `case.rated`).
//!
//! # Layout
//!
//! * `messages.rs` — what the intake system is asked, and its answers and refusals.
//! * this file — the actor: its state ([`IntakeSystem`], one record per case) and `impl Actor`.
//! * `view.rs` — the case as the applicant sees it ([`CaseView`]).
//! * `feed.rs` — the feed the city centre reads, and the state snapshots that make it durable.
//! * `observe.rs` — how each bus message updates the view (`observe/events.rs`: the messages
//!   about collaboration events).
//! * `handlers.rs` — one `impl Handler` per message.
//! * `row.rs` — the case repository's row of a case ([`CaseRow::from_view`](crate::store::CaseRow::from_view)),
//!   handed to the [`CaseWriter`](crate::store::CaseWriter) after every change to a view.
//! * `resident.rs` — which cases the intake system keeps in memory when it has a case
//!   repository: the open ones that changed last, and the last closed ones; any other is read
//!   back from the repository when a message or a person asks for it, and an open one out of
//!   memory leaves behind where it stands.
//! * `foreign.rs` — answering for another intake process's case from the repository.
//! * `share.rs` — which cases it issues and follows when the city runs several intake processes.
//! * `stalled.rs` — for an operator: the cases that made no progress, in memory or not, and
//!   sending a case's current step again ([`ListStalled`], [`RedriveCase`]).

mod feed;
mod foreign;
mod handlers;
mod messages;
mod observe;
mod resident;
mod row;
mod share;
mod stalled;
#[cfg(test)]
mod tests;
mod view;

pub use messages::{
    ApplicationForm, AwaitCompletion, CaseActionError, CaseReadError, FedApplication, GetCase,
    Held, Holding, LastStep, ListStalled, MarkReady, OwnCase, OwnCases, RateCase, RedriveCase,
    RedriveError, Redriven, ResentMessage, StalledCase, StalledCases, Submission, Submit,
    SubmitRefused, SupplementCase, TakeBack, TakeNewApplications,
};
pub use share::IntakeShare;
pub use view::{CaseView, EventResultView, EventView, HistoryEntry};

use super::acts::Acts;
use super::Versions;
use crate::catalog::Catalog;
use crate::domain::{Application, CaseId, MessageId, TraceId};
use crate::maps::{Map, Set};
use crate::port::{Delivery, Publish};
use actix::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The intake system.
pub struct IntakeSystem {
    /// The city's matters and regions, and the clock.
    catalog: Arc<Catalog>,
    /// Where its snapshots go (the applicant's acts go through [`Acts`]).
    bridge: Recipient<Publish>,
    /// Whether it writes state snapshots: only when the bus outlives the process
    /// ([`Bus::outlives_process`](crate::bus::Bus::outlives_process)).
    persist_state: bool,
    /// Every case, by id; each record on the heap of its own, so that the table holds
    /// pointers and its spare capacity costs eight bytes a slot, not a whole record.
    cases: Map<CaseId, Box<CaseRecord>>,
    /// The feed: case ids and trace ids by sequence (1, 2, …).
    feed: BTreeMap<u64, (CaseId, String)>,
    /// Sequences whose record is on the bus; the feed hands out only these.
    durable: Set<u64>,
    /// Every sequence up to this one is durable: the end of what the feed hands out.
    durable_upto: u64,
    /// A feed reader waiting for the next submission.
    feed_waiter: Option<(TakeNewApplications, oneshot::Sender<Vec<FedApplication>>)>,
    /// Versions of the case snapshots.
    versions: Versions,
    /// State rebuilt: submissions are taken.
    ready: bool,
    /// Submissions waiting to hear whether the bus took their record or refused it for good.
    durable_waiters: Map<u64, oneshot::Sender<Delivery>>,
    /// How long a submission waits for its record to be on the bus.
    submit_timeout: Duration,
    /// The applicant's supplements and ratings.
    acts: Acts,
    /// The messages of each open case's current step, for a re-drive.
    trails: stalled::Trails,
    /// Cases whose view changed while handling delivered messages, whose rows are handed to
    /// the writer once the messages' handling ends: a case that several messages of one
    /// mailbox pass change is serialized once.
    rows_due: Set<CaseId>,
    /// The largest application taken, as JSON in bytes: the records that carry it must fit the
    /// bus ([`BusSettings::max_application_bytes`](crate::settings::BusSettings::max_application_bytes)).
    max_application_bytes: u64,
    /// Where the row of every case whose view changes goes, and where a case not in memory
    /// is read back from, when the process keeps a case repository.
    repository: Option<resident::Repository>,
    /// The highest feed position issued or restored: the next submission takes the one after.
    last_sequence: u64,
    /// Closed markers of cases just completed, to be sent.
    closed_markers: Vec<crate::domain::Envelope>,
    /// Which cases it issues and follows, when the city runs several intake processes.
    share: IntakeShare,
}

/// A case the intake system follows.
struct CaseRecord {
    /// The case as the applicant sees it.
    view: CaseView,
    /// Message ids already in the history.
    seen: Set<MessageId>,
    /// Waiting for completion.
    watchers: Vec<oneshot::Sender<CaseView>>,
    /// The last suspension whose supplement was sent: a repeat of that supplement answers the
    /// same, and that suspension takes no other.
    supplement_sent: Option<u32>,
    /// The trace id every message of the case carries.
    trace_id: TraceId,
    /// Its feed position, while it is in the feed (until the city centre published it).
    sequence: Option<u64>,
    /// The number of its last change, which orders the open cases that leave memory
    /// (`resident`).
    touched: u64,
}

impl IntakeSystem {
    /// An empty intake system; it takes submissions once told its state is rebuilt
    /// ([`MarkReady`]).
    pub fn new(
        catalog: Arc<Catalog>,
        bridge: Recipient<Publish>,
        persist_state: bool,
        submit_timeout: Duration,
    ) -> Self {
        // Acts wait as long as a submission: the same setting.
        let acts = Acts::new(bridge.clone(), submit_timeout);
        Self {
            catalog,
            bridge,
            persist_state,
            cases: Map::default(),
            feed: BTreeMap::new(),
            durable: Set::default(),
            durable_upto: 0,
            feed_waiter: None,
            versions: Versions::default(),
            ready: false,
            durable_waiters: Map::default(),
            submit_timeout,
            acts,
            trails: stalled::Trails::default(),
            rows_due: Set::default(),
            max_application_bytes: u64::MAX,
            repository: None,
            last_sequence: 0,
            closed_markers: Vec::new(),
            share: IntakeShare::whole(),
        }
    }

    /// The same intake system, issuing and following only the cases of `share`.
    pub fn sharing(mut self, share: IntakeShare) -> Self {
        self.share = share;
        self.last_sequence = share.origin();
        self.durable_upto = share.origin();
        self
    }

    /// The same intake system, refusing applications over `bytes` (as JSON).
    pub fn refusing_over(mut self, bytes: u64) -> Self {
        self.max_application_bytes = bytes;
        self
    }
}

impl CaseRecord {
    /// A new case record at feed position `sequence`, with its `submitted` history entry.
    fn new(application: Application, terminal_id: &str, trace_id: &str, sequence: u64) -> Self {
        CaseRecord {
            view: CaseView::submitted(application, terminal_id),
            seen: Set::default(),
            watchers: Vec::new(),
            supplement_sent: None,
            trace_id: TraceId::from(trace_id),
            sequence: Some(sequence),
            touched: 0,
        }
    }
}

impl Actor for IntakeSystem {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16_384);
    }
}
