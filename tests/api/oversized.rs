//! Records too large for the bus: an application over the limit is refused before it is taken;
//! a record the bus refuses for good anyway is dead-lettered, holds nothing back, and makes the
//! service say it is not ready until the bus takes what it is given again; a shutdown that could
//! not deliver records fails, saying how many.

use crate::helpers::{assert_refused, json_body, poll, spawn_app_with, TestApp, TERMINAL};
use bytes::Bytes;
use govfusion::app::Application;
use govfusion::bus::bridge::PublishRecords;
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::{record_size, Record, Topic};
use govfusion::clock::SystemClock;
use govfusion::port::PublishError;
use govfusion::settings::{BusKind, ENVELOPE_OVERHEAD_BYTES};
use serde_json::Value;
use std::sync::Arc;

/// The record limit of these tests: far below a broker's, so that a test's records reach it.
const LIMIT: u64 = 20_000;

/// A service on the memory bus whose records may be at most [`LIMIT`] bytes, configured as an
/// operator must: its body limit within what a record carries.
async fn spawn_small_bus_app(refused_unready_ms: u64) -> TestApp {
    spawn_app_with(|settings| {
        settings.bus.kind = BusKind::Memory;
        settings.bus.max_record_bytes = LIMIT;
        settings.http.max_body_bytes = (LIMIT - ENVELOPE_OVERHEAD_BYTES) as usize;
        settings.bridge.refused_unready_ms = refused_unready_ms;
        settings
            .validate("test")
            .expect("a configuration the service takes");
    })
    .await
}

/// A service configured with the default record limit, over a memory bus that refuses records
/// over `bytes`: a broker whose own limit is below `bus.max_record_bytes`, which the
/// configuration's checks cannot see.
async fn spawn_app_over_a_stricter_bus(bytes: u64) -> TestApp {
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    let mut strict = settings.bus.clone();
    strict.max_record_bytes = bytes;
    let bus = MemoryBus::new(&strict);
    TestApp::start_on(settings, Arc::new(SystemClock), bus, crate::POLL_FOR).await
}

/// A record of `bytes` bytes of payload, keyed `key`, for the market department.
fn record_of(key: &str, bytes: usize) -> Record {
    Record {
        topic: Topic::Applications,
        key: key.into(),
        headers: vec![
            ("id".into(), format!("{key}/published")),
            ("type".into(), "application.published".into()),
            ("target".into(), "department/market".into()),
        ],
        payload: Bytes::from(vec![b'x'; bytes]),
    }
}

/// Every record of `topic` keyed `key`.
fn records_keyed(app: &TestApp, topic: Topic, key: &str) -> Vec<Arc<Record>> {
    app.memory_bus()
        .all_records(topic)
        .into_iter()
        .map(|(_, record)| record)
        .filter(|record| record.key == key)
        .collect()
}

/// Publishes `records` through the bridge, then submits three applications behind them;
/// answers how the publish went and the cases' ids.
async fn publish_then_submit(
    app: &TestApp,
    records: Vec<Record>,
) -> (Result<(), PublishError>, Vec<String>) {
    let published = app
        .systems
        .bridge
        .send(PublishRecords(records))
        .await
        .expect("the bridge is running");
    let body = app.application_body("individual_business_registration");
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(app.submit_ok(&body).await);
    }
    (published, cases)
}

/// Waits for the dead letters keyed `key`.
async fn dead_letters(app: &TestApp, key: &str) -> Vec<Arc<Record>> {
    poll(&format!("a dead letter keyed {key}"), || async {
        let found = records_keyed(app, Topic::DeadLetters, key);
        if found.is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(found)
        }
    })
    .await
}

/// The intake feed from its start, as the city centre reads it.
async fn feed(app: &TestApp) -> Value {
    app.get_json("/api/v1/intake/feed?after=0&wait_ms=5000")
        .await
}

#[actix_web::test]
async fn an_application_too_large_for_the_bus_is_refused_with_413_and_creates_nothing() {
    // Arrange
    let app = spawn_small_bus_app(30_000).await;
    let largest = app.systems.settings.bus.max_application_bytes() as usize;
    let mut body = app.application_body("individual_business_registration");
    // Three notes of 3-byte characters, each within the input limits, that together make the
    // application larger than a record leaves room for, and the body still within its limit.
    for note in ["note1", "note2", "note3"] {
        body["form"][note] = Value::String("长".repeat(largest / 9 + 1));
    }

    // Act
    let refused = app.submit(TERMINAL, &body).await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    // Assert: a refusal the applicant can read, naming the size and the limit …
    let answer = assert_refused(refused, 413, "application_too_large").await;
    let message = answer["message"].as_str().unwrap_or_default();
    let limit = app.systems.settings.bus.max_application_bytes().to_string();
    assert!(
        message.contains(&limit) && message.contains("bytes"),
        "{answer}"
    );
    // … and no case, no feed position: the next application is the feed's first.
    let fed = feed(&app).await;
    let fed = fed.as_array().expect("the feed is a list");
    assert_eq!(fed.len(), 1, "{fed:?}");
    assert_eq!(fed[0]["sequence"], 1, "{fed:?}");
    assert_eq!(fed[0]["application"]["case_id"], case_id.as_str());
    app.wait_until_completed(&case_id).await;
}

#[actix_web::test]
async fn a_record_the_bus_refuses_is_dead_lettered_and_the_cases_behind_it_complete() {
    // Arrange
    let app = spawn_small_bus_app(30_000).await;
    let key = format!("oversized-{}", uuid::Uuid::new_v4().simple());
    let oversized = record_of(&key, LIMIT as usize + 1);

    // Act: the oversized record and a small one in one publish, then submissions behind them.
    let (published, cases) =
        publish_then_submit(&app, vec![oversized, record_of("small", 10)]).await;

    // Assert: the publish failed for good, saying so …
    let error = published.expect_err("an oversized record cannot be on the bus");
    assert!(error.permanent, "{error}");
    assert!(error.to_string().contains("refused"), "{error}");
    // … the small record of the same publish is on the bus, the oversized one is not …
    assert_eq!(records_keyed(&app, Topic::Applications, "small").len(), 1);
    assert!(records_keyed(&app, Topic::Applications, &key).is_empty());
    // … a small dead letter names it, its topic and why …
    let letter = &dead_letters(&app, &key).await[0];
    assert_eq!(
        letter.header("dlq.topic"),
        Some("applications"),
        "{letter:?}"
    );
    assert!(
        letter
            .header("dlq.error")
            .is_some_and(|e| e.contains("exceeds")),
        "{letter:?}"
    );
    assert_eq!(
        letter.header("id"),
        Some(format!("{key}/published").as_str())
    );
    assert!(letter.payload.is_empty(), "not the oversized payload");
    // … and every submission behind it completes.
    for case_id in &cases {
        app.wait_until_decided(case_id, "approved").await;
    }
}

#[actix_web::test]
async fn an_unreadable_record_near_the_limit_is_dead_lettered_without_its_payload_and_cases_go_on()
{
    // Arrange: an unreadable record (not an envelope) that fits the bus by a few bytes, so
    // that its dead letter, with the `dlq.*` headers added, does not.
    let app = spawn_small_bus_app(30_000).await;
    let key = format!("unreadable-{}", uuid::Uuid::new_v4().simple());
    let mut unreadable = record_of(&key, 0);
    let room = LIMIT - record_size(&unreadable) - 20;
    unreadable.payload = Bytes::from(vec![b'x'; room as usize]);
    let size = record_size(&unreadable);

    // Act
    let (published, cases) = publish_then_submit(&app, vec![unreadable]).await;

    // Assert: the record is on the bus …
    assert!(published.is_ok(), "{published:?}");
    // … its dead letter names it, where it was read and why, and says its size instead of
    // carrying it …
    let letter = &dead_letters(&app, &key).await[0];
    assert!(letter.payload.is_empty(), "{letter:?}");
    assert_eq!(letter.header("dlq.size"), Some(size.to_string().as_str()));
    assert_eq!(letter.header("dlq.topic"), Some("applications"));
    assert_eq!(letter.header("dlq.offset"), Some("0"), "{letter:?}");
    assert!(letter.header("dlq.group").is_some(), "{letter:?}");
    let error = letter.header("dlq.error").unwrap_or_default();
    assert!(error.contains("payload is left out"), "{error}");
    // … and its partition moves on: every case behind it completes.
    for case_id in &cases {
        app.wait_until_completed(case_id).await;
    }
}

#[actix_web::test]
async fn readiness_says_not_ready_after_a_refused_record_and_recovers_on_its_own() {
    // Arrange: readiness comes back two seconds after the last refusal.
    let app = spawn_small_bus_app(2_000).await;
    let ready_before = app.get("/readyz").await.status();

    // Act
    let _ = app
        .systems
        .bridge
        .send(PublishRecords(vec![record_of("too-big", LIMIT as usize)]))
        .await
        .expect("the bridge is running");
    let refused = app.get("/readyz").await;

    // Assert
    assert_eq!(ready_before, 200);
    assert_eq!(refused.status(), 503);
    let body = json_body(refused).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused records for good") && message.contains("exceeds"),
        "{body}"
    );
    poll("readiness to come back", || async {
        match app.get("/readyz").await.status().as_u16() {
            200 => Ok(()),
            other => Err(format!("/readyz answered {other}")),
        }
    })
    .await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    app.wait_until_completed(&case_id).await;
}

#[actix_web::test]
async fn a_shutdown_that_could_not_deliver_records_fails_saying_how_many() {
    // Arrange: a bus away for longer than the bridge keeps retrying (half a second, then a
    // second, …: the batch is still being retried when the shutdown drains the bridge).
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = govfusion::settings::BusKind::Memory;
    settings.bridge.retry_initial_backoff_ms = 500;
    settings.bridge.retry_max_attempts = 4;
    let app = Application::build(settings).await.expect("built");
    let systems = app.systems().clone();
    systems.ready(crate::POLL_FOR).await.expect("ready");
    let bus = systems.memory_bus.clone().expect("the memory bus");
    bus.fail_next_publishes(u32::MAX);
    let pending = systems
        .bridge
        .send(PublishRecords(vec![record_of("a", 10), record_of("b", 10)]));

    // Act: what SIGTERM does (`serve` exits 1 on the error).
    let stopped = app.run_until(async {}).await;

    // Assert
    let error = stopped.expect_err("two records were not delivered");
    assert!(
        error.to_string().contains("could not deliver 2 record(s)"),
        "{error}"
    );
    let answer = pending.await.expect("the bridge answered");
    assert!(answer.is_err_and(|e| !e.permanent));
}

#[actix_web::test]
async fn a_shutdown_that_runs_out_of_time_with_records_undelivered_fails() {
    // Arrange: a bus away, and a bridge that would keep retrying far past the shutdown limit.
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = govfusion::settings::BusKind::Memory;
    settings.bridge.retry_initial_backoff_ms = 500;
    settings.bridge.retry_max_attempts = 1_000;
    settings.service.shutdown_timeout_ms = 1_500;
    let app = Application::build(settings).await.expect("built");
    let systems = app.systems().clone();
    systems.ready(crate::POLL_FOR).await.expect("ready");
    let bus = systems.memory_bus.clone().expect("the memory bus");
    bus.fail_next_publishes(u32::MAX);
    let _pending = systems
        .bridge
        .send(PublishRecords(vec![record_of("a", 10)]));

    // Act: what SIGTERM does (`serve` exits 1 on the error).
    let stopped = app.run_until(async {}).await;

    // Assert
    let error = stopped.expect_err("a record was left undelivered");
    assert!(
        error.to_string().contains("did not finish within"),
        "{error}"
    );
}

#[actix_web::test]
async fn an_act_the_bus_refuses_for_good_is_answered_422_and_so_is_its_repeat() {
    // Arrange: a completed case, and a rating whose comment, within every limit the service
    // checks, makes a record larger than the bus takes: its real limit (5,000 bytes) is below
    // the configured one, which no check at start-up can see.
    let app = spawn_app_over_a_stricter_bus(5_000).await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    app.wait_until_completed(&case_id).await;
    let path = format!("/api/v1/terminals/{TERMINAL}/cases/{case_id}/rating");
    let comment = "好".repeat(app.systems.settings.input.text_max_chars);
    let rating = serde_json::json!({ "score": 5, "comment": comment });

    // Act
    let first = app.post_json(&path, &rating).await;
    let repeat = app.post_json(&path, &rating).await;

    // Assert: not "202, sent until the bus takes it": refused, saying why, both times.
    let first = assert_refused(first, 422, "act_refused").await;
    let message = first["message"].as_str().unwrap_or_default();
    assert!(message.contains("exceeds the bus's limit"), "{first}");
    assert_eq!(assert_refused(repeat, 422, "act_refused").await, first);
}
