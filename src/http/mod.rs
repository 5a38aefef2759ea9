//! The HTTP API (actix-web): terminals submit, applicants query, supplement and rate their case,
//! staff of manual departments decide and handle collaboration events, centres reassign returned
//! events, dashboards read the supervision figures and the city's configuration. JSON in and
//! out; every error is `{ "error": code, "message": text }`, with `"field"` when one field of
//! the body was wrong (see [`error`]).
//!
//! # Layout
//!
//! One module per resource, each mounting its own routes; they reach the systems through the
//! desks of [`Systems`] (`Recipient`s), never through an actor's address:
//!
//! * `health` — `/healthz`, `/readyz`.
//! * `metrics` — `/metrics` for Prometheus, and the middleware that counts every request.
//! * `catalogue` — the city's matters, terminals, departments and centres.
//! * `terminals` — submit an application, supply materials, rate a case.
//! * `cases` — a case as the applicant sees it.
//! * `intake_feed` — the intake feed for a governance process elsewhere.
//! * `departments` — a department's inbox, decisions and supplement requests.
//! * `collaborations` — answer, sign, return a collaboration event, or ask for more time.
//! * `centres` — a centre's returned events and their reassignment.
//! * `supervision` — the supervision figures.
//! * `operations` — for an operator: stalled cases, and re-driving one.
//! * [`openapi`] — this API's contract as OpenAPI 3.1, generated from the handlers.
//!
//! Below them, used by several and using none of them: `locate` (finds the system a request
//! is for, or refuses it), `input` (checks of bodies: the limits of `[input]`, an
//! application's identity number and phone), [`error`] (the errors, and the systems' refusals
//! as errors).
//!
//! Around them, middlewares that know no resource: `body_deadline` (a body that does not
//! arrive in time gets 408, on every request), [`idempotency`] (`Idempotency-Key` on every
//! POST under `/api/v1`), `rate_limit` (429 past a client's budget), `cors` (browsers' access
//! from the origins of `http.cors_allowed_origins`) and `security_headers` (`nosniff`,
//! `no-store` on what may carry personal data, and the like, on every response), and `metrics::track`
//! (every request counted and timed by its route pattern); around the API, `audit` records who did what (see
//! [`crate::audit`]).

mod access;
mod audit;
mod body_deadline;
mod cases;
mod catalogue;
mod centres;
mod collaborations;
mod cors;
mod departments;
pub mod error;
mod health;
pub mod idempotency;
mod input;
pub mod intake_feed;
mod locate;
mod metrics;
pub mod openapi;
mod operations;
mod rate_limit;
mod security_headers;
mod supervision;
mod terminals;

use crate::auth::Authenticator;
use crate::systems::Systems;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context as _;
use error::{ApiError, Result};
use idempotency::{store::Store, Idempotency};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Binds the listener and builds the server (not yet running). Returns it with the bound port.
/// Every request's bearer token is checked by `authenticator`.
pub fn server(systems: Systems, authenticator: Authenticator) -> anyhow::Result<(Server, u16)> {
    let http = systems.settings.http.clone();
    let listener = TcpListener::bind(&http.bind)
        .with_context(|| format!("Failed to bind the HTTP listener to {}", http.bind))?;
    let address = listener
        .local_addr()
        .context("Failed to read the bound address")?;
    let port = address.port();
    let limit = http.max_body_bytes;
    let body_timeout = Duration::from_millis(http.body_timeout_ms);
    // One store for every worker: a retry may land on another worker than the first request.
    let idempotency = Idempotency {
        store: Arc::new(Store::new(
            Duration::from_secs(http.idempotency_ttl_secs),
            http.idempotency_max_entries,
        )),
        max_body_bytes: limit,
    };
    let rate_limit = rate_limit::RateLimit::new(&http.rate_limit);
    let cors_origins = http.cors_allowed_origins.clone();
    let hsts = http.hsts;
    let state = web::Data::new(systems);
    let authenticator = web::Data::new(authenticator);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(authenticator.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(error::json_error),
            )
            .app_data(web::PayloadConfig::default().limit(limit))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .wrap(from_fn(move |req, next| {
                body_deadline::guard(body_timeout, req, next)
            }))
            .wrap(from_fn({
                let limit = rate_limit.clone();
                move |req, next| rate_limit::guard(limit.clone(), req, next)
            }))
            .wrap(cors::middleware(&cors_origins))
            .wrap(from_fn(move |req, next| {
                security_headers::add(hsts, req, next)
            }))
            .wrap(tracing_actix_middleware())
            .wrap(from_fn(metrics::track))
            .configure(|cfg| configure(cfg, idempotency.clone(), address))
    })
    .workers(http.workers.max(1))
    .client_request_timeout(Duration::from_millis(http.head_timeout_ms))
    .client_disconnect_timeout(Duration::from_millis(http.disconnect_timeout_ms))
    // Signals are handled by the caller, which also drains the bus before exiting.
    .disable_signals()
    .listen(listener)
    .context("Failed to start the HTTP server")?
    .run();
    Ok((server, port))
}

/// Mounts every endpoint, `Idempotency-Key` on the API's POSTs, the people's screens (which
/// call the API at `address`), and a JSON 404 for everything else.
fn configure(cfg: &mut web::ServiceConfig, idempotency: Idempotency, address: SocketAddr) {
    cfg.configure(health::configure)
        .configure(metrics::configure)
        .configure(|cfg| crate::pages::configure(cfg, address))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(move |req, next| {
                    idempotency::guard(idempotency.clone(), req, next)
                }))
                .wrap(from_fn(audit::record))
                .configure(catalogue::configure)
                .configure(terminals::configure)
                .configure(cases::configure)
                .configure(intake_feed::configure)
                .configure(departments::configure)
                .configure(collaborations::configure)
                .configure(centres::configure)
                .configure(supervision::configure)
                .configure(operations::configure)
                .configure(openapi::configure),
        )
        .default_service(web::to(not_found));
}

/// The refusal of a path no endpoint serves.
async fn not_found(req: HttpRequest) -> Result<HttpResponse> {
    Err(ApiError::not_found(
        "not_found",
        format!("no endpoint {} {}", req.method(), req.path()),
    ))
}

/// Logs each request (method, path, status, time) at info level.
fn tracing_actix_middleware() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%r %s %Dms").log_target("govfusion::http")
}
