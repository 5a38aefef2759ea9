//! The intake feed (DESIGN.md step 2): applications after a cursor, oldest first, for a
//! governance process that does not run the intake system.

use super::access::require;
use super::error::Result;
use super::locate::served;
use crate::actors::intake::TakeNewApplications;
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
#[derive(Deserialize)]
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
    Ok(HttpResponse::Ok().json(batch))
}
