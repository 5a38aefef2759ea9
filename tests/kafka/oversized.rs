//! Records too large for Kafka: an application too large for a record is refused with 413 (before
//! it is taken, or when the producer refuses its record); a record the producer or the broker
//! refuses for good is dead-lettered, the service says it is not ready, and the cases behind it
//! complete.

use crate::common::app::TERMINAL;
use crate::helpers::{json_body, poll, settings, spawn_app, Broker, TestApp};
use crate::raw::{read_topics, RawRecord};
use bytes::Bytes;
use govfusion::bus::bridge::PublishRecords;
use govfusion::bus::{Record, Topic};
use serde_json::Value;

/// Waits for the dead letters keyed `key` on the service's dead-letter topic.
async fn dead_letters(app: &TestApp, key: &str) -> Vec<RawRecord> {
    let topics = [app.topic(Topic::DeadLetters)];
    let brokers = app.kafka().brokers().to_owned();
    poll(&format!("a dead letter keyed {key}"), || async {
        let found: Vec<RawRecord> = read_topics(&brokers, &topics)
            .await
            .into_iter()
            .filter(|r| r.key == key)
            .collect();
        if found.is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(found)
        }
    })
    .await
}

/// Submits three applications and waits until each is completed.
async fn later_cases_complete(app: &TestApp) {
    let body = app.application_body("individual_business_registration");
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(app.submit_ok(&body).await);
    }
    for case_id in &cases {
        let case = app.wait_until_completed(case_id).await;
        assert_eq!(
            case["approval"]["outcome"]["decision"], "approved",
            "{case}"
        );
    }
}

#[actix_web::test]
async fn on_the_embedded_cluster_an_oversized_record_is_dead_lettered_and_cases_go_on() {
    // Arrange: the shipped limit of 1,000,000 bytes per record.
    let app = spawn_app(settings(&Broker::Embedded)).await;
    let key = format!("oversized-{}", uuid::Uuid::new_v4().simple());
    let mut too_large = app.application_body("individual_business_registration");
    too_large["form"]["note"] = Value::String("x".repeat(990_000));
    let oversized = Record {
        topic: Topic::Applications,
        key: key.clone(),
        headers: vec![("id".into(), format!("{key}/published"))],
        payload: Bytes::from(vec![b'x'; 1_100_000]),
    };

    // Act: an application under the HTTP body limit but over the bus's, then a record over the
    // producer's limit published anyway.
    let refused = app.submit(crate::common::app::TERMINAL, &too_large).await;
    let published = app
        .systems
        .bridge
        .send(PublishRecords(vec![oversized]))
        .await;
    let readiness = app.get("/readyz").await;

    // Assert
    assert_eq!(refused.status(), 413);
    assert_eq!(json_body(refused).await["error"], "application_too_large");
    let error = published
        .expect("the bridge is running")
        .expect_err("too large for the producer");
    assert!(error.permanent, "{error}");
    assert_eq!(readiness.status(), 503);
    let letter = &dead_letters(&app, &key).await[0];
    assert_eq!(
        letter.header("dlq.topic"),
        Some("applications"),
        "{letter:?}"
    );
    assert!(letter.header("dlq.error").is_some_and(|e| !e.is_empty()));
    assert!(letter.payload.is_empty(), "not the oversized payload");
    later_cases_complete(&app).await;
    app.shutdown().await;
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a Kafka-protocol broker); .ci/run provides it"]
async fn on_a_broker_a_submission_the_producer_refuses_gets_413_and_cases_go_on() {
    // Arrange: records of several MB are taken by the test broker, so the refusal comes from
    // the producer: its `message.max.bytes` set, through `bus.kafka.options`, below what
    // `bus.max_record_bytes` promises (a misconfiguration the 413 cannot catch).
    let mut settings = settings(&Broker::real());
    settings.bus.max_record_bytes = 4_000_000;
    settings
        .bus
        .kafka
        .options
        .insert("message.max.bytes".into(), "1000000".into());
    let app = spawn_app(settings).await;
    let mut body = app.application_body("individual_business_registration");
    body["form"]["note"] = Value::String("x".repeat(1_020_000));

    // Act: taken (under the HTTP body limit), but its snapshot is over the producer's limit.
    let refused = app.submit(TERMINAL, &body).await;

    // Assert: the submission is refused as too large, naming its case; the case fails with a
    // reason the applicant reads, the intake says it is not ready, its snapshot is
    // dead-lettered, and the cases behind it complete.
    assert_eq!(refused.status(), 413);
    let refused = json_body(refused).await;
    assert_eq!(refused["error"], "application_too_large", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    let case_id = message
        .split_whitespace()
        .skip_while(|word| *word != "case")
        .nth(1)
        .expect("the message names the case")
        .to_owned();
    let case = app
        .wait_for_case(&case_id, "failed", |case| case["status"] == "failed")
        .await;
    let failure = case["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("will not be processed"), "{case}");
    assert_eq!(app.get("/readyz").await.status(), 503);
    let letter = &dead_letters(&app, &format!("intake|{case_id}")).await[0];
    assert_eq!(letter.header("dlq.topic"), Some("state"), "{letter:?}");
    later_cases_complete(&app).await;
    app.shutdown().await;
}
