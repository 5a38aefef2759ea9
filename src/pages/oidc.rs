//! Signing in at the city's identity provider: the OpenID Connect authorization code flow with
//! PKCE (RFC 7636, S256), for the screens (`[auth.oidc]`).
//!
//! `/signin/oidc` sends the browser to the provider with a fresh `state` and code challenge,
//! keeping `state` and the code verifier in a short-lived HttpOnly cookie of its own.
//! `/signin/callback` checks `state`, exchanges the code and the verifier for tokens at the
//! token endpoint, checks the access token as the API would, and keeps it as the session. The
//! provider sends the browser back from another site, so that cookie is SameSite=Lax; the
//! session cookie is Strict, and is first sent by the page the callback answers, which moves
//! on by itself.

use super::layout::page;
use super::{home_of, session_cookie};
use crate::auth::Authenticator;
use crate::settings::OidcSettings;
use crate::systems::Systems;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use maud::html;
use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The cookie that carries `state` and the code verifier from the start of a sign-in to its
/// callback.
const FLOW_COOKIE: &str = "govfusion_oidc";

/// How long a person has at the provider before the sign-in must start again.
const FLOW_TTL_SECS: i64 = 600;

/// Mounts `/signin/oidc` and `/signin/callback`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/signin/oidc", web::get().to(start))
        .route("/signin/callback", web::get().to(callback));
}

/// 32 random bytes, base64url: a `state`, or a code verifier (43 characters, as RFC 7636 asks).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of `verifier`.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A page saying the sign-in did not work, and why.
fn failed(why: &str) -> HttpResponse {
    let main = html! {
        p.problem role="alert" { "登录未完成：" (why) }
        p { a href="/signin" { "重新登录" } }
    };
    page("登录", None, main)
}

/// Sends the browser to the provider.
async fn start(systems: web::Data<Systems>) -> HttpResponse {
    let oidc = &systems.settings.auth.oidc;
    if !oidc.enabled() {
        return failed("本服务未配置统一身份认证 (auth.oidc)");
    }
    let (state, verifier) = (random_token(), random_token());
    let mut url = match reqwest::Url::parse(&oidc.authorization_url) {
        Ok(url) => url,
        Err(error) => return failed(&format!("auth.oidc.authorization_url: {error}")),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &oidc.redirect_url)
        .append_pair("scope", &oidc.scopes)
        .append_pair("state", &state)
        .append_pair("code_challenge", &code_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    let flow = Cookie::build(FLOW_COOKIE, format!("{state}.{verifier}"))
        .path("/signin")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(systems.settings.http.hsts)
        .max_age(actix_web::cookie::time::Duration::seconds(FLOW_TTL_SECS))
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_string()))
        .cookie(flow)
        .finish()
}

/// What the provider sends the browser back with.
#[derive(Deserialize)]
struct Returned {
    /// The authorization code.
    code: Option<String>,
    /// The `state` sent.
    state: Option<String>,
    /// The provider's refusal, e.g. `access_denied`.
    error: Option<String>,
}

/// What the token endpoint answers (the fields used).
#[derive(Deserialize)]
struct Tokens {
    /// The bearer token the API will check.
    access_token: String,
}

/// The provider sent the browser back: the code is exchanged and the session kept.
async fn callback(
    req: HttpRequest,
    systems: web::Data<Systems>,
    returned: web::Query<Returned>,
) -> HttpResponse {
    let oidc = &systems.settings.auth.oidc;
    if let Some(error) = &returned.error {
        return failed(&format!("身份认证服务拒绝了登录 ({error})"));
    }
    let Some(flow) = req.cookie(FLOW_COOKIE) else {
        return failed("登录已过期或不是从本站发起，请重新登录");
    };
    let Some((state, verifier)) = flow.value().split_once('.') else {
        return failed("登录信息无效，请重新登录");
    };
    if returned.state.as_deref() != Some(state) {
        return failed("登录信息不一致 (state)，请重新登录");
    }
    let Some(code) = &returned.code else {
        return failed("身份认证服务没有返回授权码");
    };
    let token = match exchange(oidc, code, verifier).await {
        Ok(token) => token,
        Err(why) => return failed(&why),
    };
    let Some(authenticator) = req.app_data::<web::Data<Authenticator>>() else {
        return failed("本服务未配置令牌校验");
    };
    let principal = match authenticator.verify(&token).await {
        Ok(principal) => principal,
        Err(error) => return failed(&format!("令牌未通过校验：{error}")),
    };
    let home = home_of(&principal.grant);
    let mut done = flow.clone();
    done.make_removal();
    // A page of this site that moves on: the Strict session cookie is sent from there.
    let markup = html! {
        (maud::DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={ "0;url=" (home) };
                title { "登录成功 · 一网通办" }
            }
            body { p { "登录成功。" a href=(home) { "继续" } } }
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie(&systems.settings, token))
        .cookie(done)
        .body(markup.into_string())
}

/// Exchanges `code` and `verifier` at the token endpoint; the access token, or why not.
async fn exchange(oidc: &OidcSettings, code: &str, verifier: &str) -> Result<String, String> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", oidc.redirect_url.clone()),
        ("client_id", oidc.client_id.clone()),
        ("code_verifier", verifier.to_owned()),
    ];
    if !oidc.client_secret_file.trim().is_empty() {
        let secret = std::fs::read_to_string(oidc.client_secret_file.trim())
            .map_err(|e| format!("auth.oidc.client_secret_file: {e}"))?;
        form.push(("client_secret", secret.trim().to_owned()));
    }
    let response = reqwest::Client::new()
        .post(&oidc.token_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("身份认证服务无法访问 ({e})"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("身份认证服务未能发放令牌 ({status}: {body})"));
    }
    let tokens: Tokens = response
        .json()
        .await
        .map_err(|e| format!("身份认证服务的答复无法读取 ({e})"))?;
    Ok(tokens.access_token)
}
