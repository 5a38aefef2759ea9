//! What comes in is checked before anything is done with it: an applicant's identity number by
//! its check character, the phone by its format, every field within the `[input]` limits. Each
//! refusal is 422 `invalid_field` naming the field, and a body that is not labelled JSON is
//! refused with 415 on every endpoint staff and applicants post to.

use crate::common::callers::with_token;
use crate::helpers::{assert_refused, spawn_app, TestApp, TERMINAL};
use serde_json::{json, Value};

/// An application at [`TERMINAL`] with the field at `pointer` (a JSON pointer) set to `value`.
fn with(app: &TestApp, pointer: &str, value: Value) -> Value {
    let mut body = app.application_body("individual_business_registration");
    *body
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("test fixture: no {pointer} in the application")) = value;
    body
}

/// Asserts a 422 `invalid_field` naming `field`; returns the refusal.
async fn assert_invalid_field(response: reqwest::Response, field: &str) -> Value {
    let refusal = assert_refused(response, 422, "invalid_field").await;
    assert_eq!(refusal["field"], field, "{refusal}");
    refusal
}

#[actix_web::test]
async fn an_id_number_with_a_wrong_check_digit_is_422_naming_it_without_repeating_it() {
    // Arrange: the README's old sample, whose check digit should be 2.
    let app = spawn_app().await;
    let body = with(&app, "/applicant/id_number", json!("500103199001011234"));

    // Act
    let response = app.submit(TERMINAL, &body).await;

    // Assert
    let refusal = assert_invalid_field(response, "applicant.id_number").await;
    let message = refusal["message"].as_str().unwrap_or_default();
    assert!(message.contains("check character"), "{refusal}");
    assert!(!message.contains("500103199001011234"), "{refusal}");
}

#[actix_web::test]
async fn a_company_is_taken_with_a_valid_credit_code_and_refused_with_a_mistyped_one() {
    // Arrange
    let app = spawn_app().await;
    let valid = with(&app, "/applicant/id_number", json!("91500103MA60C8K21M"));
    let mistyped = with(&app, "/applicant/id_number", json!("91500103MA60C8K21N"));

    // Act
    let case_id = app.submit_ok(&valid).await;
    let refused = app.submit(TERMINAL, &mistyped).await;

    // Assert
    app.wait_until_decided(&case_id, "approved").await;
    assert_invalid_field(refused, "applicant.id_number").await;
}

#[actix_web::test]
async fn a_birth_date_in_the_future_and_a_phone_that_is_no_number_are_422_naming_them() {
    // Arrange: born 2099-01-01, with the right check digit.
    let app = spawn_app().await;
    let unborn = with(&app, "/applicant/id_number", json!("500103209901011238"));
    let phone = with(&app, "/applicant/phone", json!("12345"));

    // Act
    let unborn = app.submit(TERMINAL, &unborn).await;
    let phone = app.submit(TERMINAL, &phone).await;

    // Assert
    let refusal = assert_invalid_field(unborn, "applicant.id_number").await;
    assert!(refusal["message"]
        .as_str()
        .unwrap_or_default()
        .contains("birth date"));
    assert_invalid_field(phone, "applicant.phone").await;
}

#[actix_web::test]
async fn a_fixed_line_phone_with_its_area_code_is_taken() {
    let app = spawn_app().await;

    let case_id = app
        .submit_ok(&with(&app, "/applicant/phone", json!("023-63851234")))
        .await;

    app.wait_until_decided(&case_id, "approved").await;
}

#[actix_web::test]
async fn a_900_kb_name_is_422_naming_it_not_413_since_the_body_is_within_its_limit() {
    // Arrange: 900 KB of name, under the 960 KiB body limit.
    let app = spawn_app().await;
    let body = with(&app, "/applicant/name", json!("x".repeat(900 * 1024)));
    assert!(body.to_string().len() < app.systems.settings.http.max_body_bytes);

    // Act
    let response = app.submit(TERMINAL, &body).await;

    // Assert
    assert_invalid_field(response, "applicant.name").await;
}

#[actix_web::test]
async fn a_hundred_thousand_materials_are_422_naming_materials() {
    let app = spawn_app().await;
    let body = with(&app, "/materials", json!(vec!["a"; 100_000]));

    let response = app.submit(TERMINAL, &body).await;

    let refusal = assert_invalid_field(response, "materials").await;
    assert!(
        refusal["message"]
            .as_str()
            .unwrap_or_default()
            .contains("100000"),
        "{refusal}"
    );
}

#[actix_web::test]
async fn a_form_nested_too_deep_or_too_large_is_422_naming_form() {
    // Arrange: nine levels (the limit is eight), and 100 KB of short strings (the limit is
    // 64 KiB, each string within its own limit).
    let app = spawn_app().await;
    let deep = with(&app, "/form", json!({ "a": [[[[[[[["deep"]]]]]]]] }));
    let large = with(
        &app,
        "/form",
        json!({ "rows": vec!["x".repeat(1000); 100] }),
    );
    let long = with(&app, "/form", json!({ "remark": "x".repeat(4001) }));

    // Act
    let deep = app.submit(TERMINAL, &deep).await;
    let large = app.submit(TERMINAL, &large).await;
    let long = app.submit(TERMINAL, &long).await;

    // Assert
    assert_invalid_field(deep, "form").await;
    assert_invalid_field(large, "form").await;
    assert_invalid_field(long, "form.remark").await;
}

#[actix_web::test]
async fn long_texts_and_too_many_materials_are_422_naming_the_field_on_every_staff_and_applicant_post(
) {
    // Arrange: bodies checked before the case, event or centre is looked up.
    let app = spawn_app().await;
    let long = "长".repeat(2001);
    let many = vec!["id_card"; 101];
    let posts = [
        (
            "/api/v1/departments/urban_management/cases/c/decision",
            json!({ "decision": "approve", "opinion": long }),
            "opinion",
        ),
        (
            "/api/v1/departments/urban_management/cases/c/supplement-request",
            json!({ "materials": many, "reason": "缺少材料" }),
            "materials",
        ),
        (
            "/api/v1/departments/urban_management/cases/c/supplement-request",
            json!({ "materials": ["site_consent"], "reason": long }),
            "reason",
        ),
        (
            "/api/v1/collaborations/e/result",
            json!({ "outcome": "agree", "opinion": long }),
            "opinion",
        ),
        (
            "/api/v1/collaborations/e/return",
            json!({ "reason": long }),
            "reason",
        ),
        (
            "/api/v1/collaborations/e/extension",
            json!({ "days": 2, "reason": long }),
            "reason",
        ),
        (
            "/api/v1/governance/centers/500103/events/e/reassign",
            json!({ "department": "d".repeat(65) }),
            "department",
        ),
        (
            "/api/v1/terminals/pc-web/cases/c/supplements",
            json!({ "materials": many }),
            "materials",
        ),
        (
            "/api/v1/terminals/pc-web/cases/c/rating",
            json!({ "score": 5, "comment": long }),
            "comment",
        ),
    ];

    for (path, body, field) in posts {
        // Act
        let response = app.post_json(path, &body).await;

        // Assert
        let refusal = assert_refused(response, 422, "invalid_field").await;
        assert_eq!(refusal["field"], field, "POST {path}: {refusal}");
    }
}

#[actix_web::test]
async fn a_body_not_labelled_json_is_415_on_every_staff_and_applicant_post() {
    // Arrange
    let app = spawn_app().await;
    let paths = [
        "/api/v1/terminals/pc-web/applications",
        "/api/v1/terminals/pc-web/cases/c/supplements",
        "/api/v1/terminals/pc-web/cases/c/rating",
        "/api/v1/departments/urban_management/cases/c/decision",
        "/api/v1/departments/urban_management/cases/c/supplement-request",
        "/api/v1/collaborations/e/result",
        "/api/v1/collaborations/e/sign",
        "/api/v1/collaborations/e/return",
        "/api/v1/collaborations/e/extension",
        "/api/v1/governance/centers/500103/events/e/reassign",
    ];

    for path in paths {
        // Act: JSON text labelled as plain text, then the same text with no label.
        let url = format!("{}{path}", app.address);
        let caller = app.caller_for(path);
        let body = r#"{"officer":"王五"}"#;
        let plain = with_token(app.client.post(&url), &caller)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .expect("Failed to execute request");
        let unlabelled = with_token(app.client.post(&url), &caller)
            .body(body)
            .send()
            .await
            .expect("Failed to execute request");

        // Assert
        for response in [plain, unlabelled] {
            let refusal = assert_refused(response, 415, "unsupported_media_type").await;
            assert!(
                refusal["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("application/json"),
                "POST {path}: {refusal}"
            );
        }
    }
}

#[actix_web::test]
async fn an_event_is_still_signed_with_no_body_at_all() {
    // Arrange
    let app = crate::helpers::spawn_app_with(|settings| {
        crate::helpers::make_manual(settings, "urban_management");
    })
    .await;
    let (_, event_id) = app
        .event_waiting_at("urban_management", "construction_permit")
        .await;

    // Act
    let path = format!("/api/v1/collaborations/{event_id}/sign");
    let caller = app.caller_for(&path);
    let response = with_token(app.client.post(format!("{}{path}", app.address)), &caller)
        .send()
        .await
        .expect("Failed to execute request");

    // Assert
    crate::helpers::assert_status(response, 200).await;
}
