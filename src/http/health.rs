//! Liveness and readiness, outside `/api/v1`: `/healthz` answers while the process runs,
//! `/readyz` only once it should get traffic.

use super::error::{ApiError, ErrorBody, Result};
use crate::systems::Systems;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;

/// Mounts `/healthz` and `/readyz`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The answer of a probe that passed.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    #[schema(example = "ok")]
    status: &'static str,
}

/// Alive: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process runs: `{\"status\": \"ok\"}`", body = Health))
)]
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Ready for traffic: start-up has rebuilt state and views, every consumer group has its
/// partitions, the bus has refused nothing for good lately (`bridge.refused_unready_ms`) and the
/// process is not stopping; otherwise 503 saying what it waits for
/// (`Systems::not_ready`).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready for traffic: `{\"status\": \"ready\"}`", body = Health),
        (status = 503, description = "`not_ready`: the message says what the process waits for", body = ErrorBody),
    )
)]
pub(super) async fn readyz(systems: web::Data<Systems>) -> Result<HttpResponse> {
    let waiting = systems.not_ready().await;
    if waiting.is_empty() {
        return Ok(HttpResponse::Ok().json(Health { status: "ready" }));
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        waiting.join("; "),
    ))
}
