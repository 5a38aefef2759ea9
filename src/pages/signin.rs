//! Signing in to the screens. With `[auth.oidc]` the page sends people to the city's identity
//! provider (`oidc.rs`). With the development keys (`auth.development_keys`, the built-in
//! configuration) it also offers a form that signs in as a chosen role: the service mints the
//! token with its development key, as `govfusion token` does. Either way the token is kept in
//! the session cookie.

use super::layout::page;
use super::{cross_site, home_of, see_other, session_cookie, SESSION_COOKIE};
use crate::auth::development::DevelopmentKey;
use crate::auth::{RoleClaims, RoleName};
use crate::domain::{CentreCode, DepartmentCode};
use crate::settings::Settings;
use crate::systems::Systems;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;
use std::time::Duration;

/// How long a session lasts: a working day.
const SESSION_TTL: Duration = Duration::from_secs(super::SESSION_SECS as u64);

/// Mounts `/signin` and `/signout`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/signin", web::get().to(form))
        .route("/signin", web::post().to(sign_in))
        .route("/signout", web::post().to(sign_out));
}

/// The sign-in page.
async fn form(systems: web::Data<Systems>) -> HttpResponse {
    page("登录", None, sign_in_form(&systems.settings, None))
}

/// The form: an account name and a role (an officer's department).
fn sign_in_form(settings: &Settings, problem: Option<&str>) -> maud::Markup {
    let provider = settings.auth.oidc.enabled();
    let development = settings.auth.uses_development_keys();
    html! {
        @if provider {
            p { a.button #oidc href="/signin/oidc" { "统一身份认证登录" } }
        }
        @if !provider && !development {
            p.problem role="alert" {
                "本服务未配置网页登录：请在 [auth.oidc] 中配置统一身份认证。"
            }
        }
        @if development { (development_form(settings, problem)) }
    }
}

/// The development sign-in: an account, a name and a role (with its department or centre).
fn development_form(settings: &Settings, problem: Option<&str>) -> maud::Markup {
    html! {
        p { "开发环境：以所选角色登录（令牌由本服务的开发密钥签发）。" }
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        form.stack method="post" action="/signin" {
            label for="account" { "账号" }
            input #account name="account" required autocomplete="username" value="citizen-001";
            label for="name" { "姓名" }
            input #name name="name" autocomplete="name" value="张三";
            label for="role" { "角色" }
            select #role name="role" {
                option value="applicant" selected { "申请人（市民、企业）" }
                option value="officer" { "部门窗口工作人员" }
                option value="dispatcher" { "治理中心调度员" }
                option value="supervisor" { "监督人员" }
            }
            label for="department" { "所属部门（工作人员）" }
            select #department name="department" {
                option value="" { "—" }
                @for department in &settings.departments {
                    option value=(department.code) { (department.name) }
                }
            }
            label for="centre" { "所属中心（调度员）" }
            select #centre name="centre" {
                option value="" { "—" }
                @for centre in centres(settings) {
                    option value=(centre.0) { (centre.1) }
                }
            }
            button type="submit" { "登录" }
        }
    }
}

/// The sign-in form as posted.
#[derive(Deserialize)]
struct SignIn {
    /// The account (`sub`).
    account: String,
    /// The display name.
    #[serde(default)]
    name: String,
    /// `applicant` or `officer`.
    role: String,
    /// An officer's department.
    #[serde(default)]
    department: String,
    /// A dispatcher's centre.
    #[serde(default)]
    centre: String,
}

/// Every governance centre, city first: its code and name.
fn centres(settings: &Settings) -> Vec<(String, String)> {
    let governance = &settings.governance;
    let city = std::iter::once(&governance.city);
    let districts = governance.districts.iter();
    let mut all: Vec<(String, String)> = city
        .chain(districts)
        .map(|c| (c.code.to_string(), c.name.clone()))
        .collect();
    all.extend(
        governance
            .streets
            .iter()
            .map(|s| (s.code.to_string(), s.name.clone())),
    );
    all
}

/// Signs in: mints the token, sets the session cookie, and goes to the home page.
async fn sign_in(
    req: HttpRequest,
    systems: web::Data<Systems>,
    form: web::Form<SignIn>,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req) {
        return refused;
    }
    let settings = &systems.settings;
    let form = form.into_inner();
    let refuse = |problem: &str| page("登录", None, sign_in_form(settings, Some(problem)));
    if !settings.auth.uses_development_keys() {
        return refuse("此服务不提供开发登录");
    }
    let account = form.account.trim();
    if account.is_empty() {
        return refuse("请填写账号");
    }
    let (mut department, mut centre) = (None, None);
    let role = match form.role.as_str() {
        "applicant" => RoleName::Applicant,
        "supervisor" => RoleName::Supervisor,
        "officer" => {
            let code = form.department.trim();
            if !settings.departments.iter().any(|d| d.code.as_str() == code) {
                return refuse("工作人员请选择所属部门");
            }
            department = Some(DepartmentCode::from(code));
            RoleName::Officer
        }
        "dispatcher" => {
            let code = form.centre.trim();
            if !centres(settings).iter().any(|(c, _)| c == code) {
                return refuse("调度员请选择所属中心");
            }
            centre = Some(CentreCode::from(code));
            RoleName::Dispatcher
        }
        _ => return refuse("请选择角色"),
    };
    let name = form.name.trim();
    let claims = RoleClaims {
        sub: account.to_owned(),
        name: (!name.is_empty()).then(|| name.to_owned()),
        role,
        terminal: None,
        department,
        centre,
    };
    let home = match claims.clone().principal() {
        Ok(principal) => home_of(&principal.grant),
        Err(error) => return refuse(&format!("登录失败：{error}")),
    };
    let auth = &settings.auth;
    let minted = DevelopmentKey::load_or_create(&auth.development_key_file)
        .and_then(|key| key.mint(&auth.issuer, &auth.audience, claims, SESSION_TTL));
    let token = match minted {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "signing in: no token minted");
            return refuse("登录失败：无法签发令牌");
        }
    };
    let mut redirect = see_other(home);
    if let Err(error) = redirect.add_cookie(&session_cookie(settings, token)) {
        tracing::error!(%error, "signing in: the session cookie cannot be set");
        return refuse("登录失败");
    }
    redirect
}

/// Signs out: the session cookie is removed.
async fn sign_out(req: HttpRequest) -> HttpResponse {
    if let Some(refused) = cross_site(&req) {
        return refused;
    }
    let mut redirect = see_other("/");
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    // A cookie of this fixed form always goes into a header.
    let _ = redirect.add_cookie(&cookie);
    redirect
}
