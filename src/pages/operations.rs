//! The city operations dashboard (`/operations`, 一网统管's 城市运行 view), for a centre's
//! dispatcher or a supervisor: the three-tier tree with each centre's open, overdue and
//! escalated events; the events returned to the dispatcher's centre, to reassign; the
//! departments' and centres' figures over a period; and a live feed of the bus, pushed by
//! Server-Sent Events (`/operations/live`). Every figure comes from the API with the signed-in
//! person's token, so a dispatcher sees their own subtree only.

use super::layout::{page, step_words};
use super::{cross_site, see_other, session, Backend, Refused, Session};
use crate::auth::Grant;
use crate::domain::CentreCode;
use crate::settings::Settings;
use crate::systems::Systems;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Mounts the dashboard.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operations", web::get().to(dashboard))
        .route("/operations/live", web::get().to(live))
        .route("/operations/reassign", web::post().to(reassign));
}

/// How often the live feed says it is alive when nothing happens, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The signed-in dispatcher or supervisor, or where to go instead.
async fn watcher(req: &HttpRequest) -> Result<Session, HttpResponse> {
    match session(req).await {
        Some(session)
            if matches!(
                session.principal.grant,
                Grant::Dispatcher(_) | Grant::Supervisor
            ) =>
        {
            Ok(session)
        }
        Some(session) => Err(page(
            "需要调度员或监督人员身份",
            Some(&session),
            html! { p.problem role="alert" { "城市运行看板只对治理中心调度员和监督人员开放。" a href="/signin" { "换个身份登录" } } },
        )),
        None => Err(see_other("/signin")),
    }
}

/// The period asked for, and what was just done.
#[derive(Deserialize, Default)]
struct Shown {
    /// First day (`YYYY-MM-DD`).
    #[serde(default)]
    from: String,
    /// Last day.
    #[serde(default)]
    to: String,
    /// An act just done.
    #[serde(default)]
    done: String,
}

/// The dashboard.
async fn dashboard(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    shown: web::Query<Shown>,
) -> HttpResponse {
    let session = match watcher(&req).await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    dashboard_page(&systems.settings, &backend, &session, &shown, None).await
}

/// The dashboard page, with the API's refusal of an act when there was one.
async fn dashboard_page(
    settings: &Settings,
    backend: &Backend,
    session: &Session,
    shown: &Shown,
    refused: Option<&Refused>,
) -> HttpResponse {
    let mut query = Vec::new();
    if !shown.from.is_empty() {
        query.push(format!("from={}", shown.from));
    }
    if !shown.to.is_empty() {
        query.push(format!("to={}", shown.to));
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let token = &session.token;
    let centres = backend
        .get(token, &format!("/api/v1/supervision/centers{query}"))
        .await;
    let departments = match session.principal.grant {
        Grant::Supervisor => Some(
            backend
                .get(token, &format!("/api/v1/supervision/departments{query}"))
                .await,
        ),
        _ => None,
    };
    let returned = match &session.principal.grant {
        Grant::Dispatcher(own) => Some((
            own.clone(),
            backend
                .get(token, &format!("/api/v1/governance/centers/{own}/returned"))
                .await,
        )),
        _ => None,
    };
    let main = html! {
        @if !shown.done.is_empty() {
            p.done role="status" { "已改派，协同事件已重新派发。" }
        }
        @if let Some(refused) = refused {
            p.problem role="alert" { "未能办理：" (refused.message) }
        }
        form.period method="get" action="/operations" {
            label for="from" { "起始日期" }
            input #from type="date" name="from" value=(shown.from);
            label for="to" { "截止日期" }
            input #to type="date" name="to" value=(shown.to);
            button type="submit" { "按期间查看" }
        }
        @match &centres {
            Ok(figures) => {
                h2 { "三级治理中心" }
                (tree(settings, figures))
                h2 { "中心指标" }
                (chart("各中心按时办结率与超期事件", &centre_chart(figures)))
                (centre_table(figures))
            }
            Err(refused) => p.problem role="alert" { (refused.message) },
        }
        @if let Some((own, returned)) = &returned {
            h2 { "待改派的退回事件" }
            (returned_events(settings, own, returned))
        }
        @if let Some(departments) = &departments {
            h2 { "部门指标" }
            @match departments {
                Ok(figures) => {
                    (chart("各部门按时办结率与超期办件", &department_chart(figures)))
                    (department_table(figures))
                }
                Err(refused) => p.problem role="alert" { (refused.message) },
            }
        }
        h2 { "实时动态" }
        p.small { "总线上的每条消息即时推送（不含个人信息）。" }
        ol #live data-source="/operations/live" aria-live="polite" {}
        script src="/assets/echarts.min.js" defer {}
        script src="/assets/operations.js" defer {}
    };
    page("城市运行看板", Some(session), main)
}

/// The tree city → districts → streets, each centre with its open, overdue and escalated
/// events; a centre with an overdue event is marked red. Only the centres `figures` hold show
/// (a dispatcher's subtree).
fn tree(settings: &Settings, figures: &Value) -> Markup {
    let by_code: HashMap<&str, &Value> = figures
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["centre"].as_str()?, f)))
        .collect();
    let governance = &settings.governance;
    let node = |code: &CentreCode, name: &str| -> Markup {
        let Some(figure) = by_code.get(code.as_str()) else {
            return html! {};
        };
        let events = &figure["events"];
        let received = events["received"].as_u64().unwrap_or(0);
        let completed = events["completed"].as_u64().unwrap_or(0);
        let overdue = events["open_overdue"].as_u64().unwrap_or(0);
        let escalations = figure["escalations"].as_u64().unwrap_or(0);
        html! {
            span data-centre=(code) class=(if overdue > 0 { "node red" } else { "node" }) {
                strong { (name) }
                " 在办 " (received.saturating_sub(completed))
                " · 超期 " span.overdue { (overdue) }
                " · 升级 " (escalations)
                @if overdue > 0 { " " strong.warning { "红色预警" } }
            }
        }
    };
    html! {
        ul.tree {
            li {
                (node(&governance.city.code, &governance.city.name))
                ul {
                    @for district in &governance.districts {
                        li {
                            (node(&district.code, &district.name))
                            ul {
                                @for street in governance.streets.iter().filter(|s| s.district == district.code) {
                                    li { (node(&street.code, &street.name)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A bar chart (Apache ECharts, drawn by `operations.js` from `data`); the table beside it
/// says the same in text.
fn chart(title: &str, data: &Value) -> Markup {
    html! {
        div.chart role="img" aria-label=(title) data-title=(title) data-chart=(data.to_string()) {}
    }
}

/// The centres' on-time rate (%) and open overdue events, for [`chart`].
fn centre_chart(figures: &Value) -> Value {
    bars(figures, "events")
}

/// The departments' on-time rate (%) and open overdue cases, for [`chart`].
fn department_chart(figures: &Value) -> Value {
    bars(figures, "cases")
}

/// Names, on-time rates (%) and open overdue counts of `figures`, read from `tally`.
fn bars(figures: &Value, tally: &str) -> Value {
    let rows: Vec<&Value> = figures.as_array().into_iter().flatten().collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default())
        .collect();
    let rates: Vec<Value> = rows
        .iter()
        .map(|f| {
            f[tally]["on_time_rate"]
                .as_f64()
                .map_or(Value::Null, |r| json!((r * 1000.0).round() / 10.0))
        })
        .collect();
    let overdue: Vec<u64> = rows
        .iter()
        .map(|f| f[tally]["open_overdue"].as_u64().unwrap_or(0))
        .collect();
    json!({
        "labels": names,
        "series": [
            { "name": "按时办结率（%）", "values": rates },
            { "name": "超期未办结", "values": overdue },
        ],
    })
}

/// A rate as a percentage, or a dash.
fn percent(rate: &Value) -> String {
    rate.as_f64()
        .map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

/// Hours to one decimal, or a dash.
fn hours(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "—".to_owned(), |h| format!("{h:.1}"))
}

/// The centres' figures.
fn centre_table(figures: &Value) -> Markup {
    html! {
        table.figures {
            thead { tr {
                th scope="col" { "中心" } th scope="col" { "收到事件" } th scope="col" { "按时办结率" }
                th scope="col" { "P90 办理时长（小时）" } th scope="col" { "退回" } th scope="col" { "升级" }
            } }
            tbody {
                @for figure in figures.as_array().into_iter().flatten() {
                    tr {
                        td { (figure["name"].as_str().unwrap_or_default()) }
                        td { (figure["events"]["received"]) }
                        td { (percent(&figure["events"]["on_time_rate"])) }
                        td { (hours(&figure["events"]["p90_handling_hours"])) }
                        td { (figure["returns"]) }
                        td { (figure["escalations"]) }
                    }
                }
            }
        }
    }
}

/// The departments' figures (a supervisor's).
fn department_table(figures: &Value) -> Markup {
    html! {
        table.figures {
            thead { tr {
                th scope="col" { "部门" } th scope="col" { "办件" } th scope="col" { "按时办结率" }
                th scope="col" { "P90 办理时长（小时）" } th scope="col" { "退回" } th scope="col" { "升级" }
                th scope="col" { "评价" }
            } }
            tbody {
                @for figure in figures.as_array().into_iter().flatten() {
                    tr {
                        td { (figure["name"].as_str().unwrap_or_default()) }
                        td { (figure["cases"]["received"]) }
                        td { (percent(&figure["cases"]["on_time_rate"])) }
                        td { (hours(&figure["cases"]["p90_handling_hours"])) }
                        td { (figure["returns"]) }
                        td { (figure["escalations"]) }
                        td { (figure["ratings"]["count"]) " 条，平均 "
                            (figure["ratings"]["average"].as_f64().map_or_else(|| "—".to_owned(), |a| format!("{a:.1}"))) }
                    }
                }
            }
        }
    }
}

/// The events returned to the dispatcher's centre, each with the reassignment.
fn returned_events(
    settings: &Settings,
    own: &CentreCode,
    returned: &Result<Value, Refused>,
) -> Markup {
    let events = match returned {
        Ok(events) => events.as_array().cloned().unwrap_or_default(),
        Err(refused) => return html! { p.problem role="alert" { (refused.message) } },
    };
    html! {
        @if events.is_empty() { p { "没有待改派的事件。" } }
        @for event in &events {
            @let event_id = event["event_id"].as_str().unwrap_or_default();
            article.card.returned data-event=(event_id) {
                p { "事件 " code { (event_id) } " · 原派发部门 " (event["department"].as_str().unwrap_or_default()) }
                @for r in event["returns"].as_array().into_iter().flatten() {
                    p.small { "退回理由：" (r["reason"].as_str().unwrap_or_default()) }
                }
                form.stack method="post" action="/operations/reassign" {
                    input type="hidden" name="centre" value=(own);
                    input type="hidden" name="event_id" value=(event_id);
                    label for={ "to-" (event_id) } { "改派给" }
                    select id={ "to-" (event_id) } name="department" {
                        @for department in &settings.departments {
                            option value=(department.code) { (department.name) }
                        }
                    }
                    button type="submit" { "改派" }
                }
            }
        }
    }
}

/// A reassignment as posted; `confirmed` once the dispatcher confirmed it.
#[derive(Deserialize)]
struct Reassign {
    /// The dispatcher's centre.
    centre: String,
    /// The returned event.
    event_id: String,
    /// The department it goes to.
    department: String,
    /// The key it is sent under.
    #[serde(default)]
    key: String,
    /// Set by the confirmation page.
    #[serde(default)]
    confirmed: String,
}

/// A reassignment: confirmed first, then sent through the API.
async fn reassign(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    form: web::Form<Reassign>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req) {
        return refused;
    }
    let session = match watcher(&req).await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let form = form.into_inner();
    if form.confirmed != "yes" {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let main = html! {
            p #summary { "将协同事件 " (form.event_id) " 改派给 " (form.department) "。" }
            form.stack method="post" action="/operations/reassign" {
                input type="hidden" name="centre" value=(form.centre);
                input type="hidden" name="event_id" value=(form.event_id);
                input type="hidden" name="department" value=(form.department);
                input type="hidden" name="key" value=(key);
                input type="hidden" name="confirmed" value="yes";
                button #confirm type="submit" { "确认" }
                a href="/operations" { "取消，返回看板" }
            }
        };
        return page("确认改派", Some(&session), main);
    }
    let path = format!(
        "/api/v1/governance/centers/{}/events/{}/reassign",
        form.centre, form.event_id
    );
    let body = json!({ "department": form.department });
    match backend.post(&session.token, &path, &body, &form.key).await {
        Ok(_) => see_other("/operations?done=reassign"),
        Err(refused) => {
            let shown = Shown::default();
            dashboard_page(
                &systems.settings,
                &backend,
                &session,
                &shown,
                Some(&refused),
            )
            .await
        }
    }
}

/// The live feed: every message on the bus, as Server-Sent Events, for as long as the page is
/// open.
async fn live(req: HttpRequest, systems: web::Data<Systems>) -> HttpResponse {
    if let Err(elsewhere) = watcher(&req).await {
        return elsewhere;
    }
    let listening = match systems.watch_live().await {
        Ok(listening) => listening,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "the live feed cannot follow the bus"
            );
            return HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("实时动态暂不可用 (the live feed cannot follow the bus now)");
        }
    };
    let ticks = tokio::time::interval(KEEP_ALIVE);
    let events = futures::stream::unfold(
        (listening, ticks),
        |(mut listening, mut ticks)| async move {
            let chunk = tokio::select! {
                happened = listening.recv() => match happened {
                    Ok(happened) => {
                        let data = json!({
                            "at": happened.at,
                            "kind": happened.kind,
                            "words": step_words(&happened.kind),
                            "case_id": happened.case_id,
                            "source": happened.source,
                            "target": happened.target,
                        });
                        format!("data: {data}\n\n")
                    }
                    // Fell behind: what was skipped is not sent; the feed goes on.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(skipped)) => {
                        format!(": {skipped} skipped\n\n")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = ticks.tick() => ": alive\n\n".to_owned(),
            };
            Some((
                Ok::<Bytes, actix_web::Error>(Bytes::from(chunk)),
                (listening, ticks),
            ))
        },
    );
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(events)
}
