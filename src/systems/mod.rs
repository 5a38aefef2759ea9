//! Builds the systems of this process's roles from config, rebuilds their state from the bus
//! and connects them to it.
//!
//! Start-up runs in three phases, in the background while the HTTP API already answers
//! (`/readyz` says which phase is running). Every consumer group of the process starts at once:
//! the groups of this process alone (state, views) read their partitions without joining a
//! group (`Membership::Alone`), and the shared groups join while the state is read, so that
//! their joins (3 s each on tansu, and a wait for a killed member's session to run out) overlap
//! the state read instead of following it. The views' and the shared groups receive nothing
//! until the state is back (`Subscription::after`), so each partition's records still come in
//! order.
//!
//! 1. **State.** A consumer group of this process alone reads the state topic and hands every
//!    snapshot to the system it belongs to; it keeps following the topic, so that snapshots
//!    written by another instance of a department reach this one too. With `store.keep_state`
//!    (on by default), on a bus that outlives the process, it keeps what it reads in the
//!    process's store (`crate::store::state`), with its offsets: a restart hands each system
//!    its open cases from there and reads the topic only after the stored offsets; a
//!    department or centre looks up a closed case there when a message of it comes again.
//!    Otherwise it reads the topic from the start.
//! 2. **Views.** The intake and supervision systems rebuild their views of every case by
//!    reading the flow topics, again in groups of this process alone: from the start, or, with
//!    a case repository on a bus that outlives the process, from the offsets stored with their
//!    rows, after taking back their open records. The
//!    governance and department consumer groups (shared by every process that runs those
//!    roles) start handling records from their committed offsets meanwhile: they need only
//!    their systems' state.
//! 3. **Flow.** The intake system takes submissions; the city centre reads the intake feed
//!    from the position it recorded.
//!
//! Once someone first watches the operations dashboard's live feed, a last group of this
//! process follows the flow topics from their end for it (`live.rs`).
//!
//! Phase 1 runs only on a bus that outlives the systems (`Bus::outlives_process`): a Kafka
//! cluster, or an in-memory bus made with `MemoryBus::durable` and given to
//! [`Systems::start_on`], over which tests stop one set of systems and start another.

use crate::actors::department::Department;
use crate::actors::governance_center::GovernanceCenter;
use crate::actors::intake::{IntakeShare, IntakeSystem};
use crate::actors::supervisor::Supervisor;
use crate::audit::{writer_id, AuditDesk, AuditTrail, Flush};
use crate::bus::bridge::{Bridge, BridgeStats, Drain};
use crate::bus::kafka::KafkaBus;
use crate::bus::memory::MemoryBus;
use crate::bus::{Bus, CatchUp, SubscriptionHandle, Topic};
use crate::catalog::Catalog;
use crate::clock::{SharedClock, SystemClock};
use crate::domain::{CentreCode, DepartmentCode, EventId};
use crate::maps::Map;
use crate::maps::SharedMap;
use crate::settings::{Roles, Settings};
use crate::store::{CaseRepository, CaseWriter, ClosedStates};
use actix::prelude::*;
use anyhow::Context as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod actors;
pub mod desks;
mod group;
mod live;
mod startup;
mod stored;

use actors::{Actors, Connected};
pub use group::flow_group;
use group::Group;

pub use desks::{CentreDesk, DepartmentDesk, Desks, IntakeDesk, SupervisionDesk};
pub use live::Happened;

/// The running systems of one process: their desks for the HTTP API, the simulator and tests.
#[derive(Clone)]
pub struct Systems {
    /// The settings they were built from.
    pub settings: Arc<Settings>,
    /// What this process runs.
    pub roles: Arc<Roles>,
    /// The city.
    pub catalog: Arc<Catalog>,
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// The in-memory bus, when that is the kind (for fault injection in tests).
    pub memory_bus: Option<MemoryBus>,
    /// The Kafka bus, when that is the kind (kafka or embedded).
    pub kafka_bus: Option<KafkaBus>,
    /// The bridge actor.
    pub bridge: Addr<Bridge>,
    /// The bridge's counters.
    pub bridge_stats: Arc<BridgeStats>,
    /// The audit trail of the HTTP API's requests.
    pub audit: AuditDesk,
    /// What clients may ask of each system.
    pub desks: Desks,
    /// The intake system (idle unless this process runs the `intake` role); start-up routes
    /// the bus to it, clients reach it through [`desks`](Self::desks).
    intake: Addr<IntakeSystem>,
    /// Departments by code (those of this process's roles), for start-up's routes.
    departments: Arc<Map<DepartmentCode, Addr<Department>>>,
    /// Governance centres by code (none unless this process runs `governance`), for start-up's
    /// routes.
    centres: Arc<Map<CentreCode, Addr<GovernanceCenter>>>,
    /// The supervision system (idle unless this process runs `governance`), for start-up's
    /// routes.
    supervisor: Addr<Supervisor>,
    /// The case repository, when this process runs the intake system or the supervision
    /// system (the governance role): what the case lists and the supervision figures are read
    /// from.
    pub repository: Option<CaseRepository>,
    /// The database this process keeps: the case repository, or, for a process without one
    /// on a bus that outlives it, its systems' snapshots alone.
    store: Option<CaseRepository>,
    /// Where the intake and supervision systems' rows and the state group's snapshots are
    /// written, when there is a store; flushed at shutdown.
    case_writer: Option<CaseWriter>,
    /// The consumer group that reads the state topic (this process's own).
    pub state_group: String,
    /// The consumer group the intake system rebuilds its view with (this process's own;
    /// `{prefix}.views.{run}`, shared with the supervision system, when the process runs both
    /// and the city one intake process, else `{prefix}.intake.{run}`).
    pub intake_group: String,
    /// Which cases this process's intake system issues and follows.
    intake_share: IntakeShare,
    /// The consumer group the supervision system rebuilds its view with (this process's own;
    /// see `intake_group`).
    pub supervision_group: String,
    /// The shared consumer group of this process's centres and departments
    /// ([`flow_group`]), if it runs any.
    pub flow_group: Option<String>,
    /// The consumer group that follows the flow topics for the dashboard's live feed (this
    /// process's own), started for the first watcher.
    live_group: String,
    /// The dashboard's live feed: told of every message on the flow topics once it is followed.
    live: tokio::sync::broadcast::Sender<Arc<Happened>>,
    /// Set once the live feed's group is subscribed.
    live_followed: Arc<tokio::sync::OnceCell<()>>,
    /// Which manual department holds which waiting collaboration event.
    pub event_index: Arc<SharedMap<EventId, DepartmentCode>>,
    /// Where start-up stands.
    phase: Arc<Mutex<Phase>>,
    /// How much start-up read, once it is done.
    rebuilt: Arc<Mutex<Option<Rebuilt>>>,
    /// Turns true once the state is rebuilt; the views' and the flow's groups wait for it.
    state_rebuilt: Arc<tokio::sync::watch::Sender<bool>>,
    /// How many snapshots start-up took back from the store.
    state_taken_back: Arc<std::sync::atomic::AtomicU64>,
    /// The consumer groups' subscriptions; taken by the first shutdown.
    subscriptions: Arc<tokio::sync::Mutex<Vec<SubscriptionHandle>>>,
    /// The thread the centres and departments run on.
    worker: Arc<Arbiter>,
    /// The thread the bridge runs on, with the consumers of the groups that rebuild state and
    /// views.
    bridge_thread: Arc<Arbiter>,
    /// Set when shutdown begins.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// How many records start-up read to bring the systems back: with a case repository, the
/// intake system reads only what was published since it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Records read from the state topic.
    pub state_records: u64,
    /// Snapshots taken back from the store instead (open cases, and the intake system's last
    /// feed position).
    pub state_taken_back: u64,
    /// Records the intake system's view group read from the flow topics.
    pub intake_view_records: u64,
    /// Records the supervision system's view group read from the flow topics.
    pub supervision_view_records: u64,
}

/// Where start-up stands.
#[derive(Clone)]
enum Phase {
    /// Reading the state topic.
    State(Option<Arc<CatchUp>>),
    /// Reading the flow topics to rebuild the intake and supervision views.
    Views(Vec<Arc<CatchUp>>),
    /// Every system runs.
    Running,
    /// Start-up failed; the reason.
    Failed(String),
}

impl Systems {
    /// Starts the bus, the bridge and every system on the machine's clock. Must run inside an
    /// actix system.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        Self::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Starts the systems of this process's roles, reading the time from `clock`, and begins
    /// rebuilding their state (see the module docs); [`not_ready`](Self::not_ready) is empty
    /// once they run.
    pub async fn start_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let connected = Connected::connect(&settings).await?;
        Self::start_connected(settings, clock, connected).await
    }

    /// Like [`start_with_clock`](Self::start_with_clock), on an in-memory bus that may have
    /// carried other systems before: made with [`MemoryBus::durable`], the bus keeps what
    /// they wrote, so these systems rebuild their state from it and resume their consumer
    /// groups where the others committed (a restart, see [`shutdown`](Self::shutdown) for
    /// stopping the first set). `settings.bus.kind` must say `memory`.
    pub async fn start_on(
        settings: Settings,
        clock: SharedClock,
        bus: MemoryBus,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.bus.kind == crate::settings::BusKind::Memory,
            "systems given an in-memory bus were configured for bus.kind = {:?}; set it to \
             \"memory\"",
            settings.bus.kind
        );
        Self::start_connected(settings, clock, Connected::memory(bus)).await
    }

    /// Starts the systems on `connected` (see [`start_with_clock`](Self::start_with_clock)).
    async fn start_connected(
        settings: Settings,
        clock: SharedClock,
        connected: Connected,
    ) -> anyhow::Result<Self> {
        crate::monitoring::install();
        let settings = Arc::new(settings);
        let roles = Arc::new(settings.roles());
        // The case repository of the intake and supervision systems; on a bus that outlives
        // the process, every process keeps its systems' snapshots there too (see
        // `crate::store::state`).
        let keeps_cases = roles.intake || roles.governance;
        let keeps_state = settings.store.keep_state && connected.bus.outlives_process();
        let store = if keeps_cases || keeps_state {
            let store = CaseRepository::open(&settings.store)
                .await
                .context("Failed to open the case repository ([store] in the configuration)")?;
            Some(store)
        } else {
            None
        };
        let repository = store.clone().filter(|_| keeps_cases);
        let case_writer = store.clone().map(CaseWriter::start);
        if settings.crypto.uses_development_key() {
            tracing::warn!(
                kid = %settings.crypto.current,
                "personal data on the bus is sealed with the published development key: list a \
                 key of your own under [[crypto.keys]] and make it crypto.current"
            );
        }
        let catalog = Arc::new(Catalog::with_clock(&settings, clock));
        let Connected {
            bus,
            memory_bus,
            kafka_bus,
        } = connected;
        let intake_share = actors::intake_share(&settings, bus.as_ref());
        let bridge_actor = Bridge::new(bus.clone(), settings.bridge.clone());
        let bridge_stats = bridge_actor.stats();
        // The bridge, and the consumers of the groups that rebuild state and views, which it
        // starts, get a thread of their own: on the caller's, with the intake system and the
        // terminals, the intake system was left behind on the last records of busy cases.
        let bridge_thread = Arbiter::new();
        let bridge = Bridge::start_in_arbiter(&bridge_thread.handle(), move |_| bridge_actor);
        let audit = start_audit_trail(&settings, &bridge);
        let actors = Actors::start(
            &settings,
            &roles,
            &catalog,
            bridge.clone().recipient(),
            bus.as_ref(),
            case_writer.clone().zip(repository.clone()),
            store.clone().filter(|_| keeps_state).map(|store| {
                ClosedStates::new(store, Topic::State.name(&settings.bus.topic_prefix))
            }),
        );
        let desks = Desks::new(
            &actors.intake,
            actors.terminals,
            &actors.departments,
            &actors.centres,
            &actors.supervisor,
        );
        let prefix = &settings.bus.topic_prefix;
        let run = uuid::Uuid::new_v4().simple().to_string();
        // One group reads for both views where both read every partition.
        let (intake_group, supervision_group) =
            if roles.intake && roles.governance && intake_share.share() == crate::bus::Share::ALL {
                let views = format!("{prefix}.views.{run}");
                (views.clone(), views)
            } else {
                (
                    format!("{prefix}.intake.{run}"),
                    format!("{prefix}.supervision.{run}"),
                )
            };
        let systems = Self {
            state_group: format!("{prefix}.state.{run}"),
            intake_group,
            intake_share,
            supervision_group,
            live_group: format!("{prefix}.live.{run}"),
            flow_group: flow_group(
                prefix,
                roles.governance,
                &actors.departments.keys().collect::<Vec<_>>(),
            ),
            live: tokio::sync::broadcast::channel(live::LIVE_BACKLOG).0,
            live_followed: Arc::default(),
            repository,
            store,
            case_writer,
            settings: settings.clone(),
            roles,
            catalog,
            bus,
            memory_bus,
            kafka_bus,
            bridge,
            bridge_stats,
            audit,
            desks,
            intake: actors.intake,
            departments: Arc::new(actors.departments),
            centres: Arc::new(actors.centres),
            supervisor: actors.supervisor,
            event_index: actors.event_index,
            phase: Arc::new(Mutex::new(Phase::State(None))),
            rebuilt: Arc::default(),
            state_rebuilt: Arc::new(tokio::sync::watch::channel(false).0),
            state_taken_back: Arc::default(),
            subscriptions: Arc::default(),
            worker: Arc::new(actors.worker),
            bridge_thread: Arc::new(bridge_thread),
            stopping: Arc::default(),
        };
        tracing::info!(
            roles = ?settings.service.roles,
            terminals = systems.desks.terminals.len(),
            centres = systems.centres.len(),
            departments = systems.departments.len(),
            bus = ?settings.bus.kind,
            "systems started; rebuilding their state"
        );
        let starting = systems.clone();
        actix_rt::spawn(async move {
            if let Err(error) = starting.bring_up().await {
                tracing::error!(error = format!("{error:#}"), "start-up failed");
                starting.set_phase(Phase::Failed(format!("{error:#}")));
            }
        });
        Ok(systems)
    }

    /// How much start-up read to bring the systems back; none until every system runs.
    pub fn rebuilt(&self) -> Option<Rebuilt> {
        self.rebuilt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    fn phase(&self) -> Phase {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The start-up phase, as `/metrics` names it: `state`, `views`, `running` or `failed`.
    pub fn startup_phase(&self) -> &'static str {
        match &*self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::State(_) => "state",
            Phase::Views(_) => "views",
            Phase::Running => "running",
            Phase::Failed(_) => "failed",
        }
    }

    /// Why the process should not get traffic yet (or any more): shutting down, state still
    /// being rebuilt, or consumer groups still waiting for their partitions. Empty when ready.
    pub async fn not_ready(&self) -> Vec<String> {
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return vec!["shutting down".into()];
        }
        let mut waiting = match self.phase() {
            Phase::Running => Vec::new(),
            Phase::State(catch_up) => vec![match catch_up {
                Some(c) => format!(
                    "rebuilding state: {} of {} snapshot records read",
                    c.total() - c.remaining(),
                    c.total()
                ),
                None => "connecting to the bus".into(),
            }],
            Phase::Views(views) => {
                let total: u64 = views.iter().map(|v| v.total()).sum();
                let left: u64 = views.iter().map(|v| v.remaining()).sum();
                vec![format!(
                    "rebuilding the intake and supervision views: {} of {total} records read",
                    total - left
                )]
            }
            Phase::Failed(reason) => vec![format!("start-up failed: {reason}")],
        };
        let window = Duration::from_millis(self.settings.bridge.refused_unready_ms);
        if let Some(reason) = self.bridge_stats.failed_within(window) {
            waiting.push(format!(
                "the bus refused records for good in the last {} s: {reason}",
                window.as_secs()
            ));
        }
        waiting.extend(
            self.subscriptions
                .lock()
                .await
                .iter()
                .filter(|s| !s.is_assigned())
                .map(|s| {
                    format!(
                        "consumer group {} has no partitions assigned yet",
                        s.group()
                    )
                }),
        );
        waiting
    }

    /// Waits until every system runs and every consumer group has its partitions; fails with
    /// what is still missing after `limit`.
    pub async fn ready(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let waiting = self.not_ready().await;
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("not ready after {limit:?}: {}", waiting.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every row handed to the case writer so far is written (at once when the
    /// process keeps no repository): a read of the repository that follows sees them.
    pub async fn rows_written(&self) {
        if let Some(writer) = &self.case_writer {
            writer.written().await;
        }
    }

    /// Every consumer group this process runs, with the topics it reads (what `bench
    /// --ceiling` moves the records through).
    pub async fn consumer_groups(&self) -> Vec<(String, Vec<crate::bus::Topic>)> {
        self.subscriptions
            .lock()
            .await
            .iter()
            .map(|s| (s.group().to_owned(), s.topics().to_vec()))
            .collect()
    }

    /// Stops consuming (each consumer finishes what it handed out and commits), then waits
    /// until every queued publish is on the bus and the producer is flushed. Answers how many
    /// records failed for good meanwhile (never reached the bus, or were refused by it and
    /// dead-lettered): what could not be delivered.
    pub async fn shutdown(&self) -> u64 {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let mut subscriptions = std::mem::take(&mut *self.subscriptions.lock().await);
        for subscription in &subscriptions {
            subscription.stop();
        }
        for subscription in &mut subscriptions {
            subscription.stopped().await;
        }
        // Nothing changes a case any more: its last rows go to the repository before the
        // process exits.
        if let Some(writer) = &self.case_writer {
            writer.flush().await;
        }
        if let Some(store) = &self.store {
            store.close().await;
        }
        // The HTTP server has stopped: every request's audit record is sealed. Hand them all
        // to the bridge before draining it.
        if let Err(error) = self.audit.flush.send(Flush).await {
            tracing::error!(%error, "the audit trail stopped before its records were flushed");
        }
        let undelivered = match self.bridge.send(Drain).await {
            Ok(undelivered) => undelivered,
            Err(_) => {
                tracing::warn!("bridge already stopped; queued publishes may be lost");
                0
            }
        };
        self.bus.shutdown().await;
        self.worker.stop();
        self.bridge_thread.stop();
        if undelivered > 0 {
            tracing::error!(
                undelivered,
                "systems stopped; records not delivered to the bus"
            );
        } else {
            tracing::info!("systems stopped");
        }
        undelivered
    }
}

/// Starts this process's audit trail, publishing through `bridge`.
fn start_audit_trail(settings: &Settings, bridge: &Addr<Bridge>) -> AuditDesk {
    let writer = writer_id();
    let trail = AuditTrail::new(writer.clone(), bridge.clone().recipient());
    let stats = trail.stats();
    let trail = trail.start();
    tracing::info!(%writer, "audit trail started");
    AuditDesk {
        record: trail.clone().recipient(),
        flush: trail.recipient(),
        stats,
        writer,
        trust_forwarded_for: settings.audit.trust_forwarded_for,
    }
}
