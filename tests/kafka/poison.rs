//! A record no system can read, written by an outside producer, goes to dead-letters with its
//! origin in headers, and consumption goes on.

use crate::helpers::{poll, settings, spawn_app, Broker};
use crate::raw::{produce, producer, read_topics, RawRecord};
use govfusion::bus::Topic;
use std::collections::BTreeSet;

#[actix_web::test]
async fn an_unreadable_record_goes_to_dead_letters_with_its_origin_and_cases_go_on() {
    // Arrange
    let app = spawn_app(settings(&Broker::Embedded)).await;
    let brokers = app.kafka().brokers().to_owned();
    let applications = app.topic(Topic::Applications);
    let key = format!("poison-{}", uuid::Uuid::new_v4().simple());

    // Act
    let (partition, offset) = produce(
        &producer(&brokers),
        &applications,
        &key,
        &[("target", "department/market")],
        b"not json",
    )
    .await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    // Assert: each group that read the record and could not decode it — the one of the centres
    // and departments (which routes it to the market department), and the intake and
    // supervision systems', which read every flow topic — writes a dead letter naming itself
    // and where the record was (docs/asyncapi.yaml, `DeadLetter`).
    let expected: BTreeSet<String> = [
        app.systems.flow_group.clone().expect("departments run"),
        app.systems.intake_group.clone(),
        app.systems.supervision_group.clone(),
    ]
    .into_iter()
    .collect();
    let dead_letters = [app.topic(Topic::DeadLetters)];
    let letters: Vec<RawRecord> = poll(&format!("dead letters keyed {key}"), || async {
        let found: Vec<RawRecord> = read_topics(&brokers, &dead_letters)
            .await
            .into_iter()
            .filter(|r| r.key == key)
            .collect();
        let groups: BTreeSet<String> = found
            .iter()
            .filter_map(|r| r.header("dlq.group").map(str::to_owned))
            .collect();
        if groups == expected {
            Ok(found)
        } else {
            Err(format!("dead letters from groups {groups:?}"))
        }
    })
    .await;
    for letter in &letters {
        assert!(
            letter.header("dlq.error").is_some_and(|e| !e.is_empty()),
            "a dead letter should say why: {letter:?}"
        );
        assert_eq!(
            letter.header("dlq.topic"),
            Some(Topic::Applications.suffix()),
            "{letter:?}"
        );
        assert_eq!(
            letter.header("dlq.partition"),
            Some(partition.to_string().as_str()),
            "{letter:?}"
        );
        assert_eq!(
            letter.header("dlq.offset"),
            Some(offset.to_string().as_str()),
            "{letter:?}"
        );
        assert_eq!(
            letter.payload, b"not json",
            "the original bytes: {letter:?}"
        );
    }
    app.wait_until_decided(&case_id, "approved").await;
    app.shutdown().await;
}
