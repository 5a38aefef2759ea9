//! The intake feed (DESIGN.md step 2): applications after a cursor, oldest first, for a
//! governance process that does not run the intake system.

use super::access::require;
use super::error::{ErrorBody, Result};
use super::locate::served;
use crate::actors::intake::{FedApplication, TakeNewApplications};
use crate::auth::{Grant, Principal};
use crate::systems::Systems;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use std::time::Duration;

/// Mounts the endpoint under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/intake/feed", web::get().to(feed));
}

/// Query of the intake feed.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// The last sequence number already taken.
    #[serde(default)]
    after: u64,
    /// Most applications to return (1–5000, default 500).
    #[serde(default = "default_feed_max")]
    max: usize,
    /// How long to wait for a new application when there is none, in ms (at most 30000).
    #[serde(default)]
    wait_ms: u64,
}

/// The default of [`FeedQuery::max`].
fn default_feed_max() -> usize {
    500
}

/// The applications after `after`; none when the wait runs out first.
#[utoipa::path(
    get,
    path = "/api/v1/intake/feed",
    tag = "intake",
    params(FeedQuery),
    responses(
        (status = 200, description = "The applications after `after`, oldest first, each applicant sealed; empty when the wait ran out. The header `govfusion-intake-instance` names the intake process answering (`instance/instances`, e.g. `0/1`)", body = Vec<FedApplication>),
        (status = 404, description = "`not_served_here`: this process does not run the intake system", body = ErrorBody),
        (status = 503, description = "`unavailable`: the intake system did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn feed(
    systems: web::Data<Systems>,
    caller: Principal,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse> {
    require(&caller, "read the intake feed", |grant| {
        matches!(grant, Grant::Service)
    })?;
    served(&systems, systems.roles.intake, "the intake system")?;
    let query = query.into_inner();
    let wait = Duration::from_millis(query.wait_ms.min(30_000));
    let request = systems.desks.intake.feed.send(TakeNewApplications {
        after: query.after,
        max: query.max.clamp(1, 5000),
        wait: !wait.is_zero(),
    });
    // Without a wait the intake system answers at once, with what there is: the request is
    // not cut short (it would miss what is there). With one, it answers when there is some.
    let batch = if wait.is_zero() {
        request.await?
    } else {
        match tokio::time::timeout(wait, request).await {
            Ok(batch) => batch?,
            Err(_) => Vec::new(),
        }
    };
    // Which of the city's intake processes answers: a city centre reading several feeds
    // checks that each URL leads to the instance it expects.
    let service = &systems.settings.service;
    let instance = crate::bus::Share {
        instance: service.intake_instance,
        instances: service.intake_instances,
    };
    Ok(HttpResponse::Ok()
        .insert_header((INTAKE_INSTANCE_HEADER, instance.to_string()))
        .json(batch))
}

/// The header of the feed's answer that names the intake process answering: `instance/instances`.
pub const INTAKE_INSTANCE_HEADER: &str = "govfusion-intake-instance";
