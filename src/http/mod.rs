//! The HTTP API (actix-web): terminals submit, applicants query, supplement and rate their case,
//! staff of manual departments decide and handle collaboration events, centres reassign returned
//! events, dashboards read the supervision figures and the city's configuration. JSON in and out; every error is
//! `{ "error": code, "message": text }` (see [`error`]).

pub mod error;
mod lifecycle;
mod routes;

use crate::systems::Systems;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use std::net::TcpListener;

/// Binds the listener and builds the server (not yet running). Returns it with the bound port.
pub fn server(systems: Systems) -> anyhow::Result<(Server, u16)> {
    let http = systems.settings.http.clone();
    let listener = TcpListener::bind(&http.bind)
        .with_context(|| format!("Failed to bind the HTTP listener to {}", http.bind))?;
    let port = listener
        .local_addr()
        .context("Failed to read the bound address")?
        .port();
    let limit = http.max_body_bytes;
    let state = web::Data::new(systems);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(error::json_error),
            )
            .app_data(web::PayloadConfig::default().limit(limit))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .wrap(tracing_actix_middleware())
            .configure(routes::configure)
    })
    .workers(http.workers.max(1))
    // Signals are handled by the caller, which also drains the bus before exiting.
    .disable_signals()
    .listen(listener)
    .context("Failed to start the HTTP server")?
    .run();
    Ok((server, port))
}

/// Logs each request (method, path, status, time) at info level.
fn tracing_actix_middleware() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%r %s %Dms").log_target("govfusion::http")
}
