//! A case as the applicant sees it, from the intake system's view.

use super::error::{ApiError, Result};
use super::locate::served;
use crate::actors::intake::GetCase;
use crate::domain::CaseId;
use crate::systems::Systems;
use actix_web::{web, HttpResponse};

/// Mounts the endpoint under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cases/{case_id}", web::get().to(case));
}

/// The case `case_id`: its status, history, approval and rating.
async fn case(systems: web::Data<Systems>, case_id: web::Path<String>) -> Result<HttpResponse> {
    served(&systems, systems.roles.intake, "the intake system")?;
    let case_id = CaseId::from_string(case_id.into_inner());
    let view = systems
        .desks
        .intake
        .case
        .send(GetCase(case_id.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_case", format!("no case `{case_id}`")))??;
    Ok(HttpResponse::Ok().json(view))
}
