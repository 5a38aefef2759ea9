//! A person's act — a staff decision, a collaboration answer, the applicant's rating — is never
//! undone once taken: when the bus refuses its message, the act is answered `202` with its
//! result and its message is sent again until the bus takes it; the same request again
//! answers the same result, and a different one is refused.

use crate::helpers::{
    assert_refused, assert_status, history_entries, inbox_lists_case, json_body, spawn_app,
    spawn_app_with, TestApp, TERMINAL,
};
use govfusion::bus::Topic;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Publishes the bus refuses in a row during an outage: with two sends per batch at the
/// bridge, the act's message is refused over several rounds before the bus takes it.
const OUTAGE: u32 = 8;

/// The service with a bridge that gives up after two sends and acts answered after 200 ms, so
/// that an outage outlasts the wait.
async fn spawn_app_for_outages() -> TestApp {
    spawn_app_with(|settings| {
        settings.bridge.retry_max_attempts = 2;
        settings.service.submit_timeout_ms = 200;
    })
    .await
}

/// The distinct ids of the `kind` messages about `case_id` on the bus.
fn ids_on_bus(app: &TestApp, topic: Topic, case_id: &str, kind: &str) -> BTreeSet<String> {
    app.memory_bus()
        .all_records(topic)
        .into_iter()
        .filter(|(_, r)| r.key == case_id && r.header("type") == Some(kind))
        .filter_map(|(_, r)| r.header("id").map(str::to_owned))
        .collect()
}

/// Sends the same request twice, asserting that the repeat answers the first result; returns
/// the first answer's status and body.
async fn twice(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let first = app.post_json(path, body).await;
    let status = first.status().as_u16();
    let first = json_body(first).await;
    let repeat = app.post_json(path, body).await;
    let repeat_status = repeat.status().as_u16();
    let repeat = json_body(repeat).await;
    assert!(
        [200, 201, 202].contains(&repeat_status),
        "a repeat must not be refused: {repeat_status} {repeat}"
    );
    assert_eq!(repeat, first, "a repeat answers the first result");
    (status, first)
}

#[actix_web::test]
async fn a_decision_the_bus_refuses_is_not_undone_and_reaches_the_bus_once_it_recovers() {
    // Arrange
    let app = spawn_app_for_outages().await;
    let (case_id, path) = app.case_to_decide().await;
    app.memory_bus().fail_next_publishes(OUTAGE);

    // Act
    let (status, approval) = twice(&app, &path, &json!({ "decision": "approve" })).await;

    // Assert: taken, not yet on the bus, out of the inbox; then on the bus once.
    assert_eq!(status, 202, "taken while the bus refuses it: {approval}");
    assert_eq!(approval["outcome"]["decision"], "approved", "{approval}");
    let inbox = app
        .get_json("/api/v1/departments/urban_management/inbox")
        .await;
    assert!(!inbox_lists_case(&inbox, &case_id), "{inbox}");
    app.wait_until_decided(&case_id, "approved").await;
    let ids = ids_on_bus(&app, Topic::Approvals, &case_id, "approval.published");
    assert_eq!(
        ids,
        BTreeSet::from([format!("{case_id}/approval")]),
        "one approval"
    );
}

#[actix_web::test]
async fn a_repeated_decision_answers_the_first_and_a_different_one_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (case_id, path) = app.case_to_decide().await;

    // Act
    let (status, approval) = twice(&app, &path, &json!({ "decision": "approve" })).await;
    let reject = app.post_json(&path, &json!({ "decision": "reject" })).await;

    // Assert
    assert_eq!(status, 200, "{approval}");
    assert_refused(reject, 409, "invalid_transition").await;
    app.wait_until_decided(&case_id, "approved").await;
}

#[actix_web::test]
async fn a_collaboration_answer_the_bus_refuses_is_kept_and_a_repeat_answers_the_same() {
    // Arrange: housing (auto) needs fire (auto) and urban_management (manual).
    let app = spawn_app_for_outages().await;
    let (case_id, event_id) = app
        .event_waiting_at("urban_management", "construction_permit")
        .await;
    let event_id = event_id.as_str();
    let path = format!("/api/v1/collaborations/{event_id}/result");
    app.memory_bus().fail_next_publishes(OUTAGE);

    // Act
    let (status, result) = twice(&app, &path, &json!({ "outcome": "agree" })).await;
    let other = app
        .post_json(&path, &json!({ "outcome": "disagree" }))
        .await;

    // Assert
    assert_eq!(status, 202, "{result}");
    assert_eq!(result["outcome"], "agree", "{result}");
    assert_refused(other, 409, "invalid_transition").await;
    app.wait_until_decided(&case_id, "approved").await;
    let ids = ids_on_bus(
        &app,
        Topic::CollaborationResults,
        &case_id,
        "collaboration.answered",
    );
    // Its own answer ends in `/answered`; the centres' passing it up, in `/answered/<centre>`.
    let from_urban = ids
        .iter()
        .filter(|id| id.starts_with(event_id) && id.ends_with("/answered"))
        .count();
    assert_eq!(from_urban, 1, "one answer from urban_management: {ids:?}");
}

#[actix_web::test]
async fn a_rating_the_bus_refuses_is_kept_and_a_repeat_answers_the_same() {
    // Arrange
    let app = spawn_app_for_outages().await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    app.wait_until_completed(&case_id).await;
    let path = format!("/api/v1/terminals/{TERMINAL}/cases/{case_id}/rating");
    app.memory_bus().fail_next_publishes(OUTAGE);

    // Act
    let (status, rating) = twice(&app, &path, &json!({ "score": 5, "comment": "好" })).await;
    let other = app.post_json(&path, &json!({ "score": 1 })).await;

    // Assert
    assert_eq!(status, 202, "{rating}");
    assert_eq!(rating["score"], 5, "{rating}");
    assert_refused(other, 409, "invalid_transition").await;
    let case = app
        .wait_for_case(&case_id, "the rating on the bus", |c| {
            !history_entries(c, "case.rated").is_empty()
        })
        .await;
    assert_eq!(case["rating"]["score"], 5, "{case}");
    let ids = ids_on_bus(&app, Topic::CaseUpdates, &case_id, "case.rated");
    assert_eq!(ids, BTreeSet::from([format!("{case_id}/rated")]));
    let healthy = app
        .post_json(&path, &json!({ "score": 5, "comment": "好" }))
        .await;
    assert_eq!(
        assert_status(healthy, 201).await,
        rating,
        "once on the bus: 201"
    );
}
