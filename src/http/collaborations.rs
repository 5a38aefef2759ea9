//! What the staff of a department do with a collaboration event waiting there: answer it,
//! sign for it (签收), return it as not the department's (退单), ask for more time (延期申请).
//! The event id alone names the department: the departments index the events they hold.

use super::access::{named, officer_of};
use super::error::{acted, ApiError, ErrorBody, Result};
use super::input::{required, within};
use super::locate::department;
use crate::actors::department::{AnswerCollaboration, RequestExtension, ReturnEvent, SignEvent};
use crate::auth::Principal;
use crate::domain::{
    CollaborationOutcome, CollaborationResult, EventId, EventReturned, EventSigned,
    ExtensionRequest,
};
use crate::systems::{DepartmentDesk, Systems};
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use serde::Deserialize;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/collaborations/{event_id}/result", web::post().to(answer))
        .route("/collaborations/{event_id}/sign", web::post().to(sign))
        .route(
            "/collaborations/{event_id}/return",
            web::post().to(return_event),
        )
        .route(
            "/collaborations/{event_id}/extension",
            web::post().to(extension),
        );
}

/// The desk of the department holding the event, if the caller is one of its officers;
/// `waiting` ends the refusal when no department holds it ("for an answer", "at a department").
fn holder<'a>(
    systems: &'a Systems,
    caller: &Principal,
    event_id: &EventId,
    waiting: &str,
) -> Result<&'a DepartmentDesk> {
    let code = systems
        .event_index
        .get(event_id)
        .map(|entry| entry.value().clone())
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_event",
                format!("no collaboration event `{event_id}` is waiting {waiting}"),
            )
        })?;
    officer_of(caller, &code)?;
    department(systems, &code)
}

/// The path parameter naming an event.
const EVENT: &str = "The collaboration event, as the department's inbox lists it";

/// Body of a collaboration answer.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `agree` or `disagree`.
    outcome: CollaborationOutcome,
    /// The department's opinion.
    #[serde(default)]
    opinion: String,
}

/// Answers a collaboration event: the department agrees or disagrees, with its opinion.
#[utoipa::path(
    post,
    path = "/api/v1/collaborations/{event_id}/result",
    tag = "collaborations",
    params(("event_id" = String, Path, description = EVENT)),
    request_body = AnswerBody,
    responses(
        (status = 200, description = "The answer, on the bus", body = CollaborationResult),
        (status = 202, description = "The answer, recorded; its message is sent until the bus takes it", body = CollaborationResult),
        (status = 404, description = "`unknown_event`: no such event waits for an answer; `not_waiting`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the event was returned, or answered otherwise", body = ErrorBody),
        (status = 422, description = "`invalid_field`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn answer(
    systems: web::Data<Systems>,
    caller: Principal,
    event_id: web::Path<String>,
    body: web::Json<AnswerBody>,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    let body = body.into_inner();
    let limit = systems.settings.input.text_max_chars;
    within("opinion", &body.opinion, limit)?;
    let desk = holder(&systems, &caller, &event_id, "for an answer")?;
    let answer = AnswerCollaboration {
        event_id,
        outcome: body.outcome,
        opinion: body.opinion,
        officer: named(&caller),
    };
    let result = desk.answer.send(answer).await??;
    acted(StatusCode::OK, result)
}

/// Body of a signature.
/// Says nothing: the officer signing is the one the token names. An `officer` field no
/// longer names anyone and is refused, like any other field.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignBody {}

/// The body of a signature: none at all, unlabelled, or JSON labelled as JSON that must be
/// an empty object — a field must not be silently ignored on an act that cannot be undone. A
/// body labelled otherwise, or not labelled, is refused with 415 like any other endpoint's.
fn sign_body(req: &HttpRequest, body: &[u8]) -> Result<SignBody> {
    let empty = body.iter().all(u8::is_ascii_whitespace);
    let json = match req.mime_type() {
        Ok(Some(mime)) => {
            mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON)
        }
        Ok(None) if empty => return Ok(SignBody::default()),
        Ok(None) | Err(_) => false,
    };
    if !json {
        return Err(JsonPayloadError::ContentType.into());
    }
    if empty {
        return Ok(SignBody::default());
    }
    serde_json::from_slice(body).map_err(|e| JsonPayloadError::Deserialize(e).into())
}

/// Signs for a collaboration event: the department takes it on.
#[utoipa::path(
    post,
    path = "/api/v1/collaborations/{event_id}/sign",
    tag = "collaborations",
    params(("event_id" = String, Path, description = EVENT)),
    request_body(content = Option<SignBody>, description = "No body at all, or `{}` labelled `application/json`: the officer signing is the one the token names"),
    responses(
        (status = 200, description = "The signature (签收), on the bus", body = EventSigned),
        (status = 202, description = "The signature, recorded; its message is sent until the bus takes it", body = EventSigned),
        (status = 404, description = "`unknown_event`; `not_waiting`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: signed already, returned or answered", body = ErrorBody),
        (status = 422, description = "`act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn sign(
    systems: web::Data<Systems>,
    caller: Principal,
    event_id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    sign_body(&req, &body)?;
    let desk = holder(&systems, &caller, &event_id, "at a department")?;
    let officer = named(&caller);
    let signed = desk.sign.send(SignEvent { event_id, officer }).await??;
    acted(StatusCode::OK, signed)
}

/// Body of a return.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    /// Why the event is not the department's.
    reason: String,
}

/// Returns a collaboration event that is not the department's to the centre that sent it.
#[utoipa::path(
    post,
    path = "/api/v1/collaborations/{event_id}/return",
    tag = "collaborations",
    params(("event_id" = String, Path, description = EVENT)),
    request_body = ReturnBody,
    responses(
        (status = 200, description = "The return (退单), on the bus: the event is re-routed", body = EventReturned),
        (status = 202, description = "The return, recorded; its message is sent until the bus takes it", body = EventReturned),
        (status = 404, description = "`unknown_event`; `not_waiting`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: signed or answered", body = ErrorBody),
        (status = 422, description = "`invalid_field`; `missing_reason`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn return_event(
    systems: web::Data<Systems>,
    caller: Principal,
    event_id: web::Path<String>,
    body: web::Json<ReturnBody>,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    let reason = body.into_inner().reason;
    within("reason", &reason, systems.settings.input.text_max_chars)?;
    let reason = required(reason, "the reason the event is returned")?;
    let desk = holder(&systems, &caller, &event_id, "at a department")?;
    let officer = named(&caller);
    let returned = desk
        .return_event
        .send(ReturnEvent {
            event_id,
            reason,
            officer,
        })
        .await??;
    acted(StatusCode::OK, returned)
}

/// Body of an extension request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ExtensionBody {
    /// Working days asked for.
    days: u32,
    /// Why.
    reason: String,
}

/// Asks the centre for more working days on a collaboration event.
#[utoipa::path(
    post,
    path = "/api/v1/collaborations/{event_id}/extension",
    tag = "collaborations",
    params(("event_id" = String, Path, description = EVENT)),
    request_body = ExtensionBody,
    responses(
        (status = 202, description = "The request (延期申请), recorded: the dispatching centre decides", body = ExtensionRequest),
        (status = 404, description = "`unknown_event`; `not_waiting`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: a request already waits, or the event is answered", body = ErrorBody),
        (status = 422, description = "`invalid_days`: fewer than one day; `invalid_field`; `missing_reason`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn extension(
    systems: web::Data<Systems>,
    caller: Principal,
    event_id: web::Path<String>,
    body: web::Json<ExtensionBody>,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    let body = body.into_inner();
    within(
        "reason",
        &body.reason,
        systems.settings.input.text_max_chars,
    )?;
    if body.days == 0 {
        return Err(ApiError::invalid(
            "invalid_days",
            "ask for at least one working day",
        ));
    }
    let request = RequestExtension {
        event_id,
        days: body.days,
        reason: required(body.reason, "a reason for the extension")?,
        officer: named(&caller),
    };
    let desk = holder(&systems, &caller, &request.event_id, "at a department")?;
    let request = desk.request_extension.send(request).await??;
    acted(StatusCode::ACCEPTED, request)
}
