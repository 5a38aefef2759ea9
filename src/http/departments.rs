//! What the staff of a manual department do with its cases: read the inbox, decide a case, ask
//! the applicant for supplementary materials (补正). Collaboration events waiting at a
//! department are in `collaborations`.

use super::access::{in_clear, named, officer_of, personal};
use super::error::{acted, ErrorBody, Result};
use super::input::{materials, required, texts, within};
use super::locate::department;
use crate::actors::department::{Decide, GetInbox, Inbox, RequestSupplement};
use crate::auth::Principal;
use crate::domain::Officer;
use crate::domain::{Approval, CaseId, Decision, DepartmentCode, Suspension};
use crate::systems::Systems;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/departments/{code}/inbox", web::get().to(inbox))
        .route(
            "/departments/{code}/cases/{case_id}/decision",
            web::post().to(decide),
        )
        .route(
            "/departments/{code}/cases/{case_id}/supplement-request",
            web::post().to(request_supplement),
        );
}

/// The cases and collaboration events waiting for the department's staff. The department's
/// own cases show their applicant in clear (its officers handle them); a collaboration event
/// carries no applicant (its case is another department's: the collaborating officer reads it,
/// masked, at `GET /api/v1/cases/{id}`).
#[utoipa::path(
    get,
    path = "/api/v1/departments/{code}/inbox",
    tag = "departments",
    params(("code" = String, Path, description = DEPARTMENT)),
    responses(
        (status = 200, description = "The cases waiting for the department's staff (applicants in clear) and the collaboration events waiting for an answer", body = Inbox),
        (status = 404, description = "`unknown_department`; `external_department`: an outside system, no inbox here; `not_served_here`", body = ErrorBody),
        (status = 500, description = "`personal_data_unreadable`: a key of `[crypto]` is missing here", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn inbox(
    systems: web::Data<Systems>,
    caller: Principal,
    code: web::Path<DepartmentCode>,
) -> Result<HttpResponse> {
    officer_of(&caller, &code)?;
    let inbox = department(&systems, &code)?.inbox.send(GetInbox).await??;
    // Its own cases' applicants in clear: the department handles them.
    Ok(in_clear(personal(HttpResponse::Ok())).json(inbox))
}

/// The path parameter naming a department.
const DEPARTMENT: &str = "The department, as `GET /api/v1/departments` lists them";

/// Body of a staff decision.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// `approve` or `reject`.
    decision: StaffDecision,
    /// The officer's opinion.
    #[serde(default)]
    opinion: String,
}

/// A decision as staff write it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum StaffDecision {
    /// Grants the application.
    Approve,
    /// Refuses it.
    Reject,
}

impl DecisionBody {
    /// The decision of the case `case_id` by `officer`; an empty opinion becomes the standard
    /// wording.
    fn into_message(self, case_id: String, officer: Officer) -> Decide {
        let decision = match self.decision {
            StaffDecision::Approve => Decision::Approved,
            StaffDecision::Reject => Decision::Rejected,
        };
        let opinion = if self.opinion.trim().is_empty() {
            match decision {
                Decision::Approved => "经审查，准予许可".to_owned(),
                Decision::Rejected => "经审查，不予许可".to_owned(),
            }
        } else {
            self.opinion
        };
        Decide {
            case_id: CaseId::from_string(case_id),
            decision,
            opinion,
            officer,
        }
    }
}

/// Approves or rejects a case waiting for the department's decision.
#[utoipa::path(
    post,
    path = "/api/v1/departments/{code}/cases/{case_id}/decision",
    tag = "departments",
    params(
        ("code" = String, Path, description = DEPARTMENT),
        ("case_id" = String, Path, description = "The case waiting for the decision"),
    ),
    request_body = DecisionBody,
    responses(
        (status = 200, description = "The approval, on the bus", body = Approval),
        (status = 202, description = "The approval, recorded; its message is sent until the bus takes it", body = Approval),
        (status = 404, description = "`not_waiting`: the case does not wait for a decision here; `unknown_department`; `external_department`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the case is suspended or collaborating, or was decided otherwise", body = ErrorBody),
        (status = 422, description = "`invalid_field`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn decide(
    systems: web::Data<Systems>,
    caller: Principal,
    path: web::Path<(DepartmentCode, String)>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse> {
    let (code, case_id) = path.into_inner();
    officer_of(&caller, &code)?;
    let body = body.into_inner();
    within(
        "opinion",
        &body.opinion,
        systems.settings.input.text_max_chars,
    )?;
    let decide = body.into_message(case_id, named(&caller));
    let approval = department(&systems, &code)?.decide.send(decide).await??;
    acted(StatusCode::OK, approval)
}

/// Body of a department's request for supplementary materials.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SupplementRequestBody {
    /// Materials the applicant must supply.
    materials: Vec<String>,
    /// Why.
    reason: String,
}

/// Suspends a case until the applicant supplies the materials named.
#[utoipa::path(
    post,
    path = "/api/v1/departments/{code}/cases/{case_id}/supplement-request",
    tag = "departments",
    params(
        ("code" = String, Path, description = DEPARTMENT),
        ("case_id" = String, Path, description = "The case waiting for the decision"),
    ),
    request_body = SupplementRequestBody,
    responses(
        (status = 200, description = "The suspension (补正), on the bus: the case's clock stops", body = Suspension),
        (status = 202, description = "The suspension, recorded; its message is sent until the bus takes it", body = Suspension),
        (status = 404, description = "`not_waiting`; `unknown_department`; `external_department`; `not_served_here`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
        (status = 422, description = "`invalid_field`; `empty_list`; `missing_reason`; `act_refused`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the department did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn request_supplement(
    systems: web::Data<Systems>,
    caller: Principal,
    path: web::Path<(DepartmentCode, String)>,
    body: web::Json<SupplementRequestBody>,
) -> Result<HttpResponse> {
    let (code, case_id) = path.into_inner();
    officer_of(&caller, &code)?;
    let body = body.into_inner();
    let limits = &systems.settings.input;
    materials("materials", &body.materials, limits)?;
    within("reason", &body.reason, limits.text_max_chars)?;
    let request = RequestSupplement {
        case_id: CaseId::from_string(case_id),
        materials: texts(body.materials, "material to supply")?,
        reason: required(body.reason, "a reason for the supplement request")?,
        officer: named(&caller),
    };
    let suspension = department(&systems, &code)?
        .request_supplement
        .send(request)
        .await??;
    acted(StatusCode::OK, suspension)
}
