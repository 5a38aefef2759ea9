//! Cases through the whole fusion, with the matters of `config/default.toml`.

use crate::helpers::{assert_refused, inbox_lists_case, json_body, reasons, spawn_app, step_names};
use serde_json::{json, Value};

/// The collaboration event of `department` in a case view.
fn event_of<'a>(case: &'a Value, department: &str) -> &'a Value {
    case["collaboration_events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["department"] == department))
        .unwrap_or_else(|| panic!("no collaboration event for {department}: {case}"))
}

/// An RFC 3339 timestamp of a response.
fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

/// Where `step` first appears in a list of step names.
fn position(steps: &[String], step: &str) -> usize {
    steps
        .iter()
        .position(|s| s == step)
        .unwrap_or_else(|| panic!("`{step}` missing from {steps:?}"))
}

#[actix_web::test]
async fn a_matter_without_collaboration_is_approved_with_a_receipt_and_full_history() {
    // Arrange
    let app = spawn_app().await;
    let body = app.application_body("individual_business_registration");

    // Act
    let case_id = app.submit_ok(&body).await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert
    assert_eq!(case["status"], "completed", "{case}");
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "complete materials and no collaborators should be approved: {case}"
    );
    let receipt = &case["receipt"];
    assert!(
        receipt["receipt_no"].is_string(),
        "no receipt number: {case}"
    );
    let catalog = &app.systems.catalog;
    let promised_days = catalog
        .matter(&"individual_business_registration".into())
        .unwrap()
        .promised_days;
    assert_eq!(
        timestamp(&receipt["due_by"]),
        catalog
            .calendar
            .due_by(timestamp(&receipt["accepted_at"]), promised_days),
        "the deadline should be the matter's promised working days after acceptance: {receipt}"
    );
    assert_eq!(case["on_time"], true, "{case}");
    let history = step_names(&case["history"]);
    let published = position(&history, "application.published");
    let accepted = position(&history, "application.accepted");
    let decided = position(&history, "approval.published");
    let delivered = position(&history, "approval.delivered");
    assert!(
        published < accepted && accepted < decided && decided < delivered,
        "history out of order: {history:?}"
    );
}

#[actix_web::test]
async fn a_missing_material_is_rejected_by_name_without_asking_collaborators() {
    // Arrange: a matter that would need fire's collaboration, lacking one material.
    let app = spawn_app().await;
    let mut body = app.application_body("food_business_licence");
    body["materials"] = json!(["business_licence", "premises_proof"]);

    // Act
    let case_id = app.submit_ok(&body).await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert
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

#[actix_web::test]
async fn a_street_level_collaboration_is_routed_through_three_tiers_and_approved() {
    // Arrange: 江北区 / 观音桥街道.
    let app = spawn_app().await;
    let body = app.application_body_in("residence_permit", "500105", "500105001");

    // Act
    let case_id = app.submit_ok(&body).await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert
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

#[actix_web::test]
async fn two_collaborators_are_each_routed_to_their_own_tier() {
    // Arrange
    let app = spawn_app().await;
    let body = app.application_body("restaurant_opening");

    // Act
    let case_id = app.submit_ok(&body).await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert
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

#[actix_web::test]
async fn staff_of_a_manual_department_decide_a_case_from_their_inbox() {
    // Arrange: urban_management decides by hand, after street_office's collaboration.
    let app = spawn_app().await;
    let case_id = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    app.wait_for_inbox_case("urban_management", &case_id).await;
    let waiting = app.wait_for_status(&case_id, "accepted").await;
    assert!(waiting["receipt"]["receipt_no"].is_string(), "{waiting}");
    assert_ne!(waiting["status"], "completed", "{waiting}");

    // Act
    let response = app
        .post_json(
            &format!("/api/v1/departments/urban_management/cases/{case_id}/decision"),
            &json!({ "decision": "reject", "opinion": "选址不符合规划" }),
        )
        .await;

    // Assert
    let status = response.status();
    assert_eq!(status, 200, "{}", json_body(response).await);
    let case = app.wait_until_decided(&case_id, "rejected").await;
    assert!(
        reasons(&case).contains("选址不符合规划"),
        "the officer's opinion should be the reason: {case}"
    );
}

#[actix_web::test]
async fn a_decided_case_leaves_the_inbox_and_cannot_be_decided_again() {
    // Arrange
    let app = spawn_app().await;
    let (case_id, path) = app.case_to_decide().await;
    let first = app
        .post_json(&path, &json!({ "decision": "approve" }))
        .await;
    assert_eq!(first.status(), 200, "{}", json_body(first).await);

    // Act
    let again = app.post_json(&path, &json!({ "decision": "reject" })).await;

    // Assert
    let status = again.status();
    let body = json_body(again).await;
    assert_eq!(status, 409, "a second decision must be refused: {body}");
    assert_eq!(body["error"], "invalid_transition", "{body}");
    let inbox = app
        .get_json("/api/v1/departments/urban_management/inbox")
        .await;
    assert!(
        !inbox_lists_case(&inbox, &case_id),
        "a decided case should leave the inbox: {inbox}"
    );
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "the first decision stands: {case}"
    );
}

#[actix_web::test]
async fn a_manual_collaborator_disagreeing_makes_the_case_rejected() {
    // Arrange: housing (auto) needs fire (auto) and urban_management (manual).
    let app = spawn_app().await;
    let (case_id, event_id) = app
        .event_waiting_at("urban_management", "construction_permit")
        .await;
    let event_id = event_id.as_str();

    // Act
    let response = app
        .post_json(
            &format!("/api/v1/collaborations/{event_id}/result"),
            &json!({ "outcome": "disagree", "opinion": "占用城市道路，不同意" }),
        )
        .await;

    // Assert
    let status = response.status();
    assert_eq!(status, 200, "{}", json_body(response).await);
    let case = app.wait_until_decided(&case_id, "rejected").await;
    let reasons = reasons(&case);
    assert!(
        reasons.contains("disagree") && reasons.contains("占用城市道路，不同意"),
        "the reasons should carry the collaborator's disagreement: {reasons}"
    );
}

#[actix_web::test]
async fn an_answered_collaboration_event_cannot_be_answered_again() {
    // Arrange
    let app = spawn_app().await;
    let case_id = app
        .submit_ok(&app.application_body("construction_permit"))
        .await;
    let event = app
        .wait_for_collaboration("urban_management", &case_id)
        .await;
    let path = format!(
        "/api/v1/collaborations/{}/result",
        event["event_id"].as_str().unwrap()
    );
    let first = app.post_json(&path, &json!({ "outcome": "agree" })).await;
    assert_eq!(first.status(), 200, "{}", json_body(first).await);

    // Act
    let again = app
        .post_json(&path, &json!({ "outcome": "disagree" }))
        .await;

    // Assert
    let status = again.status();
    let body = json_body(again).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "invalid_transition", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already answered"),
        "{body}"
    );
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "the first answer stands: {case}"
    );
}

#[actix_web::test]
async fn answering_an_unknown_collaboration_event_is_404() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .post_json(
            "/api/v1/collaborations/no-such-event/result",
            &json!({ "outcome": "agree" }),
        )
        .await;

    // Assert
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "unknown_event", "{body}");
}

#[actix_web::test]
async fn matters_are_listed_with_their_rules() {
    let app = spawn_app().await;

    let matters = app.get_json("/api/v1/matters").await;

    let matters = matters.as_array().expect("a list of matters");
    assert!(matters.len() >= 8, "{matters:?}");
    for matter in matters {
        for field in [
            "code",
            "name",
            "department",
            "required_materials",
            "collaborators",
            "promised_days",
        ] {
            assert!(
                !matter[field].is_null(),
                "matter without `{field}`: {matter}"
            );
        }
    }
}

#[actix_web::test]
async fn terminals_of_every_channel_are_listed() {
    let app = spawn_app().await;

    let terminals = app.get_json("/api/v1/terminals").await;

    for channel in ["pc", "app", "kiosk"] {
        assert!(
            terminals
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["channel"] == channel),
            "no {channel} terminal in {terminals}"
        );
    }
}

#[actix_web::test]
async fn departments_are_listed_with_their_mode() {
    let app = spawn_app().await;

    let departments = app.get_json("/api/v1/departments").await;

    let manual = departments
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["mode"] == "manual");
    assert!(manual.is_some(), "no manual department in {departments}");
}

#[actix_web::test]
async fn governance_centres_form_a_three_tier_tree() {
    let app = spawn_app().await;

    let city = app.get_json("/api/v1/governance/centers").await;

    assert_eq!(city["tier"], "city", "{city}");
    let districts = city["children"].as_array().unwrap();
    assert!(districts.len() >= 3, "{city}");
    for district in districts {
        assert_eq!(district["tier"], "district", "{district}");
        let streets = district["children"].as_array().unwrap();
        assert!(streets.len() >= 2, "{district}");
        assert!(streets.iter().all(|s| s["tier"] == "street"), "{district}");
    }
}

#[actix_web::test]
async fn health_check_answers_ok() {
    let app = spawn_app().await;

    let health = app.get_json("/healthz").await;

    assert_eq!(health["status"], "ok", "{health}");
}

#[actix_web::test]
async fn readiness_says_ready_while_serving_and_not_ready_once_shutting_down() {
    // Arrange: `spawn_app` returns once every consumer group has its partitions.
    let app = spawn_app().await;
    let ready = app.get("/readyz").await;
    let ready = (ready.status(), json_body(ready).await);

    // Act: the service begins to stop, as on SIGTERM; its HTTP listener still answers.
    app.systems.shutdown().await;
    let stopping = app.get("/readyz").await;

    // Assert: an orchestrator sends traffic while it is ready and stops once it is stopping,
    // and the refusal says why.
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert_eq!(ready.1["status"], "ready", "{}", ready.1);
    let body = assert_refused(stopping, 503, "not_ready").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("shutting down")),
        "the refusal should say the service is shutting down: {body}"
    );
}

#[actix_web::test]
async fn the_intake_feed_without_a_wait_answers_what_is_there_at_once() {
    // Arrange: a governance process elsewhere reads new applications from this feed.
    let app = spawn_app().await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    // Act: from the start, not waiting for anything new.
    let fed = app.get_json("/api/v1/intake/feed?after=0").await;
    let after = app.get_json("/api/v1/intake/feed?after=1").await;

    // Assert: the application is there; after it, nothing — answered, not waited for.
    assert_eq!(fed[0]["sequence"], 1, "{fed}");
    assert_eq!(fed[0]["application"]["case_id"], case_id.as_str(), "{fed}");
    assert_eq!(after, json!([]), "{after}");
}
