//! A citizen's case page (`/my/cases/{id}`): the progress timeline, the collaboration events
//! along 市 → 区 → 街道, the due date, the outcome with its reasons — followed without a reload
//! while the case is open — and the applicant's acts on it: supplying the materials a
//! department asked for, and rating the completed case.

use super::layout::{event_words, fragment, local_time, page, status_words, step_words};
use super::portal::{applicant, department_name, portal_terminal};
use super::{cross_site, see_other, Backend, Session};
use crate::settings::Settings;
use crate::systems::Systems;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::{json, Value};

/// Mounts the case page, its progress and the applicant's acts.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/my/cases/{case_id}", web::get().to(case_page))
        .route("/my/cases/{case_id}/progress", web::get().to(progress))
        .route("/my/cases/{case_id}/supplement", web::post().to(supplement))
        .route("/my/cases/{case_id}/rating", web::post().to(rate));
}

/// Which suspension the applicant just supplied the materials for, if any (`?supplied=N`).
/// The case stays suspended until the department resumes it, a moment later: meanwhile the
/// page shows that the materials are on their way instead of the form, and keeps following the
/// case.
#[derive(serde::Deserialize)]
struct Supplied {
    /// The suspension's sequence number.
    supplied: Option<u32>,
}

/// A case's page: its progress, which updates itself until the case is closed.
async fn case_page(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    path: web::Path<String>,
    supplied: web::Query<Supplied>,
) -> HttpResponse {
    match progress_of(&req, &systems, &backend, &path, supplied.supplied).await {
        Ok((session, progress)) => page("办件进度", Some(&session), progress),
        Err(elsewhere) => elsewhere,
    }
}

/// The progress fragment the case page polls.
async fn progress(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    path: web::Path<String>,
    supplied: web::Query<Supplied>,
) -> HttpResponse {
    match progress_of(&req, &systems, &backend, &path, supplied.supplied).await {
        Ok((_, progress)) => fragment(progress),
        Err(elsewhere) => elsewhere,
    }
}

/// The applicant's session and their case's progress ([`case_progress`]); where a visitor
/// who is no signed-in applicant goes instead.
async fn progress_of(
    req: &HttpRequest,
    systems: &Systems,
    backend: &Backend,
    case_id: &str,
    supplied: Option<u32>,
) -> Result<(Session, Markup), HttpResponse> {
    let session = applicant(req).await?;
    let progress = case_progress(&systems.settings, backend, &session, case_id, supplied).await;
    Ok((session, progress))
}

/// How often an open case's page asks for its progress.
const POLL_EVERY: &str = "every 2s";

/// The case as the API shows it to its applicant: status, due date, the collaboration events
/// along the tiers, the timeline, and the outcome. While the case is open the fragment asks
/// for itself again (htmx), so the page follows the case without a reload; `supplied` names
/// the suspension whose materials the applicant just sent.
async fn case_progress(
    settings: &Settings,
    backend: &Backend,
    session: &Session,
    case_id: &str,
    supplied: Option<u32>,
) -> Markup {
    let path = format!("/api/v1/cases/{case_id}");
    let case = match backend.get(&session.token, &path).await {
        Ok(case) => case,
        Err(refused) => return html! { p.problem role="alert" { (refused.message) } },
    };
    let status = case["status"].as_str().unwrap_or_default();
    // A form for the applicant stops the updates, which would wipe what they type: supplying
    // the materials brings them back (the page opens again, naming the suspension supplied, as
    // the case stays suspended until the department resumes it), and a closed case has no more.
    let suspension = &case["suspension"];
    let suspended = status == "suspended" && suspension.is_object();
    let sent = suspended
        && supplied
            .is_some_and(|sequence| suspension["sequence"].as_u64() == Some(sequence.into()));
    let supplying = suspended && !sent;
    let open = !matches!(status, "completed" | "failed") && !supplying;
    let poll = match supplied.filter(|_| sent) {
        Some(sequence) => format!("/my/cases/{case_id}/progress?supplied={sequence}"),
        None => format!("/my/cases/{case_id}/progress"),
    };
    html! {
        section #progress aria-live="polite"
            hx-get=[open.then_some(&poll)] hx-trigger=[open.then_some(POLL_EVERY)] hx-swap="outerHTML" {
            p { "办件编号：" code { (case_id) } }
            p.status data-status=(status) { "当前状态：" strong { (status_words(status)) } }
            @if let Some(due) = case["receipt"]["due_date"].as_str() {
                p { "承诺办结日期：" (due) }
            }
            @if let Some(failure) = case["failure"].as_str() {
                p.problem role="alert" { (failure) }
            }
            @if supplying {
                (supplement_form(case_id, suspension))
            }
            @if sent {
                p.notice { "补正材料已提交，等待承办部门恢复办理。" }
            }
            (events(settings, &case))
            (outcome(&case))
            @if status == "completed" {
                (rating(case_id, &case["rating"]))
            }
            h2 { "办理过程" }
            ol.timeline {
                @for entry in case["history"].as_array().into_iter().flatten() {
                    li {
                        time { (local_time(entry["at"].as_str().unwrap_or_default())) }
                        " " (step_words(entry["step"].as_str().unwrap_or_default()))
                    }
                }
            }
        }
    }
}

/// The collaboration events along 市 → 区 → 街道, with their status.
fn events(settings: &Settings, case: &Value) -> Markup {
    let events = case["collaboration_events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    html! {
        @if !events.is_empty() {
            h2 { "部门协同" }
            ul.events {
                @for event in &events {
                    @let path: Vec<&str> = event["tier_path"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    li {
                        (path.join(" → ")) "："
                        (department_name(settings, event["department"].as_str().unwrap_or_default())) " "
                        strong { (event_words(event["status"].as_str().unwrap_or_default())) }
                        @if let Some(opinion) = event["result"]["opinion"].as_str() {
                            "（" (opinion) "）"
                        }
                    }
                }
            }
        }
    }
}

/// The decision with its reasons, once there is one.
fn outcome(case: &Value) -> Markup {
    let outcome = &case["approval"]["outcome"];
    html! {
        @if let Some(decision) = outcome["decision"].as_str() {
            h2 { "办理结果" }
            p.outcome data-decision=(decision) {
                strong { @if decision == "approved" { "准予许可" } @else { "不予许可" } }
            }
            ul {
                @for reason in outcome["reasons"].as_array().into_iter().flatten() {
                    li { (reason.as_str().unwrap_or_default()) }
                }
            }
        }
    }
}

/// The department's request for materials, and the form that supplies them.
fn supplement_form(case_id: &str, suspension: &Value) -> Markup {
    let key = uuid::Uuid::new_v4().simple().to_string();
    let asked: Vec<&str> = suspension["materials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html! {
        div.notice {
            p { "承办部门要求补正材料：" (suspension["reason"].as_str().unwrap_or_default()) }
            form.stack method="post" action={ "/my/cases/" (case_id) "/supplement" } {
                input type="hidden" name="key" value=(key);
                input type="hidden" name="sequence" value=(suspension["sequence"].as_u64().unwrap_or_default());
                fieldset {
                    legend { "补正的材料" }
                    @for (i, material) in asked.iter().enumerate() {
                        div.check {
                            input type="checkbox" id={ "supplied-" (i) } name="materials" value=(material) checked;
                            label for={ "supplied-" (i) } { (material) }
                        }
                    }
                }
                button type="submit" { "提交补正材料" }
            }
        }
    }
}

/// The rating of a completed case: the form, or the rating given.
fn rating(case_id: &str, rating: &Value) -> Markup {
    let key = uuid::Uuid::new_v4().simple().to_string();
    html! {
        h2 { "服务评价" }
        @if let Some(score) = rating["score"].as_i64() {
            p.rated { "您的评价：" (score) " 分" @if let Some(comment) = rating["comment"].as_str() { "，" (comment) } }
        } @else {
            form.stack method="post" action={ "/my/cases/" (case_id) "/rating" } {
                input type="hidden" name="key" value=(key);
                fieldset {
                    legend { "评分（1 非常不满意 — 5 非常满意）" }
                    @for score in (1..=5).rev() {
                        div.check {
                            input type="radio" id={ "score-" (score) } name="score" value=(score) checked[score == 5];
                            label for={ "score-" (score) } { (score) " 分" }
                        }
                    }
                }
                label for="comment" { "意见（可不填）" }
                input #comment name="comment";
                button type="submit" { "提交评价" }
            }
        }
    }
}

/// Supplies the materials the department asked for; the case page again, or the refusal.
async fn supplement(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let materials: Vec<&str> = fields
        .iter()
        .filter(|(name, _)| name == "materials")
        .map(|(_, value)| value.as_str())
        .collect();
    let body = json!({ "materials": materials });
    case_act(
        &req,
        &systems,
        &backend,
        &path,
        "supplements",
        &body,
        &fields,
    )
    .await
}

/// Rates a completed case; the case page again, or the refusal.
async fn rate(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let score: i64 = field("score").parse().unwrap_or(0);
    let body = json!({ "score": score, "comment": field("comment").trim() });
    case_act(&req, &systems, &backend, &path, "rating", &body, &fields).await
}

/// An applicant's act on their case at the portal's terminal (`act`: `supplements` or
/// `rating`), under the form's key; the case page again, or the page with the refusal.
async fn case_act(
    req: &HttpRequest,
    systems: &Systems,
    backend: &Backend,
    case_id: &str,
    act: &str,
    body: &Value,
    fields: &[(String, String)],
) -> HttpResponse {
    if let Some(refused) = cross_site(req) {
        return refused;
    }
    let session = match applicant(req).await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let key = fields
        .iter()
        .find(|(name, _)| name == "key")
        .map_or("", |(_, value)| value.as_str());
    let Some(terminal) = portal_terminal(&systems.settings) else {
        return page(
            "办件进度",
            Some(&session),
            html! { p.problem role="alert" { "本市未配置网上办事大厅终端 (no terminal of channel pc)" } },
        );
    };
    let path = format!("/api/v1/terminals/{terminal}/cases/{case_id}/{act}");
    match backend.post(&session.token, &path, body, key).await {
        Ok(_) => {
            // The suspension supplied, so that the page does not offer its form again while
            // the department has yet to resume the case.
            let supplied = fields
                .iter()
                .find(|(name, _)| name == "sequence")
                .and_then(|(_, value)| value.parse::<u32>().ok())
                .filter(|_| act == "supplements");
            match supplied {
                Some(sequence) => see_other(&format!("/my/cases/{case_id}?supplied={sequence}")),
                None => see_other(&format!("/my/cases/{case_id}")),
            }
        }
        Err(refused) => {
            let progress = case_progress(&systems.settings, backend, &session, case_id, None).await;
            let main = html! {
                p.problem role="alert" { "未能提交：" (refused.message) }
                (progress)
            };
            page("办件进度", Some(&session), main)
        }
    }
}
