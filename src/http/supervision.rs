//! The supervision figures (监督评价考核) of departments and of governance centres over a period,
//! for dashboards. The supervision system runs with the governance role.

use super::error::{ApiError, Result};
use super::locate::served;
use crate::actors::supervisor::{GetCentreFigures, GetDepartmentFigures, Period};
use crate::systems::Systems;
use actix::{Message, Recipient};
use actix_web::{web, HttpResponse};
use serde::Serialize;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/supervision/departments",
        web::get().to(department_figures),
    )
    .route("/supervision/centers", web::get().to(centre_figures));
}

/// Every department's figures over the period.
async fn department_figures(
    systems: web::Data<Systems>,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    let desk = &systems.desks.supervision.departments;
    figures(&systems, desk, period.into_inner(), GetDepartmentFigures).await
}

/// Every governance centre's figures over the period.
async fn centre_figures(
    systems: web::Data<Systems>,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    let desk = &systems.desks.supervision.centres;
    figures(&systems, desk, period.into_inner(), GetCentreFigures).await
}

/// Asks the supervision system at `desk` for the figures over `period` (`ask` builds the
/// message), once the period is checked.
async fn figures<M>(
    systems: &Systems,
    desk: &Recipient<M>,
    period: Period,
    ask: fn(Period) -> M,
) -> Result<HttpResponse>
where
    M: Message + Send + 'static,
    M::Result: Serialize + Send,
{
    served(systems, systems.roles.governance, "the supervision system")?;
    check_period(&period)?;
    let figures = desk.send(ask(period)).await?;
    Ok(HttpResponse::Ok().json(figures))
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
