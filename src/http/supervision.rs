//! The supervision figures (监督评价考核) of departments and of governance centres over a period,
//! for dashboards. The supervision system runs with the governance role.

use super::access::require;
use super::error::{ApiError, Result};
use super::locate::served;
use crate::actors::supervisor::{GetCentreFigures, GetDepartmentFigures, Period};
use crate::auth::{Grant, Principal};
use crate::systems::Systems;
use actix::{Message, Recipient};
use actix_web::{web, HttpResponse};

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/supervision/departments",
        web::get().to(department_figures),
    )
    .route("/supervision/centers", web::get().to(centre_figures));
}

/// Every department's figures over the period, for a supervisor.
async fn department_figures(
    systems: web::Data<Systems>,
    caller: Principal,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    require(&caller, "read the departments' figures", |grant| {
        matches!(grant, Grant::Supervisor)
    })?;
    let desk = &systems.desks.supervision.departments;
    let figures = figures(&systems, desk, period.into_inner(), GetDepartmentFigures).await?;
    Ok(HttpResponse::Ok().json(figures))
}

/// The governance centres' figures over the period: every centre's for a supervisor, those of
/// its own subtree for a centre's dispatcher.
async fn centre_figures(
    systems: web::Data<Systems>,
    caller: Principal,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    require(&caller, "read the centres' figures", |grant| {
        matches!(grant, Grant::Supervisor | Grant::Dispatcher(_))
    })?;
    let desk = &systems.desks.supervision.centres;
    let mut figures = figures(&systems, desk, period.into_inner(), GetCentreFigures).await?;
    if let Grant::Dispatcher(own) = &caller.grant {
        figures.retain(|f| systems.catalog.within(&f.centre, own));
    }
    Ok(HttpResponse::Ok().json(figures))
}

/// Asks the supervision system at `desk` for the figures over `period` (`ask` builds the
/// message), once the period is checked.
async fn figures<M>(
    systems: &Systems,
    desk: &Recipient<M>,
    period: Period,
    ask: fn(Period) -> M,
) -> Result<M::Result>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    served(systems, systems.roles.governance, "the supervision system")?;
    check_period(&period)?;
    Ok(desk.send(ask(period)).await?)
}

/// Refuses a period that ends before it starts.
fn check_period(period: &Period) -> Result<()> {
    match (period.from, period.to) {
        (Some(from), Some(to)) if from > to => Err(ApiError::invalid(
            "invalid_period",
            format!("`from` ({from}) is after `to` ({to})"),
        )),
        _ => Ok(()),
    }
}
