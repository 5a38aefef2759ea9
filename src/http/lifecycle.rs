//! The endpoints around the main flow: supplementary materials (补正), ratings (好差评), the
//! collaboration event lifecycle at the department (签收 / 退单 / 延期申请), reassignment of
//! returned events at a centre, and the supervision figures (监督评价考核).

use super::error::ApiError;
use super::routes::{department, served, staff_error, unavailable, Result};
use crate::actors::department::{RequestExtension, RequestSupplement, ReturnEvent, SignEvent};
use crate::actors::governance_center::{GetAwaiting, ReassignError, ReassignEvent};
use crate::actors::intake::{CaseActionError, RateCase, SupplementCase};
use crate::actors::supervisor::{GetCentreFigures, GetDepartmentFigures, Period};
use crate::domain::{CaseId, EventId};
use crate::systems::Systems;
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// Mounts the endpoints under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/terminals/{terminal_id}/cases/{case_id}/supplements",
        web::post().to(supplement),
    )
    .route(
        "/terminals/{terminal_id}/cases/{case_id}/rating",
        web::post().to(rate),
    )
    .route(
        "/departments/{code}/cases/{case_id}/supplement-request",
        web::post().to(request_supplement),
    )
    .route("/collaborations/{event_id}/sign", web::post().to(sign))
    .route(
        "/collaborations/{event_id}/return",
        web::post().to(return_event),
    )
    .route(
        "/collaborations/{event_id}/extension",
        web::post().to(extension),
    )
    .route(
        "/governance/centers/{code}/returned",
        web::get().to(awaiting),
    )
    .route(
        "/governance/centers/{code}/events/{event_id}/reassign",
        web::post().to(reassign),
    )
    .route(
        "/supervision/departments",
        web::get().to(department_figures),
    )
    .route("/supervision/centers", web::get().to(centre_figures));
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn case_error(error: CaseActionError) -> ApiError {
    match error {
        CaseActionError::NotFound(m) => ApiError::not_found("unknown_case", m),
        CaseActionError::Conflict(m) => {
            ApiError::new(StatusCode::CONFLICT, "invalid_transition", m)
        }
        CaseActionError::Unavailable(m) => ApiError::unavailable(m),
    }
}

fn check_terminal(systems: &Systems, terminal_id: &str) -> Result<()> {
    served(
        systems,
        systems.roles.intake,
        "the intake system or its terminals",
    )?;
    if systems.terminals.contains_key(terminal_id) {
        return Ok(());
    }
    Err(ApiError::not_found(
        "unknown_terminal",
        format!("no terminal `{terminal_id}`; GET /api/v1/terminals lists them"),
    ))
}

/// Non-empty, trimmed texts; `what` names them in the error.
fn texts(list: Vec<String>, what: &str) -> Result<Vec<String>> {
    let list: Vec<String> = list
        .into_iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if list.is_empty() {
        return Err(invalid("empty_list", format!("name at least one {what}")));
    }
    Ok(list)
}

fn required(text: String, what: &str) -> Result<String> {
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(invalid("missing_reason", format!("give {what}")));
    }
    Ok(text)
}

/// Body of an applicant's supplement.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SupplementBody {
    /// The materials supplied.
    materials: Vec<String>,
}

async fn supplement(
    systems: web::Data<Systems>,
    path: web::Path<(String, String)>,
    body: web::Json<SupplementBody>,
) -> Result<HttpResponse> {
    let (terminal_id, case_id) = path.into_inner();
    check_terminal(&systems, &terminal_id)?;
    let materials = texts(body.into_inner().materials, "material supplied")?;
    let supplement = systems
        .intake
        .send(SupplementCase {
            case_id: CaseId::from_string(case_id),
            terminal_id,
            materials,
        })
        .await
        .map_err(unavailable)?
        .map_err(case_error)?;
    Ok(HttpResponse::Accepted().json(supplement))
}

/// Body of a rating.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingBody {
    /// 1 to 5.
    score: i64,
    /// Optional comment.
    #[serde(default)]
    comment: String,
}

async fn rate(
    systems: web::Data<Systems>,
    path: web::Path<(String, String)>,
    body: web::Json<RatingBody>,
) -> Result<HttpResponse> {
    let (terminal_id, case_id) = path.into_inner();
    check_terminal(&systems, &terminal_id)?;
    let body = body.into_inner();
    let score = u8::try_from(body.score)
        .ok()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| {
            invalid(
                "invalid_score",
                format!("score {} is out of range; rate from 1 to 5", body.score),
            )
        })?;
    let rating = systems
        .intake
        .send(RateCase {
            case_id: CaseId::from_string(case_id),
            terminal_id,
            score,
            comment: body.comment,
        })
        .await
        .map_err(unavailable)?
        .map_err(case_error)?;
    Ok(HttpResponse::Created().json(rating))
}

/// Body of a department's request for supplementary materials.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SupplementRequestBody {
    /// Materials the applicant must supply.
    materials: Vec<String>,
    /// Why.
    reason: String,
}

async fn request_supplement(
    systems: web::Data<Systems>,
    path: web::Path<(String, String)>,
    body: web::Json<SupplementRequestBody>,
) -> Result<HttpResponse> {
    let (code, case_id) = path.into_inner();
    let body = body.into_inner();
    let materials = texts(body.materials, "material to supply")?;
    let reason = required(body.reason, "a reason for the supplement request")?;
    let suspension = department(&systems, &code)?
        .send(RequestSupplement {
            case_id: CaseId::from_string(case_id),
            materials,
            reason,
        })
        .await
        .map_err(unavailable)?
        .map_err(staff_error)?;
    Ok(HttpResponse::Ok().json(suspension))
}

/// The department holding a collaboration event.
fn event_department<'a>(
    systems: &'a Systems,
    event_id: &EventId,
) -> Result<&'a actix::Addr<crate::actors::department::Department>> {
    let code = systems
        .event_index
        .get(event_id)
        .map(|entry| entry.value().clone())
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_event",
                format!("no collaboration event `{event_id}` is waiting at a department"),
            )
        })?;
    department(systems, &code)
}

/// Body of a signature.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignBody {
    /// The officer signing; default the department.
    #[serde(default)]
    officer: String,
}

/// The body of a signature: none at all (the department signs), or JSON that must match —
/// a misspelt field must not sign an event in the department's name, which cannot be undone.
fn sign_body(req: &HttpRequest, body: &[u8]) -> std::result::Result<SignBody, actix_web::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(SignBody::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| super::error::json_error(JsonPayloadError::Deserialize(e), req))
}

async fn sign(
    req: HttpRequest,
    systems: web::Data<Systems>,
    event_id: web::Path<String>,
    body: web::Bytes,
) -> std::result::Result<HttpResponse, actix_web::Error> {
    let event_id = EventId::from_string(event_id.into_inner());
    let officer = sign_body(&req, &body)?.officer;
    let signed = event_department(&systems, &event_id)?
        .send(SignEvent { event_id, officer })
        .await
        .map_err(unavailable)?
        .map_err(staff_error)?;
    Ok(HttpResponse::Ok().json(signed))
}

/// Body of a return.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    /// Why the event is not the department's.
    reason: String,
}

async fn return_event(
    systems: web::Data<Systems>,
    event_id: web::Path<String>,
    body: web::Json<ReturnBody>,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    let reason = required(body.into_inner().reason, "the reason the event is returned")?;
    let returned = event_department(&systems, &event_id)?
        .send(ReturnEvent { event_id, reason })
        .await
        .map_err(unavailable)?
        .map_err(staff_error)?;
    Ok(HttpResponse::Ok().json(returned))
}

/// Body of an extension request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionBody {
    /// Working days asked for.
    days: u32,
    /// Why.
    reason: String,
}

async fn extension(
    systems: web::Data<Systems>,
    event_id: web::Path<String>,
    body: web::Json<ExtensionBody>,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    let body = body.into_inner();
    if body.days == 0 {
        return Err(invalid("invalid_days", "ask for at least one working day"));
    }
    let reason = required(body.reason, "a reason for the extension")?;
    let request = event_department(&systems, &event_id)?
        .send(RequestExtension {
            event_id,
            days: body.days,
            reason,
        })
        .await
        .map_err(unavailable)?
        .map_err(staff_error)?;
    Ok(HttpResponse::Accepted().json(request))
}

fn centre<'a>(
    systems: &'a Systems,
    code: &str,
) -> Result<&'a actix::Addr<crate::actors::governance_center::GovernanceCenter>> {
    served(systems, systems.roles.governance, "the governance centres")?;
    systems.centres.get(code).ok_or_else(|| {
        ApiError::not_found(
            "unknown_centre",
            format!("no governance centre `{code}`; GET /api/v1/governance/centers lists them"),
        )
    })
}

async fn awaiting(systems: web::Data<Systems>, code: web::Path<String>) -> Result<HttpResponse> {
    let list = centre(&systems, &code)?
        .send(GetAwaiting)
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(list))
}

/// Body of a reassignment.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    /// The department that must handle the event now.
    department: String,
}

async fn reassign(
    systems: web::Data<Systems>,
    path: web::Path<(String, String)>,
    body: web::Json<ReassignBody>,
) -> Result<HttpResponse> {
    let (code, event_id) = path.into_inner();
    let event = centre(&systems, &code)?
        .send(ReassignEvent {
            event_id: EventId::from_string(event_id),
            department: body.into_inner().department,
        })
        .await
        .map_err(unavailable)?
        .map_err(|e| match e {
            ReassignError::NotWaiting(m) => ApiError::not_found("not_waiting", m),
            ReassignError::UnknownDepartment(m) => invalid("unknown_department", m),
            ReassignError::Unavailable(m) => ApiError::unavailable(m),
        })?;
    Ok(HttpResponse::Ok().json(event))
}

fn check_period(period: &Period) -> Result<()> {
    match (period.from, period.to) {
        (Some(from), Some(to)) if from > to => Err(invalid(
            "invalid_period",
            format!("`from` ({from}) is after `to` ({to})"),
        )),
        _ => Ok(()),
    }
}

async fn department_figures(
    systems: web::Data<Systems>,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    served(&systems, systems.roles.governance, "the supervision system")?;
    check_period(&period)?;
    let figures = systems
        .supervisor
        .send(GetDepartmentFigures(period.into_inner()))
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(figures))
}

async fn centre_figures(
    systems: web::Data<Systems>,
    period: web::Query<Period>,
) -> Result<HttpResponse> {
    served(&systems, systems.roles.governance, "the supervision system")?;
    check_period(&period)?;
    let figures = systems
        .supervisor
        .send(GetCentreFigures(period.into_inner()))
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(figures))
}
