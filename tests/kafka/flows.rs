//! The user-visible flows of `tests/api/flow.rs`, on Kafka: one service per bus kind runs every
//! case at once (service start-up, with its consumer groups, is the expensive part).

use crate::helpers::{json_body, reasons, settings, spawn_app, step_names, Broker, TestApp};
use serde_json::{json, Value};

#[actix_web::test]
async fn user_flows_complete_on_the_embedded_cluster() {
    // Arrange
    let app = spawn_app(settings(&Broker::Embedded)).await;

    // Act + Assert
    run_user_flows(&app).await;
    app.shutdown().await;
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a Kafka-protocol broker); .ci/run provides it"]
async fn user_flows_complete_on_a_real_broker() {
    // Arrange
    let app = spawn_app(settings(&Broker::real())).await;

    // Act + Assert
    run_user_flows(&app).await;
    app.shutdown().await;
}

/// Runs every flow concurrently; each submits its own case and asserts what the applicant sees.
async fn run_user_flows(app: &TestApp) {
    futures::join!(
        approval_without_collaboration(app),
        rejection_for_a_missing_material(app),
        street_level_collaboration(app),
        two_collaborators(app),
        manual_department_decision(app),
    );
}

/// The collaboration event of `department` in a case view.
fn event_of<'a>(case: &'a Value, department: &str) -> &'a Value {
    case["collaboration_events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["department"] == department))
        .unwrap_or_else(|| panic!("no collaboration event for {department}: {case}"))
}

async fn approval_without_collaboration(app: &TestApp) {
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    let case = app.wait_until_completed(&case_id).await;

    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "complete materials and no collaborators should be approved: {case}"
    );
    assert!(
        case["receipt"]["receipt_no"].is_string(),
        "no receipt: {case}"
    );
    let history = step_names(&case["history"]);
    let position = |step: &str| {
        history
            .iter()
            .position(|s| s == step)
            .unwrap_or_else(|| panic!("`{step}` missing from {history:?}"))
    };
    assert!(
        position("application.published") < position("application.accepted")
            && position("application.accepted") < position("approval.published")
            && position("approval.published") < position("approval.delivered"),
        "history out of order: {history:?}"
    );
}

async fn rejection_for_a_missing_material(app: &TestApp) {
    let mut body = app.application_body("food_business_licence");
    body["materials"] = json!(["business_licence", "premises_proof"]);
    let case_id = app.submit_ok(&body).await;

    let case = app.wait_until_completed(&case_id).await;

    assert_eq!(
        case["approval"]["outcome"]["decision"], "rejected",
        "{case}"
    );
    assert!(
        reasons(&case).contains("food_safety_plan"),
        "the reasons should name the missing material: {case}"
    );
    assert_eq!(
        case["collaboration_events"],
        json!([]),
        "an incomplete application needs no collaboration: {case}"
    );
}

async fn street_level_collaboration(app: &TestApp) {
    // 江北区 / 观音桥街道.
    let body = app.application_body_in("residence_permit", "500105", "500105001");
    let case_id = app.submit_ok(&body).await;

    let case = app.wait_until_completed(&case_id).await;

    let events = case["collaboration_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "one collaborator, one event: {case}");
    let event = event_of(&case, "street_office");
    assert_eq!(
        event["tier_path"],
        json!(["重庆市", "江北区", "观音桥街道"]),
        "{event}"
    );
    assert_eq!(event["tier"], "street", "{event}");
    assert_eq!(event["status"], "answered", "{event}");
    assert_eq!(event["result"]["outcome"], "agree", "{event}");
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
}

async fn two_collaborators(app: &TestApp) {
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;

    let case = app.wait_until_completed(&case_id).await;

    let events = case["collaboration_events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "two collaborators, two events: {case}");
    let fire = event_of(&case, "fire");
    assert_eq!(fire["tier_path"], json!(["重庆市", "渝中区"]), "{fire}");
    let street = event_of(&case, "street_office");
    assert_eq!(
        street["tier_path"],
        json!(["重庆市", "渝中区", "解放碑街道"]),
        "{street}"
    );
    for event in [fire, street] {
        assert_eq!(event["status"], "answered", "{event}");
    }
    let steps = step_names(&case["approval"]["steps"]);
    assert!(
        steps.contains(&"collaboration_requested".to_owned())
            && steps.contains(&"collaboration_completed".to_owned()),
        "the approval's process data should show the collaboration: {steps:?}"
    );
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
}

async fn manual_department_decision(app: &TestApp) {
    // urban_management decides by hand, after street_office's collaboration.
    let case_id = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    app.wait_for_inbox_case("urban_management", &case_id).await;
    let waiting = app.get_case(&case_id).await;
    assert_ne!(waiting["status"], "completed", "{waiting}");

    let response = app
        .post_json(
            &format!("/api/v1/departments/urban_management/cases/{case_id}/decision"),
            &json!({ "decision": "reject", "opinion": "选址不符合规划" }),
        )
        .await;

    let status = response.status();
    assert_eq!(status, 200, "{}", json_body(response).await);
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(
        case["approval"]["outcome"]["decision"], "rejected",
        "{case}"
    );
    assert!(
        reasons(&case).contains("选址不符合规划"),
        "the officer's opinion should be the reason: {case}"
    );
}
