//! A case as the people with a part in it see it, from the intake system's view: the
//! applicant's own list, and one case.

use super::access::{case_sight, personal, require, Sight};
use super::error::{ApiError, Result};
use super::locate::served;
use crate::actors::intake::{CaseView, GetCase, OwnCases};
use crate::auth::{Grant, Principal};
use crate::domain::{Applicant, CaseId};
use crate::systems::Systems;
use actix_web::{web, HttpResponse};

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cases/{case_id}", web::get().to(case))
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
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_case", format!("no case `{case_id}`")))?
        .map_err(Into::into)
}

/// The case `case_id`: its status, history, approval and rating, for a caller with a part in
/// it; the applicant in clear for the applicant, their terminal and the handling department's
/// officers, masked for everyone else who may see the case ([`Sight`]).
async fn case(
    systems: web::Data<Systems>,
    caller: Principal,
    case_id: web::Path<String>,
) -> Result<HttpResponse> {
    let mut view = view(&systems, CaseId::from_string(case_id.into_inner())).await?;
    if case_sight(&caller, &view, &systems.catalog.city)? == Sight::Masked {
        view.application.applicant = view.application.applicant.masked();
    }
    Ok(personal(HttpResponse::Ok()).json(view))
}

/// The caller's own cases (an applicant's), newest first.
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
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "cases": cases })))
}
