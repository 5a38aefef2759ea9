//! The officer workbench (`/workbench`): a manual department's inbox — cases waiting for a
//! decision or for the applicant's materials, collaboration events to sign, answer, return or
//! extend — with counts and the overdue marked. Every act is confirmed on a page of its own
//! (no script needed) and then sent through the API with the officer's token, so the officer's
//! name is on the message it causes; a refusal shows in the API's words.

use super::layout::{local_time, page};
use super::{cross_site, see_other, session, Backend, Refused, Session};
use crate::auth::Grant;
use crate::domain::DepartmentCode;
use crate::systems::Systems;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

/// Mounts the workbench.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/workbench", web::get().to(workbench))
        .route("/workbench/act", web::post().to(act));
}

/// A deadline this close is marked yellow; past it, red.
const NEARLY_DUE_HOURS: i64 = 24;

/// The signed-in officer and their department, or where to go instead.
async fn officer(req: &HttpRequest) -> Result<(Session, DepartmentCode), HttpResponse> {
    match session(req).await {
        Some(session) => match session.principal.grant.clone() {
            Grant::Officer(department) => Ok((session, department)),
            _ => Err(page(
                "需要工作人员身份",
                Some(&session),
                html! { p.problem role="alert" { "工作台只对部门窗口工作人员开放。" a href="/signin" { "换个身份登录" } } },
            )),
        },
        None => Err(see_other("/signin")),
    }
}

/// A done act's notice, from the redirect after it.
#[derive(Deserialize)]
struct Done {
    /// What was done.
    done: Option<String>,
}

/// The inbox.
async fn workbench(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    done: web::Query<Done>,
) -> HttpResponse {
    let (session, department) = match officer(&req).await {
        Ok(officer) => officer,
        Err(elsewhere) => return elsewhere,
    };
    let notice = done.done.as_deref().map(done_words);
    inbox_page(&systems, &backend, &session, &department, notice, None).await
}

/// The inbox page, with a notice of what was just done or the API's refusal of it.
async fn inbox_page(
    systems: &Systems,
    backend: &Backend,
    session: &Session,
    department: &DepartmentCode,
    notice: Option<&str>,
    refused: Option<&Refused>,
) -> HttpResponse {
    let path = format!("/api/v1/departments/{department}/inbox");
    let inbox = match backend.get(&session.token, &path).await {
        Ok(inbox) => inbox,
        Err(refused) => {
            let main = html! { p.problem role="alert" { (refused.message) } };
            return page("工作台", Some(session), main);
        }
    };
    let now = systems.catalog.now();
    let cases = inbox["cases"].as_array().cloned().unwrap_or_default();
    let events = inbox["collaborations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let deciding = cases
        .iter()
        .filter(|c| c["stage"] == "awaiting_decision")
        .count();
    let waiting = cases.len() - deciding;
    let name = systems
        .settings
        .departments
        .iter()
        .find(|d| &d.code == department)
        .map_or_else(|| department.to_string(), |d| d.name.clone());
    let main = html! {
        p { (name) }
        @if let Some(notice) = notice {
            p.done role="status" { (notice) }
        }
        @if let Some(refused) = refused {
            p.problem role="alert" { "未能办理：" (refused.message) }
        }
        ul.counts {
            li { "待决定 " strong #count-deciding { (deciding) } }
            li { "待补正 " strong #count-waiting { (waiting) } }
            li { "协同事件 " strong #count-events { (events.len()) } }
        }
        h2 { "办件" }
        @if cases.is_empty() { p { "没有待办的办件。" } }
        @for case in &cases { (case_card(case, now)) }
        h2 { "协同事件" }
        @if events.is_empty() { p { "没有待办的协同事件。" } }
        @for event in &events { (event_card(event, now)) }
    };
    page("工作台", Some(session), main)
}

/// What a done act's notice says.
fn done_words(done: &str) -> &'static str {
    match done {
        "decide" => "决定已提交。",
        "supplement" => "补正要求已发送给申请人。",
        "sign" => "协同事件已签收。",
        "answer" => "协同意见已答复。",
        "return" => "协同事件已退回。",
        "extension" => "延期申请已提交。",
        _ => "已办理。",
    }
}

/// A deadline's mark: red past it, yellow within [`NEARLY_DUE_HOURS`].
fn due_mark(due: Option<&str>, now: DateTime<Utc>) -> Markup {
    let Some(due) = due else {
        return html! {};
    };
    let Ok(at) = DateTime::parse_from_rfc3339(due) else {
        return html! { (due) };
    };
    let left = at.with_timezone(&Utc) - now;
    let (class, words) = if left < chrono::Duration::zero() {
        ("due red", "已超期")
    } else if left < chrono::Duration::hours(NEARLY_DUE_HOURS) {
        ("due yellow", "即将到期")
    } else {
        ("due", "")
    };
    html! {
        span class=(class) { "期限 " (local_time(due)) @if !words.is_empty() { " · " strong { (words) } } }
    }
}

/// A case of the department, with its acts.
fn case_card(case: &Value, now: DateTime<Utc>) -> Markup {
    let application = &case["application"];
    let case_id = application["case_id"].as_str().unwrap_or_default();
    let deciding = case["stage"] == "awaiting_decision";
    html! {
        article.card.case data-case=(case_id) {
            h3 { (application["matter_code"].as_str().unwrap_or_default()) " · " code { (case_id) } }
            p {
                "申请人 " (application["applicant"]["name"].as_str().unwrap_or("（已加密）")) " · "
                (due_mark(case["receipt"]["due_by"].as_str(), now))
            }
            @for result in case["collaboration_results"].as_array().into_iter().flatten() {
                p.small { "协同意见：" (result["department"].as_str().unwrap_or_default()) " "
                    (result["outcome"].as_str().unwrap_or_default()) "（" (result["opinion"].as_str().unwrap_or_default()) "）" }
            }
            @if deciding {
                (act_form("decide", case_id, true, html! {
                    fieldset {
                        legend { "决定" }
                        div.check {
                            input type="radio" id={ "approve-" (case_id) } name="decision" value="approve" checked;
                            label for={ "approve-" (case_id) } { "准予" }
                        }
                        div.check {
                            input type="radio" id={ "reject-" (case_id) } name="decision" value="reject";
                            label for={ "reject-" (case_id) } { "不予" }
                        }
                    }
                    label for={ "opinion-" (case_id) } { "审查意见" }
                    input id={ "opinion-" (case_id) } name="opinion" required value="经审查，符合规定";
                    button type="submit" { "提交决定" }
                }))
                (act_form("supplement", case_id, true, html! {
                    label for={ "materials-" (case_id) } { "需补正的材料（以逗号分隔）" }
                    input id={ "materials-" (case_id) } name="materials" required;
                    label for={ "why-" (case_id) } { "补正理由" }
                    input id={ "why-" (case_id) } name="reason" required;
                    button type="submit" { "要求补正" }
                }))
            } @else {
                p { "等待申请人补正材料。" }
            }
        }
    }
}

/// A collaboration event at the department, with its acts.
fn event_card(event: &Value, now: DateTime<Utc>) -> Markup {
    let event_id = event["event_id"].as_str().unwrap_or_default();
    let signed = event["signed"].as_bool().unwrap_or(false);
    let route: Vec<&str> = event["route"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    html! {
        article.card.event data-event=(event_id) {
            h3 { (event["matter_code"].as_str().unwrap_or_default()) " · 来自 " (event["requester"].as_str().unwrap_or_default()) }
            p { (route.join(" → ")) " · " (due_mark(event["deadline"].as_str(), now))
                " · " @if signed { "已签收" } @else { "未签收" } }
            @if !signed {
                (act_form("sign", event_id, false, html! {
                    button type="submit" { "签收" }
                }))
            }
            (act_form("answer", event_id, true, html! {
                label for={ "outcome-" (event_id) } { "协同意见" }
                select id={ "outcome-" (event_id) } name="outcome" {
                    option value="agree" { "同意" }
                    option value="disagree" { "不同意" }
                }
                label for={ "answer-" (event_id) } { "说明" }
                input id={ "answer-" (event_id) } name="opinion" required value="经核查，情况属实";
                button type="submit" { "答复" }
            }))
            (act_form("return", event_id, true, html! {
                label for={ "return-" (event_id) } { "退回理由" }
                input id={ "return-" (event_id) } name="reason" required;
                button type="submit" { "退回" }
            }))
            (act_form("extension", event_id, true, html! {
                label for={ "days-" (event_id) } { "延期（工作日）" }
                input id={ "days-" (event_id) } name="days" type="number" min="1" max="30" value="2";
                label for={ "extension-" (event_id) } { "延期理由" }
                input id={ "extension-" (event_id) } name="reason" required;
                button type="submit" { "申请延期" }
            }))
        }
    }
}

/// An act as posted: which, on what, with what; `confirmed` once the officer confirmed it.
#[derive(Deserialize)]
struct Act {
    /// `decide`, `supplement`, `sign`, `answer`, `return` or `extension`.
    action: String,
    /// The case or event.
    target: String,
    /// `approve` or `reject`.
    #[serde(default)]
    decision: String,
    /// `agree` or `disagree`.
    #[serde(default)]
    outcome: String,
    /// The opinion of a decision or an answer.
    #[serde(default)]
    opinion: String,
    /// Why an event is returned or extended.
    #[serde(default)]
    reason: String,
    /// Working days more.
    #[serde(default)]
    days: String,
    /// The materials a supplement request asks for, separated by commas.
    #[serde(default)]
    materials: String,
    /// The key the act is sent under: the same confirmation sent twice acts once.
    #[serde(default)]
    key: String,
    /// Set by the confirmation page.
    #[serde(default)]
    confirmed: String,
}

impl Act {
    /// The API call the act makes: its path and body, or what is wrong with the form.
    fn call(&self, department: &DepartmentCode) -> Result<(String, Value), String> {
        let target = &self.target;
        let (path, body) = match self.action.as_str() {
            "decide" => (
                format!("/api/v1/departments/{department}/cases/{target}/decision"),
                json!({ "decision": self.decision, "opinion": self.opinion }),
            ),
            "supplement" => (
                format!("/api/v1/departments/{department}/cases/{target}/supplement-request"),
                json!({ "materials": self.material_list(), "reason": self.reason }),
            ),
            "sign" => (format!("/api/v1/collaborations/{target}/sign"), json!({})),
            "answer" => (
                format!("/api/v1/collaborations/{target}/result"),
                json!({ "outcome": self.outcome, "opinion": self.opinion }),
            ),
            "return" => (
                format!("/api/v1/collaborations/{target}/return"),
                json!({ "reason": self.reason }),
            ),
            "extension" => {
                let days: u32 = self
                    .days
                    .trim()
                    .parse()
                    .map_err(|_| "延期天数须为正整数".to_owned())?;
                (
                    format!("/api/v1/collaborations/{target}/extension"),
                    json!({ "days": days, "reason": self.reason }),
                )
            }
            other => return Err(format!("没有“{other}”这项操作")),
        };
        Ok((path, body))
    }

    /// The materials asked for, one by one (commas, Chinese or not, separate them).
    fn material_list(&self) -> Vec<&str> {
        self.materials
            .split([',', '，', '、'])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect()
    }

    /// What the act does, for the confirmation.
    fn summary(&self) -> String {
        match self.action.as_str() {
            "supplement" => format!(
                "要求办件 {} 补正材料：{}。理由：{}",
                self.target,
                self.material_list().join("、"),
                self.reason
            ),
            "decide" => {
                let decision = if self.decision == "reject" {
                    "不予许可"
                } else {
                    "准予许可"
                };
                format!(
                    "对办件 {} 作出决定：{decision}。意见：{}",
                    self.target, self.opinion
                )
            }
            "sign" => format!("签收协同事件 {}", self.target),
            "answer" => {
                let outcome = if self.outcome == "disagree" {
                    "不同意"
                } else {
                    "同意"
                };
                format!(
                    "答复协同事件 {}：{outcome}。说明：{}",
                    self.target, self.opinion
                )
            }
            "return" => format!("退回协同事件 {}。理由：{}", self.target, self.reason),
            "extension" => format!(
                "为协同事件 {} 申请延期 {} 个工作日。理由：{}",
                self.target, self.days, self.reason
            ),
            _ => "未知操作".to_owned(),
        }
    }
}

/// An act: the confirmation page first, then the API call, then the inbox again.
async fn act(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    form: web::Form<Act>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req) {
        return refused;
    }
    let (session, department) = match officer(&req).await {
        Ok(officer) => officer,
        Err(elsewhere) => return elsewhere,
    };
    let act = form.into_inner();
    let (path, body) = match act.call(&department) {
        Ok(call) => call,
        Err(problem) => {
            let refused = Refused {
                message: problem,
                field: None,
            };
            return inbox_page(
                &systems,
                &backend,
                &session,
                &department,
                None,
                Some(&refused),
            )
            .await;
        }
    };
    if act.confirmed != "yes" {
        return page("确认操作", Some(&session), confirmation(&act));
    }
    match backend.post(&session.token, &path, &body, &act.key).await {
        Ok(_) => see_other(&format!("/workbench?done={}", act.action)),
        Err(refused) => {
            inbox_page(
                &systems,
                &backend,
                &session,
                &department,
                None,
                Some(&refused),
            )
            .await
        }
    }
}

/// A form posting act `action` on `target` (a case or an event) to `/workbench/act`, with
/// `fields`; stacked (one field a line) when `stack`.
fn act_form(action: &str, target: &str, stack: bool, fields: Markup) -> Markup {
    html! {
        form.stack[stack] method="post" action="/workbench/act" {
            input type="hidden" name="action" value=(action);
            input type="hidden" name="target" value=(target);
            (fields)
        }
    }
}

/// The page that asks the officer to confirm `act`, carrying it on.
fn confirmation(act: &Act) -> Markup {
    let key = uuid::Uuid::new_v4().simple().to_string();
    html! {
        p #summary { (act.summary()) }
        form.stack method="post" action="/workbench/act" {
            input type="hidden" name="action" value=(act.action);
            input type="hidden" name="target" value=(act.target);
            input type="hidden" name="decision" value=(act.decision);
            input type="hidden" name="outcome" value=(act.outcome);
            input type="hidden" name="opinion" value=(act.opinion);
            input type="hidden" name="reason" value=(act.reason);
            input type="hidden" name="days" value=(act.days);
            input type="hidden" name="materials" value=(act.materials);
            input type="hidden" name="key" value=(key);
            input type="hidden" name="confirmed" value="yes";
            button #confirm type="submit" { "确认" }
            a href="/workbench" { "取消，返回工作台" }
        }
    }
}
