//! What an applicant does at a terminal: submits an application, supplies the materials a
//! department asked for (补正), rates the service (好差评). Terminals belong to the intake
//! system: a process that does not run it refuses them.

use super::access::submitter;
use super::cases::view;
use super::error::{acted, ApiError, ErrorBody, Result};
use super::input::{check_application, materials, texts, within};
use super::locate::served;
use crate::actors::intake::{ApplicationForm, RateCase, SupplementCase};
use crate::actors::terminal::SubmitApplication;
use crate::auth::{Grant, Principal};
use crate::domain::{CaseId, Rating, Supplement, TerminalId};
use crate::port::{Delivery, Refusal};
use crate::systems::Systems;
use actix::Recipient;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/terminals/{terminal_id}/applications",
        web::post().to(submit),
    )
    .route(
        "/terminals/{terminal_id}/cases/{case_id}/supplements",
        web::post().to(supplement),
    )
    .route(
        "/terminals/{terminal_id}/cases/{case_id}/rating",
        web::post().to(rate),
    );
}

/// Where the terminal `terminal_id` takes applications.
fn terminal<'a>(
    systems: &'a Systems,
    terminal_id: &TerminalId,
) -> Result<&'a Recipient<SubmitApplication>> {
    served(
        systems,
        systems.roles.intake,
        "the intake system or its terminals",
    )?;
    systems.desks.terminals.get(terminal_id).ok_or_else(|| {
        ApiError::not_found(
            "unknown_terminal",
            format!("no terminal `{terminal_id}`; GET /api/v1/terminals lists them"),
        )
    })
}

/// The answer to a submission (named apart from the history's `submitted` step).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SubmissionTaken)]
struct Submitted {
    /// The new case.
    case_id: CaseId,
    /// Always `submitted`.
    #[schema(example = "submitted")]
    status: &'static str,
    /// False when the bus did not take the application in time; it is kept and published
    /// once the bus takes it.
    durable: bool,
    /// Where to follow the case.
    links: SubmittedLinks,
}

/// Where to follow a submitted case.
#[derive(Serialize, utoipa::ToSchema)]
struct SubmittedLinks {
    /// The case's view, `/api/v1/cases/{case_id}`.
    case: String,
}

/// The path parameters of a terminal's endpoints.
const TERMINAL: &str = "The terminal, as `GET /api/v1/terminals` lists them";

/// Submits an application at a terminal. Answered `202` once the bus took its record
/// (`durable: true`) or when it has not yet (`durable: false`); refused with 422 naming the
/// field when a field breaks its rule (before any case exists), and when the bus refused the
/// record for good, which fails the case (see `refused_submission`).
#[utoipa::path(
    post,
    path = "/api/v1/terminals/{terminal_id}/applications",
    tag = "terminals",
    params(("terminal_id" = String, Path, description = TERMINAL)),
    request_body = ApplicationForm,
    responses(
        (status = 202, description = "Taken: `durable` says whether its record is on the bus yet", body = Submitted),
        (status = 404, description = "`unknown_terminal`; `not_served_here`: this process does not run the intake system", body = ErrorBody),
        (status = 413, description = "`application_too_large`: over what one bus record carries (nothing is created), or the bus refused its record for its size (the case failed)", body = ErrorBody),
        (status = 422, description = "`invalid_field` naming the field (identity number, phone, an `[input]` limit); `unknown_matter`; `unknown_region`; `application_refused`: the bus refused its record for good (the case failed)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the intake system did not answer, or is starting up", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn submit(
    systems: web::Data<Systems>,
    caller: Principal,
    terminal_id: web::Path<TerminalId>,
    form: web::Json<ApplicationForm>,
) -> Result<HttpResponse> {
    let owner = submitter(&caller, &terminal_id)?;
    let today = systems.catalog.calendar.local_date(systems.catalog.now());
    check_application(&form, &systems.settings.input, today)?;
    let submission = terminal(&systems, &terminal_id)?
        .send(SubmitApplication {
            form: form.into_inner(),
            owner,
        })
        .await??;
    let case_id = submission.case_id;
    let durable = match submission.delivery {
        Delivery::OnBus => true,
        Delivery::NotYet => false,
        Delivery::Refused(refusal) => return Err(refused_submission(&case_id, &refusal)),
    };
    Ok(HttpResponse::Accepted().json(Submitted {
        links: SubmittedLinks {
            case: format!("/api/v1/cases/{case_id}"),
        },
        case_id,
        status: "submitted",
        durable,
    }))
}

/// A submission whose record the bus refused for good: its case failed and will not be
/// processed. `413 application_too_large` when it was the size (the applicant can hand large
/// materials in by reference), `422 application_refused` otherwise.
fn refused_submission(case_id: &CaseId, refusal: &Refusal) -> ApiError {
    let reason = &refusal.reason;
    if refusal.too_large {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "application_too_large",
            format!(
                "the bus refused the application for good ({reason}): case {case_id} failed and \
                 will not be processed. Submit it again with large materials handed in by \
                 reference, not inline"
            ),
        );
    }
    ApiError::invalid(
        "application_refused",
        format!(
            "the bus refused the application for good ({reason}): case {case_id} failed and will \
             not be processed. Report it to an operator, quoting this message"
        ),
    )
}

/// Refuses an act on case `case_id` at terminal `terminal_id` unless the caller is the
/// applicant who submitted it themselves, or the terminal that submitted it for them.
async fn own_case(
    systems: &Systems,
    caller: &Principal,
    terminal_id: &TerminalId,
    case_id: &CaseId,
) -> Result<()> {
    let case = view(systems, case_id.clone()).await?;
    let owner = case.application.owner.as_deref();
    let allowed = match &caller.grant {
        Grant::Applicant => owner == Some(caller.subject.as_str()),
        Grant::Terminal(own) => {
            own == terminal_id && owner.is_none() && case.application.terminal_id == *own
        }
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "only the applicant who submitted case {case_id}, or the terminal that submitted it \
             for them, may act on it"
        ),
    ))
}

/// Body of an applicant's supplement.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SupplementBody {
    /// The materials supplied.
    materials: Vec<String>,
}

/// Supplies the materials a department asked for.
#[utoipa::path(
    post,
    path = "/api/v1/terminals/{terminal_id}/cases/{case_id}/supplements",
    tag = "terminals",
    params(
        ("terminal_id" = String, Path, description = TERMINAL),
        ("case_id" = String, Path, description = "The suspended case"),
    ),
    request_body = SupplementBody,
    responses(
        (status = 202, description = "The supplement, recorded (on the bus, or sent until the bus takes it)", body = Supplement),
        (status = 404, description = "`unknown_terminal`; `unknown_case`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the case is not suspended", body = ErrorBody),
        (status = 422, description = "`invalid_field`; `empty_list`; `act_refused`: the bus refused the act's message for good", body = ErrorBody),
        (status = 503, description = "`unavailable`: the intake system did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn supplement(
    systems: web::Data<Systems>,
    caller: Principal,
    path: web::Path<(TerminalId, String)>,
    body: web::Json<SupplementBody>,
) -> Result<HttpResponse> {
    let (terminal_id, case_id) = path.into_inner();
    let case_id = CaseId::from_string(case_id);
    terminal(&systems, &terminal_id)?;
    let body = body.into_inner();
    materials("materials", &body.materials, &systems.settings.input)?;
    let materials = texts(body.materials, "material supplied")?;
    own_case(&systems, &caller, &terminal_id, &case_id).await?;
    let supplement = systems
        .desks
        .intake
        .supplement
        .send(SupplementCase {
            case_id,
            terminal_id,
            materials,
        })
        .await??;
    acted(StatusCode::ACCEPTED, supplement)
}

/// Body of a rating.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RatingBody {
    /// 1 to 5.
    score: i64,
    /// Optional comment.
    #[serde(default)]
    comment: String,
}

/// Rates the service a decided case got.
#[utoipa::path(
    post,
    path = "/api/v1/terminals/{terminal_id}/cases/{case_id}/rating",
    tag = "terminals",
    params(
        ("terminal_id" = String, Path, description = TERMINAL),
        ("case_id" = String, Path, description = "The completed case"),
    ),
    request_body = RatingBody,
    responses(
        (status = 201, description = "The rating, on the bus", body = Rating),
        (status = 202, description = "The rating, recorded; its message is sent until the bus takes it", body = Rating),
        (status = 404, description = "`unknown_terminal`; `unknown_case`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the case is not completed, or was rated already", body = ErrorBody),
        (status = 422, description = "`invalid_score`: not 1 to 5; `invalid_field`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the intake system did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn rate(
    systems: web::Data<Systems>,
    caller: Principal,
    path: web::Path<(TerminalId, String)>,
    body: web::Json<RatingBody>,
) -> Result<HttpResponse> {
    let (terminal_id, case_id) = path.into_inner();
    let case_id = CaseId::from_string(case_id);
    terminal(&systems, &terminal_id)?;
    let body = body.into_inner();
    within(
        "comment",
        &body.comment,
        systems.settings.input.text_max_chars,
    )?;
    let score = u8::try_from(body.score)
        .ok()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_score",
                format!("score {} is out of range; rate from 1 to 5", body.score),
            )
        })?;
    own_case(&systems, &caller, &terminal_id, &case_id).await?;
    let rating = systems
        .desks
        .intake
        .rate
        .send(RateCase {
            case_id,
            terminal_id,
            score,
            comment: body.comment,
        })
        .await??;
    acted(StatusCode::CREATED, rating)
}
