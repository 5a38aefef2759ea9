//! Bad requests: each gets the right status and a JSON `{ "error", "message" }` that says what
//! was wrong, and none of them hurts the service.

use crate::helpers::{assert_refused, json_body, spawn_app, spawn_app_with, TestApp, TERMINAL};
use serde_json::{json, Value};

const SUBMIT: &str = "/api/v1/terminals/pc-web/applications";

/// An application whose region is replaced by `district` / `street`.
fn in_region(app: &TestApp, district: &str, street: &str) -> Value {
    app.application_body_in("individual_business_registration", district, street)
}

#[actix_web::test]
async fn malformed_json_is_400_malformed_json() {
    let app = spawn_app().await;

    let response = app.post_raw(SUBMIT, r#"{"matter_code": "#).await;

    assert_refused(response, 400, "malformed_json").await;
}

#[actix_web::test]
async fn json_missing_a_field_is_400() {
    let app = spawn_app().await;
    let mut body = app.application_body("individual_business_registration");
    body.as_object_mut().unwrap().remove("applicant");

    let response = app.submit(TERMINAL, &body).await;

    let body = assert_refused(response, 400, "invalid_body").await;
    assert!(
        body["message"].as_str().unwrap().contains("applicant"),
        "the message should name the missing field: {body}"
    );
}

#[actix_web::test]
async fn an_unknown_matter_is_422_naming_the_code() {
    let app = spawn_app().await;
    let mut body = app.application_body("individual_business_registration");
    body["matter_code"] = json!("dragon_taming_licence");

    let response = app.submit(TERMINAL, &body).await;

    let body = assert_refused(response, 422, "unknown_matter").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("dragon_taming_licence"),
        "{body}"
    );
}

#[actix_web::test]
async fn an_unknown_district_is_422_unknown_region() {
    let app = spawn_app().await;

    let response = app
        .submit(TERMINAL, &in_region(&app, "599999", "599999001"))
        .await;

    let body = assert_refused(response, 422, "unknown_region").await;
    assert!(
        body["message"].as_str().unwrap().contains("599999"),
        "{body}"
    );
}

#[actix_web::test]
async fn a_street_outside_its_district_is_422_unknown_region() {
    // 观音桥街道 is in 江北区, not in 渝中区.
    let app = spawn_app().await;

    let response = app
        .submit(TERMINAL, &in_region(&app, "500103", "500105001"))
        .await;

    let body = assert_refused(response, 422, "unknown_region").await;
    assert!(
        body["message"].as_str().unwrap().contains("500105001"),
        "{body}"
    );
}

#[actix_web::test]
async fn an_unknown_terminal_is_404() {
    let app = spawn_app().await;
    let body = app.application_body("individual_business_registration");

    let response = app.submit("kiosk-on-the-moon", &body).await;

    let body = assert_refused(response, 404, "unknown_terminal").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("kiosk-on-the-moon"),
        "{body}"
    );
}

#[actix_web::test]
async fn an_unknown_case_is_404() {
    let app = spawn_app().await;

    let response = app.get("/api/v1/cases/no-such-case").await;

    assert_refused(response, 404, "unknown_case").await;
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 1024).await;
    let mut body = app.application_body("individual_business_registration");
    body["form"] = json!({ "padding": "x".repeat(4096) });

    let response = app.submit(TERMINAL, &body).await;

    assert_refused(response, 413, "payload_too_large").await;
}

#[actix_web::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    let response = app.get("/api/v2/everything").await;

    assert_refused(response, 404, "not_found").await;
}

#[actix_web::test]
async fn the_service_keeps_working_after_every_kind_of_bad_input() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 1024).await;
    let valid = app.application_body("individual_business_registration");
    let mut unknown_matter = valid.clone();
    unknown_matter["matter_code"] = json!("dragon_taming_licence");
    let mut oversized = valid.clone();
    oversized["form"] = json!({ "padding": "x".repeat(4096) });

    // Act
    let refusals = [
        app.post_raw(SUBMIT, "{not json").await,
        app.post_raw(SUBMIT, "{}").await,
        app.submit(TERMINAL, &unknown_matter).await,
        app.submit(TERMINAL, &in_region(&app, "599999", "599999001"))
            .await,
        app.submit(TERMINAL, &in_region(&app, "500103", "500105001"))
            .await,
        app.submit("kiosk-on-the-moon", &valid).await,
        app.get("/api/v1/cases/no-such-case").await,
        app.submit(TERMINAL, &oversized).await,
        app.get("/api/v2/everything").await,
    ];

    // Assert
    for response in refusals {
        assert!(
            response.status().is_client_error(),
            "expected a refusal, got {}",
            response.status()
        );
    }
    let health = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok", "{health}");
    let case_id = app.submit_ok(&valid).await;
    app.wait_until_decided(&case_id, "approved").await;
}

#[actix_web::test]
async fn a_process_refuses_requests_for_systems_its_roles_do_not_run() {
    // Arrange: a process that runs only the market department.
    let app = spawn_app_with(|settings| {
        settings.service.roles = vec!["department:market".parse().unwrap()];
    })
    .await;

    // Act
    let asked = [
        "/api/v1/cases/c1",
        "/api/v1/supervision/departments",
        "/api/v1/governance/centers/500000/returned",
        "/api/v1/operations/stalled",
    ];
    let mut answers = Vec::new();
    for path in asked {
        answers.push((path, app.get(path).await));
    }

    // Assert: each refusal names the process's roles; the department it runs still answers.
    for (path, response) in answers {
        assert_eq!(response.status(), 404, "{path}");
        let body = json_body(response).await;
        assert_eq!(body["error"], "not_served_here", "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("department:market"),
            "{path}: {body}"
        );
    }
    let inbox = app.get("/api/v1/departments/market/inbox").await;
    assert_eq!(inbox.status(), 200);
}
