//! Builds every system of the city from config and connects it to the bus.

use crate::actors::department::Department;
use crate::actors::governance_center::GovernanceCenter;
use crate::actors::intake::IntakeSystem;
use crate::actors::supervisor::Supervisor;
use crate::actors::terminal::Terminal;
use crate::bus::bridge::{Bridge, BridgeStats, Drain, Routes, Subscribe};
use crate::bus::kafka::KafkaBus;
use crate::bus::memory::MemoryBus;
use crate::bus::{Bus, SubscriptionHandle, Topic};
use crate::catalog::Catalog;
use crate::clock::{SharedClock, SystemClock};
use crate::domain::{EventId, SystemId, Tier};
use crate::settings::{BusKind, Settings};
use actix::prelude::*;
use anyhow::Context as _;
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::Arc;

/// The running systems of one process: addresses for the HTTP API, the simulator and tests.
#[derive(Clone)]
pub struct Systems {
    /// The settings they were built from.
    pub settings: Arc<Settings>,
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
    /// The intake system.
    pub intake: Addr<IntakeSystem>,
    /// Terminals by id.
    pub terminals: Arc<HashMap<String, Addr<Terminal>>>,
    /// Departments by code.
    pub departments: Arc<HashMap<String, Addr<Department>>>,
    /// Governance centres by code.
    pub centres: Arc<HashMap<String, Addr<GovernanceCenter>>>,
    /// The supervision system.
    pub supervisor: Addr<Supervisor>,
    /// Which manual department holds which waiting collaboration event.
    pub event_index: Arc<DashMap<EventId, String>>,
    /// The consumer groups' subscriptions; taken by the first shutdown.
    subscriptions: Arc<tokio::sync::Mutex<Vec<SubscriptionHandle>>>,
    /// The thread the centres and departments run on.
    worker: Arc<Arbiter>,
    /// Set when shutdown begins.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Systems {
    /// Starts the bus, the bridge and every system on the machine's clock. Must run inside an
    /// actix system.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        Self::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Starts every system reading the time from `clock`.
    pub async fn start_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let catalog = Arc::new(Catalog::with_clock(&settings, clock));
        let (bus, memory_bus, kafka_bus): (Arc<dyn Bus>, _, _) = match settings.bus.kind {
            BusKind::Memory => {
                let bus = MemoryBus::new(&settings.bus);
                (Arc::new(bus.clone()), Some(bus), None)
            }
            BusKind::Kafka | BusKind::Embedded => {
                let bus = KafkaBus::connect(&settings.bus)
                    .await
                    .context("Failed to connect to the Kafka cluster")?;
                (Arc::new(bus.clone()), None, Some(bus))
            }
        };
        let bridge_actor = Bridge::new(bus.clone(), settings.bridge.clone());
        let bridge_stats = bridge_actor.stats();
        let bridge = bridge_actor.start();
        let publish = bridge.clone().recipient();

        let intake = IntakeSystem::new(catalog.clone(), publish.clone()).start();
        let terminals: HashMap<_, _> = settings
            .terminals
            .iter()
            .map(|t| {
                let terminal = Terminal::new(t.clone(), intake.clone().recipient()).start();
                (t.id.clone(), terminal)
            })
            .collect();

        // The bus consumers, the bridge and the intake system run on the caller's thread;
        // centres and departments on a second one, so that a city's traffic uses two cores.
        let worker = Arbiter::new();
        let centres: HashMap<_, _> = catalog
            .centres_in_order()
            .into_iter()
            .map(|centre| {
                let feed = (centre.tier == Tier::City).then(|| intake.clone().recipient());
                let actor =
                    GovernanceCenter::new(centre.clone(), catalog.clone(), publish.clone(), feed);
                let addr = GovernanceCenter::start_in_arbiter(&worker.handle(), move |_| actor);
                (centre.code.clone(), addr)
            })
            .collect();

        let supervisor_actor = Supervisor::new(catalog.clone(), publish.clone());
        let supervisor = Supervisor::start_in_arbiter(&worker.handle(), move |_| supervisor_actor);

        let event_index = Arc::new(DashMap::new());
        let departments: HashMap<_, _> = settings
            .departments
            .iter()
            .filter(|d| !d.external)
            .map(|d| {
                let actor = Department::new(
                    d.clone(),
                    catalog.clone(),
                    publish.clone(),
                    event_index.clone(),
                );
                let addr = Department::start_in_arbiter(&worker.handle(), move |_| actor);
                (d.code.clone(), addr)
            })
            .collect();

        let prefix = &settings.bus.topic_prefix;
        let mut subscriptions = Vec::new();
        let all_but_dead_letters: Vec<Topic> = Topic::ALL
            .into_iter()
            .filter(|t| *t != Topic::DeadLetters)
            .collect();
        subscriptions.push(
            subscribe(
                &bridge,
                format!("{prefix}.intake"),
                all_but_dead_letters.clone(),
                Routes::All(intake.clone().recipient()),
                None,
            )
            .await?,
        );
        subscriptions.push(
            subscribe(
                &bridge,
                format!("{prefix}.supervision"),
                all_but_dead_letters,
                Routes::All(supervisor.clone().recipient()),
                Some(worker.handle()),
            )
            .await?,
        );
        let centre_routes = centres
            .iter()
            .map(|(code, addr)| {
                (
                    SystemId::Governance(code.clone()).to_string(),
                    addr.clone().recipient(),
                )
            })
            .collect();
        subscriptions.push(
            subscribe(
                &bridge,
                format!("{prefix}.governance"),
                vec![
                    Topic::CollaborationRequests,
                    Topic::CollaborationEvents,
                    Topic::CollaborationResults,
                    Topic::Approvals,
                ],
                Routes::ByTarget(centre_routes),
                Some(worker.handle()),
            )
            .await?,
        );
        for (code, addr) in &departments {
            let routes = HashMap::from([(
                SystemId::Department(code.clone()).to_string(),
                addr.clone().recipient(),
            )]);
            subscriptions.push(
                subscribe(
                    &bridge,
                    format!("{prefix}.department.{code}"),
                    vec![
                        Topic::Applications,
                        Topic::CollaborationEvents,
                        Topic::CollaborationResults,
                        Topic::CaseUpdates,
                    ],
                    Routes::ByTarget(routes),
                    Some(worker.handle()),
                )
                .await?,
            );
        }
        tracing::info!(
            terminals = terminals.len(),
            centres = centres.len(),
            departments = departments.len(),
            bus = ?settings.bus.kind,
            "systems started"
        );
        Ok(Self {
            settings,
            catalog,
            bus,
            memory_bus,
            kafka_bus,
            bridge,
            bridge_stats,
            intake,
            terminals: Arc::new(terminals),
            departments: Arc::new(departments),
            centres: Arc::new(centres),
            supervisor,
            event_index,
            subscriptions: Arc::new(tokio::sync::Mutex::new(subscriptions)),
            worker: Arc::new(worker),
            stopping: Arc::default(),
        })
    }

    /// Why the process should not get traffic yet (or any more): shutting down, or consumer
    /// groups still waiting for their partitions. Empty when ready.
    pub async fn not_ready(&self) -> Vec<String> {
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return vec!["shutting down".into()];
        }
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
            })
            .collect()
    }

    /// Stops consuming (each consumer finishes what it handed out and commits), then waits
    /// until every queued publish is on the bus and the producer is flushed.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let mut subscriptions = std::mem::take(&mut *self.subscriptions.lock().await);
        for subscription in &subscriptions {
            subscription.stop();
        }
        for subscription in &mut subscriptions {
            subscription.stopped().await;
        }
        if self.bridge.send(Drain).await.is_err() {
            tracing::warn!("bridge already stopped; queued publishes may be lost");
        }
        self.bus.shutdown().await;
        self.worker.stop();
        tracing::info!("systems stopped");
    }
}

async fn subscribe(
    bridge: &Addr<Bridge>,
    group: String,
    topics: Vec<Topic>,
    routes: Routes,
    arbiter: Option<actix_rt::ArbiterHandle>,
) -> anyhow::Result<SubscriptionHandle> {
    let handle = bridge
        .send(Subscribe {
            group: group.clone(),
            topics,
            routes,
            arbiter,
        })
        .await
        .context("the bridge actor stopped during start-up")?
        .with_context(|| format!("failed to start consumer group {group}"))?;
    Ok(handle)
}
