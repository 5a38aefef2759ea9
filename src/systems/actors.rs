//! Connects to the bus and starts the actors of this process's roles.

use crate::actors::department::Department;
use crate::actors::governance_center::GovernanceCenter;
use crate::actors::intake::{IntakeShare, IntakeSystem};
use crate::actors::supervisor::Supervisor;
use crate::actors::terminal::{SubmitApplication, Terminal};
use crate::bus::kafka::KafkaBus;
use crate::bus::memory::MemoryBus;
use crate::bus::{Bus, Share};
use crate::catalog::Catalog;
use crate::domain::{CentreCode, DepartmentCode, EventId, TerminalId};
use crate::maps::Map;
use crate::maps::SharedMap;
use crate::port::Publish;
use crate::settings::{BusKind, Roles, Settings};
use crate::store::{CaseRepository, CaseWriter, ClosedStates};
use actix::prelude::*;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// The bus the systems run on, with its concrete handle for tests and tools.
pub(super) struct Connected {
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// The in-memory bus, when that is the kind.
    pub memory_bus: Option<MemoryBus>,
    /// The Kafka bus, when that is the kind (kafka or embedded).
    pub kafka_bus: Option<KafkaBus>,
}

impl Connected {
    /// A bus of the configured kind, new (an in-memory one ends with these systems).
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        Ok(match settings.bus.kind {
            BusKind::Memory => Self::memory(MemoryBus::new(&settings.bus)),
            BusKind::Kafka | BusKind::Embedded => {
                let bus = KafkaBus::connect_with_audit(&settings.bus, &settings.audit)
                    .await
                    .context("Failed to connect to the Kafka cluster")?;
                Self {
                    bus: Arc::new(bus.clone()),
                    memory_bus: None,
                    kafka_bus: Some(bus),
                }
            }
        })
    }

    /// An in-memory bus that exists already (perhaps from systems that ran before).
    pub fn memory(bus: MemoryBus) -> Self {
        Self {
            bus: Arc::new(bus.clone()),
            memory_bus: Some(bus),
            kafka_bus: None,
        }
    }
}

/// The actors of one process, started.
pub(super) struct Actors {
    /// The intake system (idle unless the process runs the `intake` role).
    pub intake: Addr<IntakeSystem>,
    /// Terminals by id (none unless the process runs `intake`).
    pub terminals: Map<TerminalId, Recipient<SubmitApplication>>,
    /// Governance centres by code (none unless the process runs `governance`).
    pub centres: Map<CentreCode, Addr<GovernanceCenter>>,
    /// The supervision system (idle unless the process runs `governance`).
    pub supervisor: Addr<Supervisor>,
    /// Departments of the process's roles, by code.
    pub departments: Map<DepartmentCode, Addr<Department>>,
    /// Which manual department holds which waiting collaboration event.
    pub event_index: Arc<SharedMap<EventId, DepartmentCode>>,
    /// The thread the centres, departments and supervision run on.
    pub worker: Arbiter,
}

impl Actors {
    /// Starts every actor of `roles`, publishing through `publish`; the stateful ones write
    /// snapshots when `bus` outlives the process, the intake system issues and follows the
    /// cases of its share ([`intake_share`]), and the intake and supervision systems of the
    /// roles keep their records in `repository` (written through its writer) when given — the
    /// supervision system keeping only its open cases in memory unless
    /// `store.supervision_keeps_closed`; centres and departments find the closed markers of
    /// cases they closed before in `closed_states`, when given. The intake system and the
    /// terminals run on the caller's thread; centres, departments and supervision on a second
    /// one (the bridge and the consumers it starts have a third, see [`super::Systems`]), so
    /// that a city's traffic uses several cores.
    pub fn start(
        settings: &Settings,
        roles: &Roles,
        catalog: &Arc<Catalog>,
        publish: Recipient<Publish>,
        bus: &dyn Bus,
        repository: Option<(CaseWriter, CaseRepository)>,
        closed_states: Option<ClosedStates>,
    ) -> Self {
        let persist_state = bus.outlives_process();
        let submit_timeout = Duration::from_millis(settings.service.submit_timeout_ms);
        let mut intake = IntakeSystem::new(
            catalog.clone(),
            publish.clone(),
            persist_state,
            submit_timeout,
        )
        .refusing_over(settings.bus.max_application_bytes())
        .sharing(intake_share(settings, bus));
        if let Some((writer, cases)) = repository.clone().filter(|_| roles.intake) {
            let store = &settings.store;
            let (keep_open, keep_closed) =
                (store.open_cases_in_memory, store.closed_cases_in_memory);
            intake = intake.keeping_cases_in(writer, cases, keep_open, keep_closed);
        }
        let intake = intake.start();
        let terminals = settings
            .terminals
            .iter()
            .filter(|_| roles.intake)
            .map(|t| {
                let terminal = Terminal::new(t.clone(), intake.clone().recipient()).start();
                (t.id.clone(), terminal.recipient())
            })
            .collect();
        let worker = Arbiter::new();
        let centres = catalog
            .centres_in_order()
            .into_iter()
            .filter(|_| roles.governance)
            .map(|centre| {
                let actor = GovernanceCenter::new(
                    centre.clone(),
                    catalog.clone(),
                    publish.clone(),
                    persist_state,
                )
                .finding_closed_cases_in(closed_states.clone());
                let addr = GovernanceCenter::start_in_arbiter(&worker.handle(), move |_| actor);
                (centre.code.clone(), addr)
            })
            .collect();
        let mut supervisor_actor = Supervisor::new(catalog.clone(), publish.clone());
        if let Some((rows, cases)) = repository.filter(|_| roles.governance) {
            supervisor_actor = supervisor_actor.writing_rows_to(rows);
            if !settings.store.supervision_keeps_closed {
                supervisor_actor = supervisor_actor.keeping_open_cases_only(cases, !persist_state);
            }
        }
        let supervisor = Supervisor::start_in_arbiter(&worker.handle(), move |_| supervisor_actor);
        let event_index = Arc::new(SharedMap::default());
        let departments = settings
            .departments
            .iter()
            .filter(|d| roles.runs_department(&d.code))
            .map(|d| {
                let actor = Department::new(
                    d.clone(),
                    catalog.clone(),
                    publish.clone(),
                    persist_state,
                    event_index.clone(),
                )
                .finding_closed_cases_in(closed_states.clone());
                let addr = Department::start_in_arbiter(&worker.handle(), move |_| actor);
                (d.code.clone(), addr)
            })
            .collect();
        Self {
            intake,
            terminals,
            centres,
            supervisor,
            departments,
            event_index,
            worker,
        }
    }
}

/// Which cases this process's intake system issues and follows: its share of the partitions of
/// `bus`, when the city runs several intake processes; all of them otherwise.
pub(super) fn intake_share(settings: &Settings, bus: &dyn Bus) -> IntakeShare {
    let share = Share {
        instance: settings.service.intake_instance,
        instances: settings.service.intake_instances,
    };
    IntakeShare::new(share, settings.bus.partitions, bus.partitioner())
}
