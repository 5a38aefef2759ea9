//! The supervision figures (监督评价考核) of departments and of governance centres over a period,
//! for dashboards. The supervision system runs with the governance role; a process that keeps a
//! case repository answers from it by SQL, once the rows the supervisor handed on are written,
//! and one without asks the supervision system.

use super::access::require;
use super::error::{ApiError, ErrorBody, Result};
use super::locate::served;
use crate::actors::supervisor::{
    stored_centre_figures, stored_department_figures, CentreFigures, DepartmentFigures,
    GetCentreFigures, GetDepartmentFigures, Period,
};
use crate::auth::{Grant, Principal};
use crate::store::{CaseRepository, StoreError};
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
#[utoipa::path(
    get,
    path = "/api/v1/supervision/departments",
    tag = "supervision",
    params(Period),
    responses(
        (status = 200, description = "Every department's figures over the period", body = Vec<DepartmentFigures>),
        (status = 404, description = "`not_served_here`: this process does not run the governance role", body = ErrorBody),
        (status = 422, description = "`invalid_period`: `from` is after `to`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the supervision system or the case repository did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn department_figures(
    systems: web::Data<Systems>,
    caller: Principal,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    require(&caller, "read the departments' figures", |grant| {
        matches!(grant, Grant::Supervisor)
    })?;
    let period = period.into_inner();
    let figures = match stored(&systems, &period).await? {
        Some(repository) => stored_department_figures(repository, &systems.catalog, period)
            .await
            .map_err(unanswered)?,
        None => {
            let desk = &systems.desks.supervision.departments;
            figures(desk, period, GetDepartmentFigures).await?
        }
    };
    Ok(HttpResponse::Ok().json(figures))
}

/// The governance centres' figures over the period: every centre's for a supervisor, those of
/// its own subtree for a centre's dispatcher.
#[utoipa::path(
    get,
    path = "/api/v1/supervision/centers",
    tag = "supervision",
    params(Period),
    responses(
        (status = 200, description = "The centres' figures over the period (a dispatcher's: its subtree)", body = Vec<CentreFigures>),
        (status = 404, description = "`not_served_here`: this process does not run the governance role", body = ErrorBody),
        (status = 422, description = "`invalid_period`: `from` is after `to`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the supervision system or the case repository did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn centre_figures(
    systems: web::Data<Systems>,
    caller: Principal,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    require(&caller, "read the centres' figures", |grant| {
        matches!(grant, Grant::Supervisor | Grant::Dispatcher(_))
    })?;
    let period = period.into_inner();
    let mut figures = match stored(&systems, &period).await? {
        Some(repository) => stored_centre_figures(repository, &systems.catalog, period)
            .await
            .map_err(unanswered)?,
        None => {
            let desk = &systems.desks.supervision.centres;
            figures(desk, period, GetCentreFigures).await?
        }
    };
    if let Grant::Dispatcher(own) = &caller.grant {
        figures.retain(|f| systems.catalog.within(&f.centre, own));
    }
    Ok(HttpResponse::Ok().json(figures))
}

/// Asks the supervision system at `desk` for the figures over `period` (`ask` builds the
/// message).
async fn figures<M>(desk: &Recipient<M>, period: Period, ask: fn(Period) -> M) -> Result<M::Result>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    Ok(desk.send(ask(period)).await?)
}

/// The repository to compute the figures over `period` from, once the period is checked and
/// every row handed on so far is written; none when the process keeps none.
async fn stored<'a>(systems: &'a Systems, period: &Period) -> Result<Option<&'a CaseRepository>> {
    served(systems, systems.roles.governance, "the supervision system")?;
    check_period(period)?;
    let Some(repository) = &systems.repository else {
        return Ok(None);
    };
    systems.rows_written().await;
    Ok(Some(repository))
}

/// The answer when the repository fails: logged, and 503 for the caller to try again.
fn unanswered(error: StoreError) -> ApiError {
    tracing::error!(%error, "computing the supervision figures failed");
    ApiError::unavailable("the case repository did not answer; try again")
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
