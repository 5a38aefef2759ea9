//! The frame every page shares, and the words a person reads for statuses and steps.

use super::Session;
use crate::auth::Grant;
use actix_web::http::header;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

/// A whole page: `title`, the navigation for `session`, and `main`.
pub fn page(title: &str, session: Option<&Session>, main: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx adds no inline style, which the pages' Content-Security-Policy forbids.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                title { (title) " · 一网通办" }
                link rel="stylesheet" href="/assets/portal.css";
                script src="/assets/htmx.min.js" defer {}
            }
            body {
                a.skip href="#main" { "跳到正文" }
                header.site {
                    a.brand href="/" { "一网通办" }
                    nav aria-label="主导航" {
                        a href="/" { "办事指南" }
                        @if let Some(session) = session {
                            @if session.principal.grant == Grant::Applicant {
                                a href="/my" { "我的办件" }
                            }
                            @if matches!(session.principal.grant, Grant::Officer(_)) {
                                a href="/workbench" { "工作台" }
                            }
                            @if matches!(session.principal.grant, Grant::Dispatcher(_) | Grant::Supervisor) {
                                a href="/operations" { "城市运行" }
                            }
                            span.who { (who(session)) }
                            form.inline method="post" action="/signout" {
                                button type="submit" { "退出" }
                            }
                        } @else {
                            a href="/signin" { "登录" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (main)
                }
            }
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// A fragment a page swaps in (htmx), with no frame.
pub fn fragment(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// Who is signed in, as the header shows it.
fn who(session: &Session) -> String {
    let principal = &session.principal;
    let name = &principal.name;
    let role = match &principal.grant {
        Grant::Applicant => "申请人",
        Grant::Officer(_) => "窗口工作人员",
        Grant::Dispatcher(_) => "调度员",
        Grant::Supervisor => "监督人员",
        Grant::Operator => "运维人员",
        Grant::Terminal(_) => "终端",
        Grant::Service => "服务",
    };
    format!("{name}（{role}）")
}

/// A case's status in words.
pub fn status_words(status: &str) -> &'static str {
    match status {
        "submitted" => "已提交",
        "published" => "已分送承办部门",
        "accepted" => "已受理",
        "suspended" => "待补正材料",
        "collaborating" => "部门协同中",
        "decided" => "已作出决定",
        "completed" => "已办结",
        "failed" => "未能受理",
        _ => "处理中",
    }
}

/// A collaboration event's status in words.
pub fn event_words(status: &str) -> &'static str {
    match status {
        "routing" => "派发中",
        "dispatched" => "已派发",
        "signed" => "已签收",
        "returned" => "已退回，重新派发中",
        "answered" => "已答复",
        _ => "处理中",
    }
}

/// A history step in words.
pub fn step_words(step: &str) -> String {
    let words = match step {
        "submitted" => "提交申请",
        "application.published" => "市级中心分送承办部门",
        "application.accepted" => "承办部门受理",
        "collaboration.requested" => "承办部门发起协同",
        "collaboration.dispatched" => "协同事件派发",
        "collaboration.signed" => "协同部门签收",
        "collaboration.answered" => "协同部门答复",
        "collaboration.returned" => "协同部门退回",
        "collaboration.completed" => "协同办结",
        "collaboration.escalated" => "协同事件升级",
        "collaboration.extension_requested" => "协同部门申请延期",
        "collaboration.extension_decided" => "延期申请已决定",
        "case.suspended" => "要求补正材料",
        "case.supplemented" => "已补正材料",
        "case.resumed" => "恢复办理",
        "case.rated" => "已评价",
        "approval.published" => "承办部门作出决定",
        "approval.delivered" => "结果送达",
        "supervision.warning" => "时限预警",
        other => return other.to_owned(),
    };
    words.to_owned()
}

/// A time as people here read it: Beijing time, to the second.
pub fn local_time(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at).map_or_else(
        |_| at.to_owned(),
        |at| {
            let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap_or(*at.offset());
            at.with_timezone(&beijing)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}
