//! What the clients of a running process (the HTTP API, the simulator, tests) may ask of each
//! system: one `Recipient` per message the system takes from outside, so that a client depends
//! on the messages, never on the actor behind them (STYLE.md rule 4). Each desk is built from the
//! actor's address where the actors are started (`Systems::start_connected`).

use crate::actors::department::{
    AnswerCollaboration, Decide, Department, GetInbox, RequestExtension, RequestSupplement,
    ReturnEvent, SignEvent,
};
use crate::actors::governance_center::{GetAwaiting, GovernanceCenter, ReassignEvent};
use crate::actors::intake::{
    AwaitCompletion, GetCase, Holding, IntakeSystem, ListStalled, OwnCases, RateCase, RedriveCase,
    SupplementCase, TakeNewApplications,
};
use crate::actors::supervisor::{self, GetCentreFigures, GetDepartmentFigures, Supervisor};
use crate::actors::terminal::SubmitApplication;
use crate::actors::GetHolding;
use crate::domain::{CentreCode, DepartmentCode, TerminalId};
use crate::maps::Map;
use actix::{Addr, Recipient};
use std::sync::Arc;

/// Every desk of one process: those of the systems its roles run.
#[derive(Clone)]
pub struct Desks {
    /// The intake system (its actor idles unless this process runs the `intake` role).
    pub intake: IntakeDesk,
    /// Where each terminal takes applications, by terminal id (none unless this process runs
    /// `intake`).
    pub terminals: Arc<Map<TerminalId, Recipient<SubmitApplication>>>,
    /// Departments by code (those of this process's roles).
    pub departments: Arc<Map<DepartmentCode, DepartmentDesk>>,
    /// Governance centres by code (none unless this process runs `governance`).
    pub centres: Arc<Map<CentreCode, CentreDesk>>,
    /// The supervision system (its actor idles unless this process runs `governance`).
    pub supervision: SupervisionDesk,
}

impl Desks {
    /// The desks of the actors started at these addresses.
    pub fn new(
        intake: &Addr<IntakeSystem>,
        terminals: Map<TerminalId, Recipient<SubmitApplication>>,
        departments: &Map<DepartmentCode, Addr<Department>>,
        centres: &Map<CentreCode, Addr<GovernanceCenter>>,
        supervisor: &Addr<Supervisor>,
    ) -> Self {
        Self {
            intake: IntakeDesk::new(intake),
            terminals: Arc::new(terminals),
            departments: Arc::new(
                departments
                    .iter()
                    .map(|(code, addr)| (code.clone(), DepartmentDesk::new(addr)))
                    .collect(),
            ),
            centres: Arc::new(
                centres
                    .iter()
                    .map(|(code, addr)| (code.clone(), CentreDesk::new(addr)))
                    .collect(),
            ),
            supervision: SupervisionDesk::new(supervisor),
        }
    }
}

/// What applicants, operators and the city centre's feed ask of the intake system.
#[derive(Clone)]
pub struct IntakeDesk {
    /// A case as the applicant sees it.
    pub case: Recipient<GetCase>,
    /// An applicant's own cases.
    pub own_cases: Recipient<OwnCases>,
    /// Waits until a case is decided.
    pub await_completion: Recipient<AwaitCompletion>,
    /// The applications after a cursor (the intake feed).
    pub feed: Recipient<TakeNewApplications>,
    /// An applicant's supplementary materials (补正).
    pub supplement: Recipient<SupplementCase>,
    /// An applicant's rating (好差评).
    pub rate: Recipient<RateCase>,
    /// The cases that made no progress, for an operator.
    pub stalled: Recipient<ListStalled>,
    /// Sends a stalled case's current step again, for an operator.
    pub redrive: Recipient<RedriveCase>,
    /// How many cases the intake system holds in memory.
    pub holding: Recipient<Holding>,
}

impl IntakeDesk {
    /// The desk of the intake system at `intake`.
    pub fn new(intake: &Addr<IntakeSystem>) -> Self {
        Self {
            case: intake.clone().recipient(),
            own_cases: intake.clone().recipient(),
            await_completion: intake.clone().recipient(),
            feed: intake.clone().recipient(),
            supplement: intake.clone().recipient(),
            rate: intake.clone().recipient(),
            stalled: intake.clone().recipient(),
            redrive: intake.clone().recipient(),
            holding: intake.clone().recipient(),
        }
    }
}

/// What the staff of one department ask of it.
#[derive(Clone)]
pub struct DepartmentDesk {
    /// The cases and collaboration events waiting for staff.
    pub inbox: Recipient<GetInbox>,
    /// Approves or rejects a case.
    pub decide: Recipient<Decide>,
    /// Asks the applicant for supplementary materials.
    pub request_supplement: Recipient<RequestSupplement>,
    /// Answers a collaboration event.
    pub answer: Recipient<AnswerCollaboration>,
    /// Signs for a collaboration event (签收).
    pub sign: Recipient<SignEvent>,
    /// Returns a collaboration event that is not the department's (退单).
    pub return_event: Recipient<ReturnEvent>,
    /// Asks for more working days on a collaboration event (延期申请).
    pub request_extension: Recipient<RequestExtension>,
    /// What the department holds in memory, for an operator.
    pub holding: Recipient<GetHolding>,
}

impl DepartmentDesk {
    /// The desk of the department at `department`.
    pub fn new(department: &Addr<Department>) -> Self {
        Self {
            inbox: department.clone().recipient(),
            decide: department.clone().recipient(),
            request_supplement: department.clone().recipient(),
            answer: department.clone().recipient(),
            sign: department.clone().recipient(),
            return_event: department.clone().recipient(),
            request_extension: department.clone().recipient(),
            holding: department.clone().recipient(),
        }
    }
}

/// What the staff of one governance centre ask of it.
#[derive(Clone)]
pub struct CentreDesk {
    /// The returned events waiting at the centre for a department.
    pub returned: Recipient<GetAwaiting>,
    /// Sends a returned event to another department.
    pub reassign: Recipient<ReassignEvent>,
    /// What the centre holds in memory, for an operator.
    pub holding: Recipient<GetHolding>,
}

impl CentreDesk {
    /// The desk of the centre at `centre`.
    pub fn new(centre: &Addr<GovernanceCenter>) -> Self {
        Self {
            returned: centre.clone().recipient(),
            reassign: centre.clone().recipient(),
            holding: centre.clone().recipient(),
        }
    }
}

/// What dashboards ask of the supervision system (监督评价考核).
#[derive(Clone)]
pub struct SupervisionDesk {
    /// The figures of every department over a period.
    pub departments: Recipient<GetDepartmentFigures>,
    /// The figures of every governance centre over a period.
    pub centres: Recipient<GetCentreFigures>,
    /// What the supervision system holds in memory.
    pub holding: Recipient<supervisor::Holding>,
}

impl SupervisionDesk {
    /// The desk of the supervision system at `supervisor`.
    pub fn new(supervisor: &Addr<Supervisor>) -> Self {
        Self {
            departments: supervisor.clone().recipient(),
            centres: supervisor.clone().recipient(),
            holding: supervisor.clone().recipient(),
        }
    }
}
