//! What the staff of a governance centre do: read the returned events waiting there for a
//! department, and send one to another department.

use super::access::{dispatcher_of, named};
use super::error::{acted, ApiError, ErrorBody, Result};
use super::locate::served;
use crate::actors::governance_center::{AwaitingEvent, GetAwaiting, ReassignEvent};
use crate::auth::Principal;
use crate::domain::{CentreCode, CollaborationEvent, DepartmentCode, EventId};
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
#[utoipa::path(
    get,
    path = "/api/v1/governance/centers/{code}/returned",
    tag = "centres",
    params(("code" = String, Path, description = "The centre, as `GET /api/v1/governance/centers` lists them")),
    responses(
        (status = 200, description = "The returned events waiting for reassignment, each with its returns", body = Vec<AwaitingEvent>),
        (status = 404, description = "`unknown_centre`; `not_served_here`: this process does not run the governance role", body = ErrorBody),
        (status = 503, description = "`unavailable`: the centre did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    /// The department that must handle the event now.
    department: DepartmentCode,
}

/// Sends a returned event to the department named.
#[utoipa::path(
    post,
    path = "/api/v1/governance/centers/{code}/events/{event_id}/reassign",
    tag = "centres",
    params(
        ("code" = String, Path, description = "The centre where the event waits"),
        ("event_id" = String, Path, description = "The returned event"),
    ),
    request_body = ReassignBody,
    responses(
        (status = 200, description = "The event, routed to the department with a fresh deadline", body = CollaborationEvent),
        (status = 202, description = "The reassignment, recorded; its message is sent until the bus takes it", body = CollaborationEvent),
        (status = 404, description = "`unknown_centre`; `not_waiting`: no such event waits here; `not_served_here`", body = ErrorBody),
        (status = 422, description = "`unknown_department`; `invalid_field`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the centre did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
