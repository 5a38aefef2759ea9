//! For an operator: the cases that made no progress for a while, and re-driving one — sending
//! its current step's messages again, with their ids (see the intake system's `stalled`
//! module for why that is safe). Served by a process that runs the intake system, which sees
//! every message of every case.

use super::access::require;
use super::error::{ErrorBody, Result};
use super::locate::served;
use crate::actors::intake::{ListStalled, RedriveCase, Redriven, StalledCases};
use crate::auth::{Grant, Principal};
use crate::domain::CaseId;
use crate::systems::Systems;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// Most cases one listing returns.
const MAX_LISTED: usize = 1000;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operations/stalled", web::get().to(stalled))
        .route(
            "/operations/cases/{case_id}/redrive",
            web::post().to(redrive),
        );
}

/// Query of the stalled cases.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StalledQuery {
    /// Seconds a case must have been idle (default `service.stalled_after_secs`; 0 lists
    /// every case not completed).
    idle_secs: Option<u64>,
    /// Most cases to return (1–1000, default 100), the oldest first.
    #[serde(default = "default_max")]
    max: usize,
}

/// The default of [`StalledQuery::max`].
fn default_max() -> usize {
    100
}

/// The cases not completed whose last step is at least `idle_secs` old, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/operations/stalled",
    tag = "operations",
    params(StalledQuery),
    responses(
        (status = 200, description = "The stalled cases, oldest last step first", body = StalledCases),
        (status = 404, description = "`not_served_here`: this process does not run the intake system", body = ErrorBody),
        (status = 503, description = "`unavailable`: the intake system did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn stalled(
    systems: web::Data<Systems>,
    caller: Principal,
    query: web::Query<StalledQuery>,
) -> Result<HttpResponse> {
    require(&caller, "list stalled cases", |grant| {
        matches!(grant, Grant::Operator)
    })?;
    served(&systems, systems.roles.intake, "the intake system")?;
    let query = query.into_inner();
    let listed = systems
        .desks
        .intake
        .stalled
        .send(ListStalled {
            idle_secs: query
                .idle_secs
                .unwrap_or(systems.settings.service.stalled_after_secs),
            max: query.max.clamp(1, MAX_LISTED),
        })
        .await?;
    Ok(HttpResponse::Ok().json(listed))
}

/// Sends the case's current step again; answers what was sent once it is on the bus.
#[utoipa::path(
    post,
    path = "/api/v1/operations/cases/{case_id}/redrive",
    tag = "operations",
    params(("case_id" = String, Path, description = "The stalled case")),
    responses(
        (status = 200, description = "What was sent again, each message with its own id, now on the bus", body = Redriven),
        (status = 404, description = "`unknown_case`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`case_completed`; `case_failed` (the message names its failure); `nothing_to_redrive`: never published", body = ErrorBody),
        (status = 422, description = "`redrive_refused`: the bus refused a message for good (it is in dead-letters)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the bus did not take the messages (nothing changed, try again), or the intake system did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn redrive(
    systems: web::Data<Systems>,
    caller: Principal,
    case_id: web::Path<String>,
) -> Result<HttpResponse> {
    require(&caller, "re-drive a case", |grant| {
        matches!(grant, Grant::Operator)
    })?;
    served(&systems, systems.roles.intake, "the intake system")?;
    let case_id = CaseId::from_string(case_id.into_inner());
    let redriven = systems
        .desks
        .intake
        .redrive
        .send(RedriveCase(case_id))
        .await??;
    Ok(HttpResponse::Ok().json(redriven))
}
