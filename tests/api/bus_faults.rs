//! Faults on the bus (the in-memory bus's fault injection, and records no system wrote): cases
//! still complete, exactly once in effect, in order, and unreadable records go to dead-letters.
//! Also what the records on the in-memory bus carry from one system to the next.

use crate::common::app::DISTRICT;
use crate::common::once::{assert_one_message_per_cause, sent_record, ONCE_PER_COLLABORATING_CASE};
use crate::helpers::{poll, spawn_app, spawn_app_with, step_names, TestApp};
use bytes::Bytes;
use govfusion::bus::bridge::PublishRecords;
use govfusion::bus::{Record, Topic};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The records of `topic` keyed by `key`, with their partitions, in offset order per partition.
pub(crate) fn records_of(app: &TestApp, topic: Topic, key: &str) -> Vec<(u32, Arc<Record>)> {
    app.memory_bus()
        .all_records(topic)
        .into_iter()
        .filter(|(_, record)| record.key == key)
        .collect()
}

/// The `type` headers of records, in order.
fn types(records: &[(u32, Arc<Record>)]) -> Vec<&str> {
    records
        .iter()
        .map(|(_, r)| r.header("type").unwrap_or("<no type header>"))
        .collect()
}

/// Puts raw records on the bus through the bridge, as an outside system would.
pub(crate) async fn publish_raw(app: &TestApp, records: Vec<Record>) {
    app.systems
        .bridge
        .send(PublishRecords(records))
        .await
        .expect("the bridge is running")
        .expect("the records reach the bus");
}

/// A well-formed envelope of type `kind`, as an outside system might send it, keyed and
/// addressed as given, whose `data` does not match its type.
fn bad_data_record(topic: Topic, kind: &str, case_id: &str, target: &str) -> Record {
    let id = format!("{case_id}/bad");
    let envelope = json!({
        "id": id, "type": kind, "case_id": case_id,
        "source": "governance/500000", "target": target,
        "occurred_at": "2024-01-01T00:00:00Z", "trace_id": "t-bad", "schema": 1,
        "data": { "x": 1 }
    });
    Record {
        topic,
        key: case_id.into(),
        headers: vec![
            ("id".into(), id),
            ("type".into(), kind.into()),
            ("target".into(), target.into()),
        ],
        payload: Bytes::from(envelope.to_string()),
    }
}

/// Waits for the dead letters keyed by `key`.
async fn dead_letters(app: &TestApp, key: &str) -> Vec<(u32, Arc<Record>)> {
    poll(&format!("a dead letter keyed {key}"), || async {
        let found = records_of(app, Topic::DeadLetters, key);
        if found.is_empty() {
            Err("no dead letter yet".to_owned())
        } else {
            Ok(found)
        }
    })
    .await
}

#[actix_web::test]
async fn the_city_hands_the_approval_on_to_the_intake_as_the_department_published_it() {
    // Arrange
    let app = spawn_app().await;

    // Act: a case that asks for collaboration before its approval.
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    app.wait_until_completed(&case_id).await;

    // Assert
    let approvals = records_of(&app, Topic::Approvals, &case_id);
    let data_of = |kind: &str| -> Value {
        let (_, record) = approvals
            .iter()
            .find(|(_, record)| record.header("type") == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} on the bus"));
        let envelope: Value = serde_json::from_slice(&record.payload).expect("an envelope is JSON");
        envelope["data"].clone()
    };
    let published = data_of("approval.published");
    assert_eq!(published["outcome"]["decision"], "approved", "{published}");
    assert_eq!(
        data_of("approval.delivered"),
        published,
        "the delivered approval should be the published one"
    );
}

#[actix_web::test]
async fn duplicate_deliveries_change_nothing() {
    // Arrange
    let app = spawn_app().await;
    app.memory_bus().duplicate_next_deliveries(1000);

    // Act
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert: on the bus.
    let accepted = records_of(&app, Topic::Acceptances, &case_id);
    assert_eq!(
        types(&accepted),
        ["application.accepted"],
        "one acceptance on the bus, however often the application was delivered"
    );
    let approvals = records_of(&app, Topic::Approvals, &case_id);
    let published = types(&approvals)
        .into_iter()
        .filter(|t| *t == "approval.published")
        .count();
    assert_eq!(
        published,
        1,
        "one approval on the bus: {:?}",
        types(&approvals)
    );
    // Assert: every cause had one effect — one message id per step of the case, and one
    // answer per collaboration event (two collaborators). A receiver drops an id it has seen,
    // so only a second, different message could show twice in the history.
    let mut sent = Vec::new();
    for topic in Topic::flow() {
        sent.extend(records_of(&app, topic, &case_id));
    }
    assert_one_message_per_cause(
        std::slice::from_ref(&case_id),
        &ONCE_PER_COLLABORATING_CASE,
        sent.iter().map(|(_, r)| sent_record(r)),
    );
    // The collaborating departments' answers (the centres relay each one up the tiers).
    let results = records_of(&app, Topic::CollaborationResults, &case_id);
    let answers: HashSet<&str> = results
        .iter()
        .filter(|(_, r)| {
            let envelope: serde_json::Value =
                serde_json::from_slice(&r.payload).unwrap_or_default();
            envelope["source"]
                .as_str()
                .is_some_and(|source| source.starts_with("department/"))
        })
        .filter_map(|(_, r)| r.header("id"))
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "one answer per collaboration event: {answers:?}"
    );
    // Assert: in the applicant's view.
    let steps = step_names(&case["history"]);
    for step in [
        "application.accepted",
        "approval.published",
        "approval.delivered",
    ] {
        let n = steps.iter().filter(|s| *s == step).count();
        assert_eq!(n, 1, "{step} {n} times in the history: {steps:?}");
    }
    let approval_steps = step_names(&case["approval"]["steps"]);
    let decided = approval_steps.iter().filter(|s| *s == "decided").count();
    assert_eq!(decided, 1, "decided {decided} times: {approval_steps:?}");
}

#[actix_web::test]
async fn failed_publishes_are_retried_and_keep_each_case_in_order_on_one_partition() {
    // Arrange
    let app = spawn_app().await;
    app.memory_bus().fail_next_publishes(3);

    // Act
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    let retries = app.systems.bridge_stats.retries.load(Ordering::Relaxed);
    assert!(retries >= 3, "3 refused publishes, {retries} retries");
    let mut partitions = BTreeSet::new();
    for topic in Topic::ALL {
        partitions.extend(records_of(&app, topic, &case_id).iter().map(|(p, _)| *p));
    }
    assert_eq!(
        partitions.len(),
        1,
        "one case's records must share one partition: {partitions:?}"
    );
    let approvals = records_of(&app, Topic::Approvals, &case_id);
    assert_eq!(
        types(&approvals),
        ["approval.published", "approval.delivered"],
        "approvals out of causal order"
    );
    let results = records_of(&app, Topic::CollaborationResults, &case_id);
    let results = types(&results);
    assert_eq!(
        results.last(),
        Some(&"collaboration.completed"),
        "every answer must come before the completion: {results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|t| **t == "collaboration.completed")
            .count(),
        1,
        "{results:?}"
    );
}

#[actix_web::test]
async fn an_unreadable_record_goes_to_dead_letters_and_consumption_goes_on() {
    // Arrange: one partition, so the next case queues behind the poison on every topic.
    let app = spawn_app_with(|settings| settings.bus.partitions = 1).await;
    let poison = Record {
        topic: Topic::Applications,
        key: "poison-1".into(),
        headers: vec![("target".into(), "department/market".into())],
        payload: Bytes::from_static(b"not json"),
    };

    // Act
    publish_raw(&app, vec![poison]).await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    // Assert
    let original = app.memory_bus().records(Topic::Applications, 0);
    let offset = original
        .iter()
        .position(|r| r.key == "poison-1")
        .expect("the poison record is on the applications topic");
    for (_, letter) in dead_letters(&app, "poison-1").await {
        assert!(
            letter.header("dlq.error").is_some_and(|e| !e.is_empty()),
            "{letter:?}"
        );
        assert_eq!(
            letter.header("dlq.topic"),
            Some("applications"),
            "{letter:?}"
        );
        assert_eq!(letter.header("dlq.partition"), Some("0"), "{letter:?}");
        assert_eq!(
            letter.header("dlq.offset"),
            Some(offset.to_string().as_str()),
            "{letter:?}"
        );
        assert_eq!(
            letter.payload,
            Bytes::from_static(b"not json"),
            "{letter:?}"
        );
    }
    app.wait_until_decided(&case_id, "approved").await;
}

#[actix_web::test]
async fn an_envelope_whose_data_does_not_match_its_type_goes_to_dead_letters() {
    // Arrange: a well-formed envelope, as an outside system might send it, with a wrong `data`.
    let app = spawn_app_with(|settings| settings.bus.partitions = 1).await;
    let record = bad_data_record(
        Topic::Applications,
        "application.published",
        "bad-data-case",
        "department/market",
    );

    // Act
    publish_raw(&app, vec![record]).await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    // Assert
    let letters = dead_letters(&app, "bad-data-case").await;
    let error = letters[0].1.header("dlq.error").unwrap_or_default();
    assert!(
        error.contains("application.published"),
        "the reason should name the message type: {error}"
    );
    app.wait_until_decided(&case_id, "approved").await;
}

#[actix_web::test]
async fn delayed_deliveries_still_complete_a_case() {
    // Arrange
    let app = spawn_app().await;
    app.memory_bus().delay_deliveries(Duration::from_millis(20));

    // Act
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    assert_eq!(
        case["collaboration_events"].as_array().unwrap().len(),
        2,
        "{case}"
    );
}

#[actix_web::test]
async fn unreadable_messages_that_their_addressees_never_consume_go_to_dead_letters() {
    // Arrange: messages whose addressee (a department, a centre) does not read their topic,
    // or reads them without needing their data; nothing else decodes them either.
    let app = spawn_app().await;
    let poisons = [
        (
            Topic::Supervision,
            "supervision.warning",
            "department/market",
        ),
        (
            Topic::Supervision,
            "collaboration.escalated",
            "governance/500103",
        ),
        (Topic::CaseUpdates, "case.rated", "department/market"),
        (Topic::Approvals, "approval.delivered", "intake"),
    ];

    // Act
    let records = poisons
        .iter()
        .map(|(topic, kind, target)| bad_data_record(*topic, kind, &format!("bad-{kind}"), target))
        .collect();
    publish_raw(&app, records).await;

    // Assert: each goes to dead-letters, with a reason naming its type.
    for (_, kind, _) in poisons {
        let letters = dead_letters(&app, &format!("bad-{kind}")).await;
        let error = letters[0].1.header("dlq.error").unwrap_or_default();
        assert!(
            error.contains(kind),
            "the reason should name `{kind}`: {error}"
        );
    }
}

/// The `collaboration.dispatched` record that reached `department/<department>` for `case_id`,
/// decoded.
pub(crate) async fn dispatched_to(
    app: &TestApp,
    case_id: &str,
    department: &str,
) -> serde_json::Value {
    let target = format!("department/{department}");
    poll(
        &format!("an event of case {case_id} at {target}"),
        || async {
            records_of(app, Topic::CollaborationEvents, case_id)
                .into_iter()
                .find(|(_, r)| r.header("target") == Some(target.as_str()))
                .map(|(_, r)| serde_json::from_slice(&r.payload).expect("an envelope"))
                .ok_or_else(|| "not dispatched yet".to_owned())
        },
    )
    .await
}

/// An outside department's answer to `event` (a `collaboration.dispatched` envelope),
/// addressed to `centre`.
pub(crate) fn outside_answer(event: &serde_json::Value, centre: &str) -> Record {
    let data = &event["data"];
    let case_id = data["case_id"].as_str().expect("a case id");
    let id = format!(
        "{}/answered",
        data["event_id"].as_str().expect("an event id")
    );
    let target = format!("governance/{centre}");
    let envelope = json!({
        "id": id, "type": "collaboration.answered", "case_id": case_id,
        "source": format!("department/{}", data["department"].as_str().expect("a department")),
        "target": target, "occurred_at": "2026-03-02T02:00:00Z", "trace_id": event["trace_id"],
        "schema": 1,
        "data": {
            "event_id": data["event_id"], "case_id": case_id, "department": data["department"],
            "outcome": "agree", "opinion": "无异议", "route": data["route"],
            "answered_at": "2026-03-02T02:00:00Z"
        }
    });
    Record {
        topic: Topic::CollaborationResults,
        key: case_id.into(),
        headers: vec![
            ("id".into(), id),
            ("type".into(), "collaboration.answered".into()),
            ("target".into(), target),
        ],
        payload: Bytes::from(envelope.to_string()),
    }
}

#[actix_web::test]
async fn an_outside_answer_sent_to_a_centre_that_did_not_dispatch_the_event_is_refused() {
    // Arrange: the fire brigade is played by an outside system; a district centre dispatches
    // it an event.
    let app = spawn_app_with(|settings| {
        for department in &mut settings.departments {
            department.external |= department.code == "fire";
        }
    })
    .await;
    let case_id = app
        .submit_ok(&app.application_body("food_business_licence"))
        .await;
    let event = dispatched_to(&app, &case_id, "fire").await;
    let city = app.systems.catalog.city.to_string();

    // Act: the outside system answers the city centre instead of the district.
    publish_raw(&app, vec![outside_answer(&event, &city)]).await;

    // Assert: the answer is dead-lettered with a reason that names the right centre, and the
    // case does not complete on it.
    let letters = dead_letters(&app, &case_id).await;
    let error = letters[0].1.header("dlq.error").unwrap_or_default();
    assert!(
        error.contains(&format!("governance/{DISTRICT}")),
        "the reason should name the dispatching centre: {error}"
    );
    assert_eq!(app.get_case(&case_id).await["status"], "collaborating");

    // Act: addressed to the district that dispatched it, the same answer completes the case.
    publish_raw(&app, vec![outside_answer(&event, DISTRICT)]).await;
    app.wait_until_decided(&case_id, "approved").await;
}
