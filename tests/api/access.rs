//! Who may do what: no token gets 401, a token outside an endpoint's grant gets 403, each with
//! a JSON error; tokens that fail a check (signature, issuer, audience, time, algorithm, scope)
//! are refused; an applicant lists their own cases only; the identity provider's keys rotate
//! while the service runs.

use crate::common::callers::{self, Caller};
use crate::helpers::{assert_refused, json_body, make_manual, spawn_app_with, TestApp};
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine as _;
use govfusion::auth::development::DevelopmentKey;
use govfusion::auth::{RoleClaims, RoleName};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The manual department whose inbox the matrix uses.
const MANUAL: &str = "urban_management";

/// One endpoint of the matrix: method, path, body, and who it is granted to.
struct Endpoint {
    /// `GET` or `POST`.
    post: bool,
    /// The path, ids filled in.
    path: String,
    /// The body of a POST.
    body: Value,
    /// The callers it is granted to.
    granted: Vec<Caller>,
}

impl Endpoint {
    fn get(path: String, granted: Vec<Caller>) -> Self {
        Self {
            post: false,
            path,
            body: Value::Null,
            granted,
        }
    }

    fn post(path: String, body: Value, granted: Vec<Caller>) -> Self {
        Self {
            post: true,
            path,
            body,
            granted,
        }
    }

    async fn call(&self, app: &TestApp, caller: &Caller) -> reqwest::Response {
        if self.post {
            app.post_json_as(caller, &self.path, &self.body).await
        } else {
            app.get_as(caller, &self.path).await
        }
    }
}

/// A city with `urban_management` staffed by people, a construction permit whose
/// collaboration event waits there (handled by `housing`, in district 500103), and an outdoor
/// advertising case waiting there for a decision; both submitted by [`callers::APPLICANT`].
async fn city_with_work() -> (TestApp, String, String, String) {
    let app = spawn_app_with(|settings| make_manual(settings, MANUAL)).await;
    let (collaborating, event_id) = app.event_waiting_at(MANUAL, "construction_permit").await;
    let deciding = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    app.wait_for_inbox_case(MANUAL, &deciding).await;
    (app, collaborating, event_id, deciding)
}

#[actix_web::test]
async fn every_endpoint_refuses_no_token_with_401_and_a_caller_outside_its_grant_with_403() {
    // Arrange
    let (app, case, event, deciding) = city_with_work().await;
    let applicant = Caller::applicant();
    let other_applicant = Caller::Applicant("applicant-li".into());
    let terminal = Caller::Terminal("pc-web".into());
    let other_terminal = Caller::Terminal("kiosk-jfb-01".into());
    let manual = Caller::officer(MANUAL);
    let handling = Caller::officer("housing");
    let collaborating = Caller::officer("fire");
    let unrelated = Caller::officer("market");
    let city = Caller::Dispatcher("500000".into());
    let district = Caller::Dispatcher("500103".into());
    let other_district = Caller::Dispatcher("500105".into());
    let everyone = vec![
        applicant.clone(),
        other_applicant.clone(),
        terminal.clone(),
        other_terminal.clone(),
        manual.clone(),
        handling.clone(),
        collaborating.clone(),
        unrelated.clone(),
        city.clone(),
        district.clone(),
        other_district.clone(),
        Caller::Supervisor,
        Caller::Operator,
        Caller::Service,
    ];
    let application = app.application_body("individual_business_registration");
    let endpoints = vec![
        Endpoint::post(
            "/api/v1/terminals/pc-web/applications".into(),
            application,
            vec![applicant.clone(), other_applicant.clone(), terminal.clone()],
        ),
        Endpoint::get(
            format!("/api/v1/cases/{case}"),
            vec![
                applicant.clone(),
                manual.clone(),
                handling.clone(),
                collaborating.clone(),
                city.clone(),
                district.clone(),
                Caller::Supervisor,
                Caller::Operator,
            ],
        ),
        Endpoint::get(
            "/api/v1/cases".into(),
            vec![
                manual.clone(),
                handling.clone(),
                collaborating.clone(),
                unrelated.clone(),
                Caller::Supervisor,
                Caller::Operator,
            ],
        ),
        Endpoint::get(
            "/api/v1/applicants/me/cases".into(),
            vec![applicant.clone(), other_applicant.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/terminals/pc-web/cases/{case}/supplements"),
            json!({ "materials": ["site_plan"] }),
            vec![applicant.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/terminals/pc-web/cases/{case}/rating"),
            json!({ "score": 5 }),
            vec![applicant.clone()],
        ),
        Endpoint::get(
            "/api/v1/intake/feed?after=0&max=1".into(),
            vec![Caller::Service],
        ),
        Endpoint::get(
            format!("/api/v1/departments/{MANUAL}/inbox"),
            vec![manual.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/departments/{MANUAL}/cases/{deciding}/decision"),
            json!({ "decision": "approve" }),
            vec![manual.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/departments/{MANUAL}/cases/{deciding}/supplement-request"),
            json!({ "materials": ["site_plan"], "reason": "图纸不清" }),
            vec![manual.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/collaborations/{event}/sign"),
            json!({}),
            vec![manual.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/collaborations/{event}/result"),
            json!({ "outcome": "agree" }),
            vec![manual.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/collaborations/{event}/return"),
            json!({ "reason": "不属于本局" }),
            vec![manual.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/collaborations/{event}/extension"),
            json!({ "days": 2, "reason": "现场复核" }),
            vec![manual.clone()],
        ),
        Endpoint::get(
            "/api/v1/governance/centers/500103/returned".into(),
            vec![district.clone()],
        ),
        Endpoint::post(
            format!("/api/v1/governance/centers/500103/events/{event}/reassign"),
            json!({ "department": "fire" }),
            vec![district.clone()],
        ),
        Endpoint::get(
            "/api/v1/supervision/departments".into(),
            vec![Caller::Supervisor],
        ),
        Endpoint::get(
            "/api/v1/supervision/centers".into(),
            vec![
                Caller::Supervisor,
                city.clone(),
                district.clone(),
                other_district.clone(),
            ],
        ),
        Endpoint::get("/api/v1/operations/stalled".into(), vec![Caller::Operator]),
        Endpoint::post(
            format!("/api/v1/operations/cases/{case}/redrive"),
            json!({}),
            vec![Caller::Operator],
        ),
    ];

    for endpoint in &endpoints {
        // Act and Assert: no token.
        let anonymous = endpoint.call(&app, &Caller::Anonymous).await;
        let challenge = anonymous
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_refused(anonymous, 401, "unauthenticated").await;
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer"),
            "{}: a 401 names the scheme",
            endpoint.path
        );
        // Everyone outside the grant.
        for caller in everyone.iter().filter(|c| !endpoint.granted.contains(c)) {
            let response = endpoint.call(&app, caller).await;
            let status = response.status();
            let body = json_body(response).await;
            assert_eq!(
                (status.as_u16(), body["error"].as_str()),
                (403, Some("forbidden")),
                "{} {} as {caller:?}: {body}",
                if endpoint.post { "POST" } else { "GET" },
                endpoint.path
            );
        }
        // Those inside it are served (reads only: the acts are the other tests' business).
        if !endpoint.post {
            for caller in &endpoint.granted {
                let response = endpoint.call(&app, caller).await;
                let status = response.status();
                let body = json_body(response).await;
                assert_eq!(status, 200, "GET {} as {caller:?}: {body}", endpoint.path);
            }
        }
    }
    // Nothing outside a grant acted: the case waiting for a decision still waits.
    app.wait_for_inbox_case(MANUAL, &deciding).await;
}

#[actix_web::test]
async fn an_applicant_lists_and_reads_their_own_cases_and_a_terminal_those_it_submitted() {
    // Arrange: one case submitted by the applicant, one by a kiosk for someone at its window.
    let app = crate::helpers::spawn_app().await;
    let own = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    let kiosk = Caller::Terminal("kiosk-jfb-01".into());
    let at_window = app
        .post_json_as(
            &kiosk,
            "/api/v1/terminals/kiosk-jfb-01/applications",
            &app.application_body("individual_business_registration"),
        )
        .await;
    let at_window = json_body(at_window).await["case_id"]
        .as_str()
        .expect("a case id")
        .to_owned();

    // Act
    let mine = app
        .get_as(&Caller::applicant(), "/api/v1/applicants/me/cases")
        .await;
    let theirs = app
        .get_as(
            &Caller::Applicant("applicant-li".into()),
            "/api/v1/applicants/me/cases",
        )
        .await;

    // Assert
    let mine = json_body(mine).await;
    let listed: Vec<&str> = mine["cases"]
        .as_array()
        .expect("a list of cases")
        .iter()
        .filter_map(|c| c["case_id"].as_str())
        .collect();
    assert_eq!(listed, vec![own.as_str()], "{mine}");
    assert_eq!(json_body(theirs).await["cases"], json!([]));
    let read = app
        .get_as(&kiosk, &format!("/api/v1/cases/{at_window}"))
        .await;
    assert_eq!(read.status(), 200);
    let not_theirs = app
        .get_as(&Caller::applicant(), &format!("/api/v1/cases/{at_window}"))
        .await;
    assert_refused(not_theirs, 403, "forbidden").await;
    let other_kiosk = app
        .get_as(
            &Caller::Terminal("kiosk-gyq-01".into()),
            &format!("/api/v1/cases/{own}"),
        )
        .await;
    assert_refused(other_kiosk, 403, "forbidden").await;
}

/// Registered claims plus role claims, each settable, for tokens that fail one check.
fn claims(iss: &str, aud: &str, nbf: i64, exp: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": iss,
        "aud": aud,
        "nbf": now + nbf,
        "exp": now + exp,
        "sub": "supervisor-wang",
        "role": "supervisor",
    })
}

/// `GET /api/v1/supervision/departments` with `token`.
async fn with_bearer(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/v1/supervision/departments", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("Failed to execute request")
}

#[actix_web::test]
async fn tokens_failing_a_check_are_refused_with_401() {
    // Arrange
    let app = crate::helpers::spawn_app().await;
    let key = callers::key();
    let (iss, aud) = (callers::ISSUER, callers::AUDIENCE);
    let good = key.sign(&claims(iss, aud, -10, 600)).expect("a token");
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&claims(iss, aud, -10, 600))
    );
    // HS256 with the public key's id: a service that took the key for a secret would accept
    // whatever anyone signs with it.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid().to_owned());
    let symmetric = jsonwebtoken::encode(
        &header,
        &claims(iss, aud, -10, 600),
        &jsonwebtoken::EncodingKey::from_secret(b"a shared secret").expect("a secret"),
    )
    .expect("a token");
    let stranger = DevelopmentKey::generate()
        .expect("a key")
        .sign(&claims(iss, aud, -10, 600))
        .expect("a token");
    let no_scope = key
        .sign(&json!({
            "iss": iss, "aud": aud, "exp": chrono::Utc::now().timestamp() + 600,
            "sub": "officer-zhao", "role": "officer"
        }))
        .expect("a token");
    let refused = [
        ("expired", key.sign(&claims(iss, aud, -700, -600)).unwrap()),
        (
            "not yet valid",
            key.sign(&claims(iss, aud, 600, 1200)).unwrap(),
        ),
        (
            "another issuer",
            key.sign(&claims("https://evil", aud, -10, 600)).unwrap(),
        ),
        (
            "another audience",
            key.sign(&claims(iss, "other-app", -10, 600)).unwrap(),
        ),
        ("alg none", unsigned),
        ("HS256", symmetric),
        ("an unknown key", stranger),
        ("a role without its scope", no_scope),
        ("not a token", "not.a.token".to_owned()),
    ];

    // Act and Assert
    assert_eq!(with_bearer(&app, &good).await.status(), 200);
    for (what, token) in refused {
        let response = with_bearer(&app, &token).await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (401, Some("invalid_token")),
            "{what}: {body}"
        );
    }
}

/// An identity provider's JWKS endpoint on a free port, serving whatever `keys` holds.
async fn identity_provider(keys: Arc<Mutex<JwkSet>>) -> String {
    let served = web::Data::from(keys);
    let server = HttpServer::new(move || {
        App::new().app_data(served.clone()).route(
            "/certs",
            web::get().to(|keys: web::Data<Mutex<JwkSet>>| async move {
                let set = keys.lock().expect("the key set lock").clone();
                HttpResponse::Ok().json(set)
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("Failed to bind the identity provider");
    let address = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{address}/certs")
}

/// A supervisor's token signed with `key` by the provider `issuer`.
fn supervisor_token(key: &DevelopmentKey, issuer: &str) -> String {
    let claims = RoleClaims {
        sub: "supervisor-wang".into(),
        name: Some("王督查".into()),
        role: RoleName::Supervisor,
        terminal: None,
        department: None,
        centre: None,
    };
    key.mint(issuer, "govfusion", claims, Duration::from_secs(600))
        .expect("a token")
}

#[actix_web::test]
async fn keys_fetched_from_the_identity_provider_rotate_while_the_service_runs() {
    // Arrange: the provider publishes key A; the service fetches its keys from it.
    const ISSUER: &str = "https://idp.city.test/realms/city";
    let (old, new) = (
        DevelopmentKey::generate().expect("a key"),
        DevelopmentKey::generate().expect("a key"),
    );
    let keys = Arc::new(Mutex::new(JwkSet {
        keys: vec![old.public_jwk().expect("a public key")],
    }));
    let url = identity_provider(keys.clone()).await;
    let app = spawn_app_with(|settings| {
        settings.auth.development_keys = false;
        settings.auth.jwks_url = url;
        settings.auth.issuer = ISSUER.into();
        settings.auth.jwks_refetch_min_secs = 0;
    })
    .await;
    assert_eq!(
        with_bearer(&app, &supervisor_token(&old, ISSUER))
            .await
            .status(),
        200
    );

    // Act: the provider rotates to key B and withdraws A.
    *keys.lock().expect("the key set lock") = JwkSet {
        keys: vec![new.public_jwk().expect("a public key")],
    };

    // Assert: a token of B is taken (its unknown key id made the service fetch the set
    // again); one of A no longer is.
    assert_eq!(
        with_bearer(&app, &supervisor_token(&new, ISSUER))
            .await
            .status(),
        200
    );
    let withdrawn = with_bearer(&app, &supervisor_token(&old, ISSUER)).await;
    assert_refused(withdrawn, 401, "invalid_token").await;
    // A development token is refused: this service trusts its provider only.
    let development = Caller::Supervisor.token().expect("a token");
    assert_refused(with_bearer(&app, &development).await, 401, "invalid_token").await;
}

#[actix_web::test]
async fn tokens_are_answered_503_while_the_identity_provider_cannot_be_reached() {
    // Arrange: the provider's JWKS URL answers nothing (no one listens on the port), for good.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}/certs", closed.local_addr().expect("an address"));
    drop(closed);
    const ISSUER: &str = "https://idp.city.test/realms/city";
    let app = spawn_app_with(|settings| {
        settings.auth.development_keys = false;
        settings.auth.jwks_url = url;
        settings.auth.issuer = ISSUER.into();
    })
    .await;
    let key = DevelopmentKey::generate().expect("a key");

    // Act: twice, the second within the refetch interval.
    let first = with_bearer(&app, &supervisor_token(&key, ISSUER)).await;
    let second = with_bearer(&app, &supervisor_token(&key, ISSUER)).await;

    // Assert: the service cannot tell the token is bad; it says the provider is away.
    assert_refused(first, 503, "unavailable").await;
    assert_refused(second, 503, "unavailable").await;
}
