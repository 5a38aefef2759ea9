//! The endpoints.

use super::error::ApiError;
use crate::actors::department::StaffError;
use crate::actors::department::{AnswerCollaboration, Decide, GetInbox};
use crate::actors::intake::{ApplicationForm, GetCase, TakeNewApplications};
use crate::actors::terminal::{SubmitApplication, SubmitError};
use crate::catalog::{Catalog, LookupError};
use crate::domain::{CaseId, CollaborationOutcome, Decision, EventId};
use crate::systems::Systems;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Mounts every endpoint, and a JSON 404 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::scope("/api/v1")
                .route("/terminals", web::get().to(terminals))
                .route(
                    "/terminals/{terminal_id}/applications",
                    web::post().to(submit),
                )
                .route("/cases/{case_id}", web::get().to(case))
                .route("/intake/feed", web::get().to(feed))
                .route("/matters", web::get().to(matters))
                .route("/departments", web::get().to(departments))
                .route("/departments/{code}/inbox", web::get().to(inbox))
                .route(
                    "/departments/{code}/cases/{case_id}/decision",
                    web::post().to(decide),
                )
                .route("/collaborations/{event_id}/result", web::post().to(answer))
                .route("/governance/centers", web::get().to(centers))
                .configure(super::lifecycle::configure),
        )
        .default_service(web::to(not_found));
}

pub(super) type Result<T> = std::result::Result<T, ApiError>;

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse> {
    Err(ApiError::not_found(
        "not_found",
        format!("no endpoint {} {}", req.method(), req.path()),
    ))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready for traffic: every consumer group has its partitions and the process is not stopping.
async fn readyz(systems: web::Data<Systems>) -> Result<HttpResponse> {
    let waiting = systems.not_ready().await;
    if waiting.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({ "status": "ready" })));
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        waiting.join("; "),
    ))
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("a system did not answer: {error}"))
}

fn unknown(error: LookupError) -> ApiError {
    let code = match error {
        LookupError::UnknownMatter(_) => "unknown_matter",
        LookupError::UnknownDistrict(_) | LookupError::UnknownStreet { .. } => "unknown_region",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
}

#[derive(Serialize)]
struct Submitted {
    case_id: CaseId,
    status: &'static str,
    /// False when the bus did not take the application in time; it is kept and published
    /// once the bus takes it.
    durable: bool,
    links: serde_json::Value,
}

/// Refuses a request for a system this process does not run.
pub(super) fn served(systems: &Systems, runs: bool, system: &str) -> Result<()> {
    if runs {
        Ok(())
    } else {
        Err(not_served(systems, system))
    }
}

/// The refusal of a request for a system this process does not run.
fn not_served(systems: &Systems, system: &str) -> ApiError {
    let roles: Vec<String> = systems
        .settings
        .service
        .roles
        .iter()
        .map(ToString::to_string)
        .collect();
    ApiError::not_found(
        "not_served_here",
        format!(
            "this process does not run {system} (its roles: {}); ask a process that does",
            roles.join(",")
        ),
    )
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

fn default_feed_max() -> usize {
    500
}

/// The intake feed (DESIGN.md step 2): applications after a cursor, oldest first, for a
/// governance process that does not run the intake system.
async fn feed(systems: web::Data<Systems>, query: web::Query<FeedQuery>) -> Result<HttpResponse> {
    served(&systems, systems.roles.intake, "the intake system")?;
    let query = query.into_inner();
    let wait = std::time::Duration::from_millis(query.wait_ms.min(30_000));
    let request = systems.intake.send(TakeNewApplications {
        after: query.after,
        max: query.max.clamp(1, 5000),
    });
    let batch = match tokio::time::timeout(wait, request).await {
        Ok(batch) => batch.map_err(unavailable)?,
        Err(_) => Vec::new(),
    };
    Ok(HttpResponse::Ok().json(batch))
}

async fn submit(
    systems: web::Data<Systems>,
    terminal_id: web::Path<String>,
    form: web::Json<ApplicationForm>,
) -> Result<HttpResponse> {
    served(
        &systems,
        systems.roles.intake,
        "the intake system or its terminals",
    )?;
    let terminal = systems.terminals.get(terminal_id.as_str()).ok_or_else(|| {
        ApiError::not_found(
            "unknown_terminal",
            format!("no terminal `{terminal_id}`; GET /api/v1/terminals lists them"),
        )
    })?;
    let submission = terminal
        .send(SubmitApplication(form.into_inner()))
        .await
        .map_err(unavailable)?
        .map_err(|e| match e {
            SubmitError::Unknown(lookup) => unknown(lookup),
            SubmitError::Unavailable(reason) => unavailable(reason),
        })?;
    let case_id = submission.case_id;
    Ok(HttpResponse::Accepted().json(Submitted {
        links: json!({ "case": format!("/api/v1/cases/{case_id}") }),
        case_id,
        status: "submitted",
        durable: submission.durable,
    }))
}

async fn case(systems: web::Data<Systems>, case_id: web::Path<String>) -> Result<HttpResponse> {
    served(&systems, systems.roles.intake, "the intake system")?;
    let case_id = CaseId::from_string(case_id.into_inner());
    let view = systems
        .intake
        .send(GetCase(case_id.clone()))
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("unknown_case", format!("no case `{case_id}`")))?;
    Ok(HttpResponse::Ok().json(view))
}

async fn matters(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(&systems.catalog.matters)
}

async fn terminals(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(&systems.catalog.terminals)
}

async fn departments(systems: web::Data<Systems>) -> HttpResponse {
    let list: Vec<_> = systems
        .catalog
        .departments
        .iter()
        .map(|d| {
            json!({
                "code": d.code, "name": d.name, "tier": d.tier, "mode": d.mode,
                "external": d.external,
            })
        })
        .collect();
    HttpResponse::Ok().json(list)
}

async fn centers(systems: web::Data<Systems>) -> HttpResponse {
    fn tree(catalog: &Catalog, code: &str) -> serde_json::Value {
        let Some(centre) = catalog.centre(code) else {
            return serde_json::Value::Null;
        };
        let children: Vec<_> = centre.children.iter().map(|c| tree(catalog, c)).collect();
        json!({ "code": centre.code, "name": centre.name, "tier": centre.tier, "children": children })
    }
    HttpResponse::Ok().json(tree(&systems.catalog, &systems.catalog.city))
}

pub(super) fn department<'a>(
    systems: &'a Systems,
    code: &str,
) -> Result<&'a actix::Addr<crate::actors::department::Department>> {
    systems.departments.get(code).ok_or_else(|| {
        let configured = systems.catalog.department(code);
        if configured.is_some_and(|d| !d.external) {
            return not_served(systems, &format!("department `{code}`"));
        }
        if configured.is_some_and(|d| d.external) {
            ApiError::not_found(
                "external_department",
                format!("department `{code}` is an external system; it has no inbox here"),
            )
        } else {
            ApiError::not_found(
                "unknown_department",
                format!("no department `{code}`; GET /api/v1/departments lists them"),
            )
        }
    })
}

pub(super) fn staff_error(error: StaffError) -> ApiError {
    match error {
        StaffError::NotFound(m) => ApiError::not_found("not_waiting", m),
        StaffError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "invalid_transition", m),
        StaffError::Unavailable(m) => ApiError::unavailable(m),
    }
}

async fn inbox(systems: web::Data<Systems>, code: web::Path<String>) -> Result<HttpResponse> {
    let inbox = department(&systems, &code)?
        .send(GetInbox)
        .await
        .map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(inbox))
}

/// Body of a staff decision.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// `approve` or `reject`.
    decision: StaffDecision,
    /// The officer's opinion.
    #[serde(default)]
    opinion: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum StaffDecision {
    Approve,
    Reject,
}

async fn decide(
    systems: web::Data<Systems>,
    path: web::Path<(String, String)>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse> {
    let (code, case_id) = path.into_inner();
    let body = body.into_inner();
    let decision = match body.decision {
        StaffDecision::Approve => Decision::Approved,
        StaffDecision::Reject => Decision::Rejected,
    };
    let opinion = if body.opinion.trim().is_empty() {
        match decision {
            Decision::Approved => "经审查，准予许可".to_owned(),
            Decision::Rejected => "经审查，不予许可".to_owned(),
        }
    } else {
        body.opinion
    };
    let approval = department(&systems, &code)?
        .send(Decide {
            case_id: CaseId::from_string(case_id),
            decision,
            opinion,
        })
        .await
        .map_err(unavailable)?
        .map_err(staff_error)?;
    Ok(HttpResponse::Ok().json(approval))
}

/// Body of a collaboration answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `agree` or `disagree`.
    outcome: CollaborationOutcome,
    /// The department's opinion.
    #[serde(default)]
    opinion: String,
}

async fn answer(
    systems: web::Data<Systems>,
    event_id: web::Path<String>,
    body: web::Json<AnswerBody>,
) -> Result<HttpResponse> {
    let event_id = EventId::from_string(event_id.into_inner());
    let code = systems
        .event_index
        .get(&event_id)
        .map(|entry| entry.value().clone())
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_event",
                format!("no collaboration event `{event_id}` is waiting for an answer"),
            )
        })?;
    let body = body.into_inner();
    let result = department(&systems, &code)?
        .send(AnswerCollaboration {
            event_id,
            outcome: body.outcome,
            opinion: body.opinion,
        })
        .await
        .map_err(unavailable)?
        .map_err(staff_error)?;
    Ok(HttpResponse::Ok().json(result))
}
