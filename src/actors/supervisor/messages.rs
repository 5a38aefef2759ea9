//! What the supervisor takes: the figure requests and their answers, its open records taken
//! back at start, the question of what it holds, and its own timer tick.

use crate::domain::{CentreCode, DepartmentCode, Tier};
use actix::prelude::*;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The period figures cover: items received from `from` to `to`, local dates, both included.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day; none: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last day; none: up to now.
    pub to: Option<NaiveDate>,
}

impl Period {
    /// Whether `day` lies in the period.
    pub(super) fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }
}

/// Figures of every department.
#[derive(Message)]
#[rtype(result = "Vec<DepartmentFigures>")]
pub struct GetDepartmentFigures(pub Period);

/// Figures of every governance centre.
#[derive(Message)]
#[rtype(result = "Vec<CentreFigures>")]
pub struct GetCentreFigures(pub Period);

/// The records of cases whose supervision is open, as the case repository holds them, read at
/// start a page at a time: the supervisor keeps them in memory and follows them on from there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeBackRecords(
    /// Each open case's records.
    pub Vec<crate::store::supervision::SupervisedRecords>,
);

/// What the supervisor holds in memory, for an operator and for tests.
#[derive(Message)]
#[rtype(result = "Watched")]
pub struct Holding;

/// What [`Holding`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Watched {
    /// Cases in memory.
    pub cases: usize,
    /// Events in memory.
    pub events: usize,
    /// Of the cases in memory, those whose supervision is over: they leave memory once their
    /// rows are written (when the supervisor keeps only open cases).
    pub over: usize,
}

/// Checks the deadlines now (sent by the actor to itself every
/// `supervision.check_interval_ms`).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Check;

/// Counts and handling times of a set of work items (cases or collaboration events).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    /// Items received in the period.
    pub received: usize,
    /// Of those, finished (cases decided, events answered).
    pub completed: usize,
    /// Of those, finished by their deadline.
    pub completed_on_time: usize,
    /// `completed_on_time / completed`; none when nothing was completed.
    pub on_time_rate: Option<f64>,
    /// Mean working hours from receipt to finish, over the completed items.
    pub average_handling_hours: Option<f64>,
    /// 90th percentile (nearest rank) of the same.
    pub p90_handling_hours: Option<f64>,
    /// Items not finished and past their deadline now (a suspended case is not: its clock is
    /// stopped).
    pub open_overdue: usize,
}

/// Ratings (好差评) of a department's cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatingFigures {
    /// Cases rated.
    pub count: usize,
    /// Mean score, 1–5; none when no case was rated.
    pub average: Option<f64>,
}

/// One department's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepartmentFigures {
    /// Department code.
    pub department: DepartmentCode,
    /// Its name.
    pub name: String,
    /// Cases it accepted in the period.
    pub cases: Figures,
    /// Collaboration events dispatched to it in the period.
    pub collaborations: Figures,
    /// Of those events, how many it returned (退单).
    pub returns: usize,
    /// Of those events, how many were escalated (督办) for want of its answer.
    pub escalations: usize,
    /// Ratings of the cases it accepted in the period.
    pub ratings: RatingFigures,
}

/// One governance centre's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CentreFigures {
    /// Centre code.
    pub centre: CentreCode,
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: Tier,
    /// Collaboration events routed through it in the period (each dispatch to a department
    /// counts once for every centre on its route).
    pub events: Figures,
    /// Returns it handled: events it dispatched that the department returned.
    pub returns: usize,
    /// Escalations it received.
    pub escalations: usize,
}
