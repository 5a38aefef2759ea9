//! What the staff of a governance centre do: read the returned events waiting there for a
//! department, and send one to another department.

use super::access::{dispatcher_of, named};
use super::error::{acted, ApiError, Result};
use super::locate::served;
use crate::actors::governance_center::{GetAwaiting, ReassignEvent};
use crate::auth::Principal;
use crate::domain::{CentreCode, DepartmentCode, EventId};
use crate::systems::{CentreDesk, Systems};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/governance/centers/{code}/returned",
        web::get().to(returned),
    )
    .route(
        "/governance/centers/{code}/events/{event_id}/reassign",
        web::post().to(reassign),
    );
}

/// The desk of the centre `code`.
fn centre<'a>(systems: &'a Systems, code: &CentreCode) -> Result<&'a CentreDesk> {
    served(systems, systems.roles.governance, "the governance centres")?;
    systems.desks.centres.get(code).ok_or_else(|| {
        ApiError::not_found(
            "unknown_centre",
            format!("no governance centre `{code}`; GET /api/v1/governance/centers lists them"),
        )
    })
}

/// The returned events waiting at the centre.
async fn returned(
    systems: web::Data<Systems>,
    caller: Principal,
    code: web::Path<CentreCode>,
) -> Result<HttpResponse> {
    dispatcher_of(&caller, &code)?;
    let list = centre(&systems, &code)?.returned.send(GetAwaiting).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Body of a reassignment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    /// The department that must handle the event now.
    department: DepartmentCode,
}

/// Sends a returned event to the department named.
async fn reassign(
    systems: web::Data<Systems>,
    caller: Principal,
    path: web::Path<(CentreCode, String)>,
    body: web::Json<ReassignBody>,
) -> Result<HttpResponse> {
    let (code, event_id) = path.into_inner();
    dispatcher_of(&caller, &code)?;
    let department = body.into_inner().department;
    let limit = systems.settings.input.code_max_chars;
    super::input::within("department", department.as_str(), limit)?;
    let reassign = ReassignEvent {
        event_id: EventId::from_string(event_id),
        department,
        officer: named(&caller),
    };
    let event = centre(&systems, &code)?.reassign.send(reassign).await??;
    acted(StatusCode::OK, event)
}
