//! Liveness and readiness, outside `/api/v1`: `/healthz` answers while the process runs,
//! `/readyz` only once it should get traffic.

use super::error::{ApiError, Result};
use crate::systems::Systems;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Mounts `/healthz` and `/readyz`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// Alive: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready for traffic: start-up has rebuilt state and views, every consumer group has its
/// partitions, the bus has refused nothing for good lately (`bridge.refused_unready_ms`) and the
/// process is not stopping; otherwise 503 saying what it waits for
/// ([`Systems::not_ready`](crate::systems::Systems::not_ready)).
async fn readyz(systems: web::Data<Systems>) -> Result<HttpResponse> {
    let waiting = systems.not_ready().await;
    if waiting.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({ "status": "ready" })));
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        waiting.join("; "),
    ))
}
