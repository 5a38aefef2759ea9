//! The people's screens (issue 17), served by the same binary: server-rendered pages in
//! Chinese with a little progressive JavaScript (htmx, vendored under `assets/`).
//!
//! A page acts through the JSON API like any client: its handler calls this process's own
//! `/api/v1` with the signed-in person's bearer token ([`Backend`]), so that every check,
//! refusal, audit record and idempotency key is the API's, and the page only shows the answer
//! (a refusal in the API's own words). The token rides in an HttpOnly, SameSite=Strict session
//! cookie that no script can read; a form posted from another site is refused ([`cross_site`]).
//!
//! * `signin.rs` — the sign-in page: the identity provider's sign-in when `[auth.oidc]` names
//!   one, and with the development keys a form that signs in as a chosen role.
//! * `oidc.rs` — the OpenID Connect authorization code flow with PKCE.
//! * `portal.rs` — the citizen portal: the matters, the application form, "my cases".
//! * `case.rs` — a citizen's case page: its progress, followed without a reload, and the
//!   applicant's supplement and rating.
//! * `operations.rs` — the city operations dashboard: the tree, returned events to reassign,
//!   the figures over a period, the live feed (Server-Sent Events).
//! * `workbench.rs` — the officer workbench: a department's inbox and every act on it, each
//!   confirmed first.
//! * `layout.rs` — the frame every page shares, and the words for statuses and steps.
//! * `assets/` — htmx 2.0.11 (Zero-Clause BSD, `htmx-LICENSE.txt`), Apache ECharts 6.1.0
//!   (Apache-2.0, `echarts-LICENSE.txt` and `echarts-NOTICE.txt`), the style sheet and the
//!   dashboard's script.

mod case;
mod layout;
mod oidc;
mod operations;
mod portal;
mod signin;
mod workbench;

use crate::auth::{Authenticator, Grant, Principal};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use std::net::SocketAddr;

/// The session cookie: the signed-in person's bearer token.
pub const SESSION_COOKIE: &str = "govfusion_session";

/// Mounts the pages and their assets; `api` is where this process's API listens.
pub fn configure(cfg: &mut web::ServiceConfig, api: SocketAddr) {
    cfg.app_data(web::Data::new(Backend::new(api)))
        .route("/assets/htmx.min.js", web::get().to(htmx))
        .route("/assets/portal.css", web::get().to(stylesheet))
        .route("/assets/operations.js", web::get().to(operations_script))
        .route("/assets/echarts.min.js", web::get().to(echarts))
        .configure(signin::configure)
        .configure(oidc::configure)
        .configure(portal::configure)
        .configure(case::configure)
        .configure(workbench::configure)
        .configure(operations::configure);
}

/// htmx, vendored.
async fn htmx() -> HttpResponse {
    asset("text/javascript; charset=utf-8", HTMX)
}

/// The pages' style sheet.
async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

/// The operations dashboard's live feed.
async fn operations_script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", OPERATIONS_SCRIPT)
}

/// Apache ECharts, vendored.
async fn echarts() -> HttpResponse {
    asset("text/javascript; charset=utf-8", ECHARTS)
}

/// Apache ECharts 6.1.0, from its npm package (`dist/echarts.common.min.js`).
const ECHARTS: &str = include_str!("assets/echarts-6.1.0.common.min.js");
/// The operations dashboard's script: its live feed and its charts.
const OPERATIONS_SCRIPT: &str = include_str!("assets/operations.js");
/// htmx 2.0.11, from its npm package (`dist/htmx.min.js`).
const HTMX: &str = include_str!("assets/htmx-2.0.11.min.js");
/// The style sheet of every page.
const STYLESHEET: &str = include_str!("assets/portal.css");

/// A static asset, cacheable for a day.
fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}

/// This process's API, called by the pages with the signed-in person's token.
pub struct Backend {
    /// E.g. `http://127.0.0.1:8080`.
    base: String,
    /// One client for every call.
    client: reqwest::Client,
}

/// The API's refusal, as a page shows it.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Its message, for a person.
    pub message: String,
    /// The field it names, if one.
    pub field: Option<String>,
}

impl Backend {
    /// The API listening at `api`; an unspecified address (0.0.0.0) is reached on loopback.
    fn new(api: SocketAddr) -> Self {
        let host = if api.ip().is_unspecified() {
            match api {
                SocketAddr::V4(_) => "127.0.0.1".to_owned(),
                SocketAddr::V6(_) => "[::1]".to_owned(),
            }
        } else {
            match api {
                SocketAddr::V4(v4) => v4.ip().to_string(),
                SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
            }
        };
        Self {
            base: format!("http://{host}:{}", api.port()),
            client: reqwest::Client::new(),
        }
    }

    /// `GET path` as the holder of `token`.
    pub async fn get(&self, token: &str, path: &str) -> Result<Value, Refused> {
        let request = self.client.get(format!("{}{path}", self.base));
        answer(request.bearer_auth(token).send().await).await
    }

    /// `POST path` with `body` as the holder of `token`, under `idempotency_key`: the same
    /// form sent twice acts once.
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: &Value,
        idempotency_key: &str,
    ) -> Result<Value, Refused> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", idempotency_key)
            .json(body);
        answer(request.send().await).await
    }
}

/// The API's answer: its JSON, or its refusal.
async fn answer(sent: reqwest::Result<reqwest::Response>) -> Result<Value, Refused> {
    let response = sent.map_err(|error| Refused {
        message: format!("服务暂时不可用，请稍后再试 ({error})"),
        field: None,
    })?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(body);
    }
    Err(Refused {
        message: body["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned),
        field: body["field"].as_str().map(str::to_owned),
    })
}

/// The signed-in person: their token and who it names.
pub struct Session {
    /// The bearer token, as the API takes it.
    pub token: String,
    /// Who it names.
    pub principal: Principal,
}

/// The session of `req`, if its cookie holds a token the service takes.
pub async fn session(req: &HttpRequest) -> Option<Session> {
    let token = req.cookie(SESSION_COOKIE)?.value().to_owned();
    let authenticator = req.app_data::<web::Data<Authenticator>>()?.clone();
    let principal = authenticator.verify(&token).await.ok()?;
    Some(Session { token, principal })
}

/// The refusal of a form posted from another site, if `req` is one: a browser says where a
/// request comes from (`Sec-Fetch-Site`, else `Origin`), and a session's cookie is
/// SameSite=Strict besides.
pub fn cross_site(req: &HttpRequest) -> Option<HttpResponse> {
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross = match fetch_site {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => {
            let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            match (origin, host) {
                (Some(origin), Some(host)) => {
                    let origin = origin.split("://").nth(1).unwrap_or(origin);
                    origin != host
                }
                _ => false,
            }
        }
    };
    cross.then(|| {
        HttpResponse::build(StatusCode::FORBIDDEN)
            .content_type("text/plain; charset=utf-8")
            .body("来自其他网站的表单提交已被拒绝 (a form posted from another site is refused)")
    })
}

/// The session cookie holding `token`: HttpOnly, SameSite=Strict, `Secure` behind HTTPS
/// (`http.hsts`), for a working day.
pub fn session_cookie(settings: &crate::settings::Settings, token: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(settings.http.hsts)
        .max_age(actix_web::cookie::time::Duration::seconds(SESSION_SECS))
        .finish()
}

/// How long a session lasts: a working day.
pub const SESSION_SECS: i64 = 8 * 3600;

/// Where a person with `grant` starts: an officer at the workbench, a dispatcher or a
/// supervisor at the dashboard, anyone else at the matters.
pub fn home_of(grant: &Grant) -> &'static str {
    match grant {
        Grant::Officer(_) => "/workbench",
        Grant::Dispatcher(_) | Grant::Supervisor => "/operations",
        _ => "/",
    }
}

/// A redirect to `to` after a POST (303: the browser GETs it).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}
