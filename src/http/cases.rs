//! A case as the people with a part in it see it, from the intake system's view: the
//! applicant's own list, and one case; and the list of cases officers, supervisors and
//! operators read from the case repository.

use super::access::{case_sight, forbidden, in_clear, personal, require, Sight};
use super::error::{ApiError, ErrorBody, Result};
use super::locate::served;
use crate::actors::intake::{CaseView, GetCase, OwnCase, OwnCases};
use crate::auth::{Grant, Principal};
use crate::domain::{Applicant, CaseId, CaseStatus};
use crate::store::{CaseFilter, CaseRow, StoreError, MAX_PAGE};
use crate::systems::Systems;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A page holds this many cases unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 50;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cases", web::get().to(list))
        .route("/cases/{case_id}", web::get().to(case))
        .route("/applicants/me/cases", web::get().to(own_cases));
}

/// The case `case_id` as the intake system holds it, or 404.
pub(super) async fn view(systems: &Systems, case_id: CaseId) -> Result<CaseView<Applicant>> {
    served(systems, systems.roles.intake, "the intake system")?;
    systems
        .desks
        .intake
        .case
        .send(GetCase(case_id.clone()))
        .await??
        .ok_or_else(|| ApiError::not_found("unknown_case", format!("no case `{case_id}`")))
}

/// The case `case_id`: its status, history, approval and rating, for a caller with a part in
/// it; the applicant in clear for the applicant, their terminal and the handling department's
/// officers, masked for everyone else who may see the case (see `Sight`).
#[utoipa::path(
    get,
    path = "/api/v1/cases/{case_id}",
    tag = "cases",
    params(("case_id" = String, Path, description = "The case, as its submission answered")),
    responses(
        (status = 200, description = "The case; its applicant masked for a reader who does not handle it", body = CaseView<Applicant>),
        (status = 404, description = "`unknown_case`; `not_served_here`: this process does not run the intake system", body = ErrorBody),
        (status = 500, description = "`personal_data_unreadable`: a key of `[crypto]` is missing here", body = ErrorBody),
        (status = 503, description = "`unavailable`: the intake system or the case repository did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn case(
    systems: web::Data<Systems>,
    caller: Principal,
    case_id: web::Path<String>,
) -> Result<HttpResponse> {
    let mut view = view(&systems, CaseId::from_string(case_id.into_inner())).await?;
    let answer = personal(HttpResponse::Ok());
    let mut answer = match case_sight(&caller, &view, &systems.catalog.city)? {
        Sight::Full => in_clear(answer),
        Sight::Masked => {
            view.application.applicant = view.application.applicant.masked();
            answer
        }
    };
    Ok(answer.json(view))
}

/// An applicant's own cases.
#[derive(Serialize, utoipa::ToSchema)]
struct OwnCaseList {
    /// Newest first.
    cases: Vec<OwnCase>,
}

/// The caller's own cases (an applicant's), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/applicants/me/cases",
    tag = "cases",
    responses(
        (status = 200, description = "The caller's cases, newest first", body = OwnCaseList),
        (status = 404, description = "`not_served_here`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn own_cases(systems: web::Data<Systems>, caller: Principal) -> Result<HttpResponse> {
    require(&caller, "list an applicant's own cases", |grant| {
        matches!(grant, Grant::Applicant)
    })?;
    served(&systems, systems.roles.intake, "the intake system")?;
    let cases = systems
        .desks
        .intake
        .own_cases
        .send(OwnCases(caller.subject))
        .await??;
    Ok(HttpResponse::Ok().json(OwnCaseList { cases }))
}

/// The query of `GET /cases`. Every value is taken as text and checked here, so that a bad one
/// is refused naming its parameter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only cases of this responsible department.
    department: Option<String>,
    /// Only cases with this status (`accepted`, `completed`, …).
    status: Option<String>,
    /// Only cases of this matter.
    matter: Option<String>,
    /// Only cases submitted at or after this time (RFC 3339).
    from: Option<String>,
    /// Only cases submitted before this time (RFC 3339).
    to: Option<String>,
    /// The `next` of the page before.
    cursor: Option<String>,
    /// Most cases on the page (1–200, default 50).
    limit: Option<String>,
}

/// One case of a list: where it stands, nothing of the applicant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CaseSummary {
    /// Case id.
    case_id: String,
    /// The matter applied for.
    matter_code: String,
    /// The responsible department, once accepted.
    department: Option<String>,
    /// Where the case stands.
    status: String,
    /// When it was submitted.
    submitted_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl From<CaseRow> for CaseSummary {
    fn from(row: CaseRow) -> Self {
        Self {
            case_id: row.case_id,
            matter_code: row.matter_code,
            department: row.department,
            status: row.status,
            submitted_at: row.submitted_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of cases.
#[derive(Serialize, utoipa::ToSchema)]
struct CasePage {
    /// Newest submission first.
    cases: Vec<CaseSummary>,
    /// The `cursor` of the next page; none on the last.
    next: Option<String>,
}

/// The cases the query selects, newest submission first, a page at a time: every case for a
/// supervisor or an operator, the cases of their own department for an officer.
#[utoipa::path(
    get,
    path = "/api/v1/cases",
    tag = "cases",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of cases from the case repository, nothing of the applicant", body = CasePage),
        (status = 404, description = "`not_served_here`", body = ErrorBody),
        (status = 422, description = "`invalid_field` naming the parameter: an unknown status, a time that is not RFC 3339, `from` after `to`, a cursor this service did not give, a limit out of range", body = ErrorBody),
        (status = 503, description = "`unavailable`: the case repository did not answer, or this process keeps none", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list(
    systems: web::Data<Systems>,
    caller: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let query = query.into_inner();
    let department = match &caller.grant {
        Grant::Supervisor | Grant::Operator => query.department.clone(),
        Grant::Officer(own) => match &query.department {
            Some(asked) if asked != own.as_str() => {
                return Err(forbidden(
                    &caller,
                    &format!("list the cases of department `{asked}`"),
                ))
            }
            // An officer lists the cases of their own department, asked or not.
            _ => Some(own.to_string()),
        },
        _ => return Err(forbidden(&caller, "list cases")),
    };
    served(&systems, systems.roles.intake, "the intake system")?;
    let filter = CaseFilter {
        department,
        status: query.status.as_deref().map(status).transpose()?,
        matter: query.matter,
        owner: None,
        from: query.from.as_deref().map(|t| time("from", t)).transpose()?,
        to: query.to.as_deref().map(|t| time("to", t)).transpose()?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ApiError::invalid_field(
                "from",
                format!("`from` ({from}) is after `to` ({to})"),
            ));
        }
    }
    let limit = query.limit.as_deref().map(limit).transpose()?;
    let repository = systems
        .repository
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this process keeps no case repository"))?;
    let page = repository
        .list(
            &filter,
            query.cursor.as_deref(),
            limit.unwrap_or(DEFAULT_PAGE),
        )
        .await
        .map_err(|error| match error {
            StoreError::BadCursor => ApiError::invalid_field("cursor", error.to_string()),
            error => {
                tracing::error!(%error, "listing cases failed");
                ApiError::unavailable("the case repository did not answer; try again")
            }
        })?;
    let cases: Vec<CaseSummary> = page.rows.into_iter().map(CaseSummary::from).collect();
    Ok(HttpResponse::Ok().json(CasePage {
        cases,
        next: page.next,
    }))
}

/// A status by its JSON name, or 422 naming `status` and listing the names.
fn status(name: &str) -> Result<String> {
    if CaseStatus::ALL.iter().any(|status| status.as_str() == name) {
        return Ok(name.to_owned());
    }
    let names: Vec<&str> = CaseStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    Err(ApiError::invalid_field(
        "status",
        format!("`{name}` is not a case status ({})", names.join(", ")),
    ))
}

/// An RFC 3339 time, or 422 naming `parameter`.
fn time(parameter: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|error| {
            ApiError::invalid_field(
                parameter,
                format!(
                    "`{text}` is not an RFC 3339 time ({error}), e.g. 2026-03-01T00:00:00+08:00"
                ),
            )
        })
}

/// A page size in 1..=[`MAX_PAGE`], or 422 naming `limit`.
fn limit(text: &str) -> Result<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "limit",
                format!("`{text}` is not a page size: a whole number from 1 to {MAX_PAGE}"),
            )
        })
}
