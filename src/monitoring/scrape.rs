//! What is read only when `/metrics` is scraped: whether the process is ready and in which
//! start-up phase, the cases the intake system holds, and the open and overdue work the
//! supervision system knows of. Asking for them at each scrape costs nothing between scrapes.

use super::names;
use crate::actors::intake::Holding;
use crate::actors::supervisor::{
    CentreFigures, DepartmentFigures, GetCentreFigures, GetDepartmentFigures, Period,
};
use crate::domain::Tier;
use crate::systems::Systems;
use metrics::gauge;

/// The start-up phases, as [`Systems::startup_phase`] names them.
const PHASES: [&str; 4] = ["state", "views", "running", "failed"];

/// The metrics of `systems` in the Prometheus text format; `None` when this process has no
/// Prometheus recorder (see [`super::install`]).
pub async fn render(systems: &Systems) -> Option<String> {
    let handle = super::install()?;
    let ready = systems.not_ready().await.is_empty();
    gauge!(names::READY).set(if ready { 1.0 } else { 0.0 });
    let phase = systems.startup_phase();
    for name in PHASES {
        gauge!(names::STARTUP_PHASE, "phase" => name).set(if name == phase { 1.0 } else { 0.0 });
    }
    if systems.roles.intake {
        intake(systems).await;
    }
    if systems.roles.governance {
        supervision(systems).await;
    }
    Some(handle.render())
}

/// The cases the intake system keeps whole in memory, and the open ones it keeps only where
/// they stand (see `store.open_cases_in_memory`). An intake system that does not answer leaves
/// the gauges as the last scrape set them.
async fn intake(systems: &Systems) {
    if let Ok(held) = systems.desks.intake.holding.send(Holding).await {
        gauge!(names::INTAKE_CASES, "held" => "in_memory").set(held.cases as f64);
        gauge!(names::INTAKE_CASES, "held" => "out_of_memory").set(held.away as f64);
    }
}

/// Open and overdue work per department and centre, from the supervision figures over every
/// item the supervision system holds. A supervision system that does not answer leaves the
/// gauges as the last scrape set them.
async fn supervision(systems: &Systems) {
    let desk = &systems.desks.supervision;
    let all = Period::default();
    if let Ok(departments) = desk.departments.send(GetDepartmentFigures(all)).await {
        departments.iter().for_each(department);
    }
    if let Ok(centres) = desk.centres.send(GetCentreFigures(all)).await {
        centres.iter().for_each(centre);
    }
}

/// One department's gauges. An event returned by the department is neither answered nor open
/// there any more.
fn department(figures: &DepartmentFigures) {
    let code = figures.department.to_string();
    let events = &figures.collaborations;
    let open = events
        .received
        .saturating_sub(events.completed)
        .saturating_sub(figures.returns);
    gauge!(names::DEPARTMENT_OPEN_EVENTS, "department" => code.clone()).set(open as f64);
    gauge!(names::DEPARTMENT_OVERDUE, "department" => code.clone(), "item" => "case")
        .set(figures.cases.open_overdue as f64);
    gauge!(names::DEPARTMENT_OVERDUE, "department" => code, "item" => "collaboration")
        .set(events.open_overdue as f64);
}

/// One centre's gauges, labelled with its tier (`city`, `district`, `street`).
fn centre(figures: &CentreFigures) {
    let code = figures.centre.to_string();
    let tier = match figures.tier {
        Tier::City => "city",
        Tier::District => "district",
        Tier::Street => "street",
    };
    let events = &figures.events;
    let open = events
        .received
        .saturating_sub(events.completed)
        .saturating_sub(figures.returns);
    gauge!(names::CENTRE_OPEN_EVENTS, "centre" => code.clone(), "tier" => tier).set(open as f64);
    gauge!(names::CENTRE_OVERDUE, "centre" => code, "tier" => tier).set(events.open_overdue as f64);
}
