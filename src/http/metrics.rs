//! `GET /metrics`, the process's metrics in the Prometheus text format (see
//! [`crate::monitoring`]), and the middleware that counts and times every request by the route
//! pattern it matched.
//!
//! Like `/healthz` and `/readyz`, `/metrics` is an operator's endpoint outside `/api/v1`: it
//! needs no token and is never rate-limited, so that a Prometheus server scrapes it with no
//! credentials to keep. What it shows is counts and timings by route pattern, message type,
//! system, consumer group and partition, department and centre: never a case id, a person or
//! a token. Keep the listener (`http.bind`) where only the city's network reaches it, as for
//! the probes.

use super::error::{ApiError, ErrorBody, Result};
use crate::monitoring;
use crate::systems::Systems;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use std::time::Instant;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Mounts `/metrics`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// Every metric of the process, read now, in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Every metric of the process in the Prometheus text format \
            (`text/plain; version=0.0.4`); no token needed, never rate-limited", body = String,
            content_type = "text/plain"),
        (status = 503, description = "`metrics_unavailable`: another metrics recorder was \
            installed in the process first", body = ErrorBody),
    )
)]
pub(super) async fn metrics(systems: web::Data<Systems>) -> Result<HttpResponse> {
    match monitoring::render(&systems).await {
        Some(text) => Ok(HttpResponse::Ok().content_type(TEXT_FORMAT).body(text)),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "this process records no metrics: another metrics recorder was installed in it \
             first",
        )),
    }
}

/// Counts and times a request by method, route pattern (`/api/v1/cases/{case_id}`, or
/// `unmatched` for a path no endpoint serves) and status.
pub(super) async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let response = next.call(req).await;
    let (route, status) = match &response {
        Ok(response) => (
            response.request().match_pattern(),
            response.status().as_u16(),
        ),
        Err(error) => (None, error.as_response_error().status_code().as_u16()),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    monitoring::record::http_request(method, route, status, started.elapsed());
    response
}

/// A method as a label: the standard ones by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
