//! Abuse controls as a client meets them: a client past its budget gets 429 with `Retry-After`
//! while another is served; every response carries the security headers, and only what may
//! carry personal data is marked `no-store`; browsers from an allowed origin get CORS headers,
//! from any other none.

use crate::helpers::{assert_refused, assert_status, spawn_app_with, Caller, TestApp};
use reqwest::header::HeaderMap;
use reqwest::Method;

/// A path of a case no one has: a cheap request that needs a token (404 once authenticated).
const UNKNOWN_CASE: &str = "/api/v1/cases/00000000-0000-0000-0000-000000000000";

/// An origin the tests allow.
const PORTAL: &str = "https://zwfw.example.gov.cn";

/// A service whose clients may each make 3 requests, then one every 100 s: a budget that does
/// not refill while a test runs.
async fn spawn_tightly_limited_app() -> TestApp {
    spawn_app_with(|settings| {
        settings.http.rate_limit.per_second = 0.01;
        settings.http.rate_limit.burst = 3;
    })
    .await
}

/// The value of header `name`, if present and text.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[actix_web::test]
async fn a_caller_past_its_budget_gets_429_with_retry_after_while_another_caller_is_served() {
    // Arrange
    let app = spawn_tightly_limited_app().await;
    let first = Caller::Applicant("applicant-one".into());
    let second = Caller::Applicant("applicant-two".into());
    for _ in 0..3 {
        assert_status(app.get_as(&first, UNKNOWN_CASE).await, 404).await;
    }

    // Act
    let over = app.get_as(&first, UNKNOWN_CASE).await;
    let other = app.get_as(&second, UNKNOWN_CASE).await;

    // Assert
    let retry_after = header(over.headers(), "retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a numeric Retry-After");
    assert!(
        (1..=100).contains(&retry_after),
        "one request every 100 s: {retry_after}"
    );
    assert_eq!(
        header(over.headers(), "x-content-type-options"),
        Some("nosniff")
    );
    let body = assert_refused(over, 429, "rate_limited").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Try again in")),
        "{body}"
    );
    assert_status(other, 404).await;
}

#[actix_web::test]
async fn requests_without_a_valid_token_share_their_address_budget_and_garbage_tokens_get_no_fresh_one(
) {
    // Arrange: two requests with made-up tokens and one without any, from one address.
    let app = spawn_tightly_limited_app().await;
    for garbage in ["not-a-token", "still.not.one"] {
        let response = app
            .client
            .get(format!("{}{UNKNOWN_CASE}", app.address))
            .bearer_auth(garbage)
            .send()
            .await
            .expect("Failed to execute request");
        assert_refused(response, 401, "invalid_token").await;
    }
    assert_status(app.get_as(&Caller::Anonymous, "/api/v1/matters").await, 200).await;

    // Act
    let over = app.get_as(&Caller::Anonymous, "/api/v1/matters").await;
    let with_a_token = app.get_as(&Caller::applicant(), UNKNOWN_CASE).await;
    let probe = app.get_as(&Caller::Anonymous, "/healthz").await;

    // Assert: the address is spent; a valid token has its own budget; probes are not limited.
    assert!(over.headers().contains_key("retry-after"));
    assert_refused(over, 429, "rate_limited").await;
    assert_status(with_a_token, 404).await;
    assert_status(probe, 200).await;
}

#[actix_web::test]
async fn every_response_carries_the_security_headers_and_only_the_catalogue_may_be_cached() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;

    // Act
    let catalogue = app.get_as(&Caller::Anonymous, "/api/v1/matters").await;
    let case = app.get_as(&Caller::applicant(), UNKNOWN_CASE).await;
    let unauthenticated = app.get_as(&Caller::Anonymous, UNKNOWN_CASE).await;
    let health = app.get_as(&Caller::Anonymous, "/healthz").await;

    // Assert
    for response in [&catalogue, &case, &unauthenticated, &health] {
        let headers = response.headers();
        let url = response.url().path();
        assert_eq!(
            header(headers, "x-content-type-options"),
            Some("nosniff"),
            "{url}"
        );
        assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{url}");
        assert_eq!(
            header(headers, "referrer-policy"),
            Some("no-referrer"),
            "{url}"
        );
        assert!(
            !headers.contains_key("strict-transport-security"),
            "HSTS is off by default: {url}"
        );
    }
    assert_eq!(header(case.headers(), "cache-control"), Some("no-store"));
    assert_eq!(
        header(unauthenticated.headers(), "cache-control"),
        Some("no-store")
    );
    assert_ne!(
        header(catalogue.headers(), "cache-control"),
        Some("no-store")
    );
    assert_status(catalogue, 200).await;
    assert_status(case, 404).await;
}

#[actix_web::test]
async fn hsts_is_sent_when_configured() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.hsts = true).await;

    // Act
    let response = app.get_as(&Caller::Anonymous, "/api/v1/matters").await;

    // Assert
    let hsts = header(response.headers(), "strict-transport-security").expect("HSTS on");
    assert!(hsts.starts_with("max-age="), "{hsts}");
}

/// A preflight for submitting an application from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            Method::OPTIONS,
            format!("{}/api/v1/terminals/pc-web/applications", app.address),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("Failed to execute request")
}

/// `GET /api/v1/matters` as a browser page at `origin` makes it.
async fn catalogue_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/v1/matters", app.address))
        .header("origin", origin)
        .send()
        .await
        .expect("Failed to execute request")
}

#[actix_web::test]
async fn an_allowed_origin_gets_cors_headers_and_another_origin_none() {
    // Arrange
    let app = spawn_app_with(|settings| {
        settings.http.cors_allowed_origins = vec![PORTAL.to_owned()];
    })
    .await;

    // Act
    let allowed_preflight = preflight(&app, PORTAL).await;
    let allowed_request = catalogue_from(&app, PORTAL).await;
    let other_preflight = preflight(&app, "https://evil.example.com").await;
    let other_request = catalogue_from(&app, "https://evil.example.com").await;

    // Assert
    assert!(allowed_preflight.status().is_success());
    let headers = allowed_preflight.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some(PORTAL));
    let methods = header(headers, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = header(headers, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert_eq!(
        header(allowed_request.headers(), "access-control-allow-origin"),
        Some(PORTAL)
    );
    // `Access-Control-Expose-Headers` alone grants nothing: without an allowed origin the
    // browser keeps the whole answer from the page.
    for response in [&other_preflight, &other_request] {
        assert!(
            !response
                .headers()
                .keys()
                .any(|name| name.as_str().starts_with("access-control-allow-")),
            "{:?}",
            response.headers()
        );
    }
    assert!(!other_preflight.status().is_success());
    assert_status(other_request, 200).await;
}

#[actix_web::test]
async fn with_no_origins_configured_no_origin_gets_cors_headers() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;

    // Act
    let response = catalogue_from(&app, PORTAL).await;
    let preflight = preflight(&app, PORTAL).await;

    // Assert
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    assert!(!preflight
        .headers()
        .contains_key("access-control-allow-origin"));
    assert!(!preflight.status().is_success());
}
