//! Restarts without a broker: the service runs on a [`MemoryBus::durable`], is stopped, and a
//! new one starts over the same bus. It must rebuild what the first one knew from the state
//! topic, resume the consumer groups where they committed, and let no redelivered record have a
//! second effect — what `tests/processes` checks with real processes and a real broker.

use crate::common::once::{assert_one_message_per_cause, sent_record, ONCE_PER_COLLABORATING_CASE};
use crate::helpers::{assert_status, inbox_lists_case, make_manual, poll, TestApp};
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::{Record, Topic};
use govfusion::clock::SystemClock;
use govfusion::settings::{BusKind, Settings};
use serde_json::json;
use std::sync::Arc;

/// The manual department that decides `outdoor_advertising` (after street_office verified the
/// site), as in the README's walk-through.
const DECIDES: &str = "urban_management";
/// The matter the tests apply for.
const MATTER: &str = "outdoor_advertising";

/// The default configuration, changed by `tweak`, on the in-memory bus.
fn settings(tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    tweak(&mut settings);
    settings
}

/// Starts the service on a new durable in-memory bus.
async fn spawn_durable_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let settings = settings(tweak);
    let bus = MemoryBus::durable(&settings.bus);
    TestApp::start_on(settings, Arc::new(SystemClock), bus, crate::POLL_FOR).await
}

/// Every record of the case on the flow topics, as the exactly-once checks read them.
fn sent(bus: &MemoryBus, case_id: &str) -> Vec<Arc<Record>> {
    Topic::flow()
        .into_iter()
        .flat_map(|topic| bus.all_records(topic))
        .map(|(_, record)| record)
        .filter(|record| record.key == case_id)
        .collect()
}

/// Asserts that each message of [`ONCE_PER_COLLABORATING_CASE`] is on the bus under one id
/// for the case.
fn assert_once(bus: &MemoryBus, case_id: &str) {
    let records = sent(bus, case_id);
    let sent = records.iter().map(|r| sent_record(r));
    assert_one_message_per_cause(&[case_id.to_owned()], &ONCE_PER_COLLABORATING_CASE, sent);
}

/// How many records of type `kind` the case has on the bus (repeats of one id included).
fn count_of(bus: &MemoryBus, case_id: &str, kind: &str) -> usize {
    sent(bus, case_id)
        .iter()
        .filter(|r| r.header("type") == Some(kind))
        .count()
}

/// Staff of [`DECIDES`] approve the case; it completes, approved.
async fn approve_and_complete(app: &TestApp, case_id: &str) {
    app.decide_ok(DECIDES, case_id, "approve").await;
    let case = app.wait_until_completed(case_id).await;
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
}

/// Asserts that the inbox of `department` lists the case now, without waiting: a restarted
/// service is ready only once it has rebuilt its state.
async fn assert_in_inbox(app: &TestApp, department: &str, case_id: &str) {
    let inbox = app
        .get_json(&format!("/api/v1/departments/{department}/inbox"))
        .await;
    assert!(
        inbox_lists_case(&inbox, case_id),
        "after the restart the inbox of {department} should list case {case_id}: {inbox}"
    );
}

#[actix_web::test]
async fn a_case_waiting_for_a_decision_survives_a_restart() {
    // Arrange: the case waits in the manual department's inbox.
    let app = spawn_durable_app(|_| {}).await;
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    app.wait_for_inbox_case(DECIDES, &case_id).await;

    let before = app.get_case(&case_id).await;

    // Act
    let app = app.restart().await;

    // Assert: the new service knows the case as the old one did, and deciding it completes
    // it once.
    assert_in_inbox(&app, DECIDES, &case_id).await;
    let after = app.get_case(&case_id).await;
    assert_eq!(
        after, before,
        "the applicant's view should survive the restart"
    );
    approve_and_complete(&app, &case_id).await;
    assert_once(app.memory_bus(), &case_id);
}

#[actix_web::test]
async fn a_case_in_the_middle_of_collaboration_completes_after_a_restart() {
    // Arrange: street_office verifies by hand, so the case waits for its collaboration event.
    let app = spawn_durable_app(|settings| make_manual(settings, "street_office")).await;
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    let event = app.wait_for_collaboration("street_office", &case_id).await;
    let event_id = event["event_id"].as_str().expect("an event id").to_owned();

    // Act
    let app = app.restart().await;

    // Assert: the event still waits at street_office; answering it brings the case to the
    // deciding department, and deciding completes it once.
    let waiting = app.wait_for_collaboration("street_office", &case_id).await;
    assert_eq!(waiting["event_id"], event_id.as_str(), "{waiting}");
    let answer = app
        .post_json(
            &format!("/api/v1/collaborations/{event_id}/result"),
            &json!({ "outcome": "agree" }),
        )
        .await;
    assert_status(answer, 200).await;
    app.wait_for_inbox_case(DECIDES, &case_id).await;
    approve_and_complete(&app, &case_id).await;
    assert_once(app.memory_bus(), &case_id);
}

#[actix_web::test]
async fn records_delivered_again_after_a_restart_have_no_second_effect() {
    // Arrange: a case waits for the decision.
    let app = spawn_durable_app(|_| {}).await;
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    app.wait_for_inbox_case(DECIDES, &case_id).await;
    let settings = app.systems.settings.clone();
    let flow_group = app
        .systems
        .flow_group
        .clone()
        .expect("centres and departments run");
    let before = std::cell::Cell::new(0);

    // Act: the service stops and its shared groups lose every commit (as if it had died before
    // committing), so the new service reads every topic from the start again — and each of
    // those deliveries comes twice.
    let app = app
        .restart_after(|bus| {
            before.set(sent(bus, &case_id).len());
            bus.forget_commits(&flow_group);
            bus.duplicate_next_deliveries(10_000);
        })
        .await;

    // Assert: the replay happened (the centres took every answer of the case again) and had
    // no effect: the systems that closed the case dropped its records, the others re-sent
    // nothing new …
    let (bus, before) = (app.memory_bus(), before.get());
    let partition = govfusion::bus::partition_for(&case_id, settings.bus.partitions);
    let group = &flow_group;
    let end = bus.records(Topic::CollaborationResults, partition).len() as u64;
    poll("the replayed answers to be taken again", || {
        let committed = bus.committed_offset(group, Topic::CollaborationResults, partition);
        async move {
            match committed {
                c if c >= end => Ok(()),
                c => Err(format!("committed {c} of {end}")),
            }
        }
    })
    .await;
    assert_eq!(sent(bus, &case_id).len(), before, "nothing re-sent");
    // … yet the case still waits once, completes once, and every cause has one effect.
    assert_in_inbox(&app, DECIDES, &case_id).await;
    approve_and_complete(&app, &case_id).await;
    assert_once(bus, &case_id);
}

#[actix_web::test]
async fn a_snapshot_lost_after_its_effects_were_sent_is_made_good_by_the_redelivery() {
    // Arrange: the deciding department's snapshots do not reach the bus, so when it takes the
    // application its acceptance and collaboration request are on the bus but the state topic
    // does not know the case, and the application is not committed.
    let app = spawn_durable_app(|_| {}).await;
    let bus = app.memory_bus().clone();
    bus.refuse_snapshots_of(&format!("department/{DECIDES}"));
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    poll("the acceptance on the bus and its snapshot refused", || {
        let accepted = count_of(&bus, &case_id, "application.accepted");
        let refused = bus.snapshots_refused();
        async move {
            match (accepted, refused) {
                (1.., 1..) => Ok(()),
                _ => Err(format!(
                    "{accepted} acceptances, {refused} snapshots refused"
                )),
            }
        }
    })
    .await;

    // Act: the service stops (as the process would die) and a new one starts; the bus takes
    // snapshots again.
    let accepted_before = std::cell::Cell::new(0);
    let app = app
        .restart_after(|bus| {
            accepted_before.set(count_of(bus, &case_id, "application.accepted"));
            bus.accept_snapshots();
        })
        .await;
    let accepted_before = accepted_before.get();

    // Assert: the application came again and the department sent its acceptance again, under
    // the same id; the case waits for the decision and completes once.
    app.wait_for_inbox_case(DECIDES, &case_id).await;
    let accepted_after = count_of(&bus, &case_id, "application.accepted");
    assert!(
        accepted_after > accepted_before,
        "the redelivered application should have sent the acceptance again \
         ({accepted_before} before the restart, {accepted_after} after)"
    );
    approve_and_complete(&app, &case_id).await;
    assert_once(&bus, &case_id);
}

#[actix_web::test]
async fn a_submission_that_never_reached_the_bus_fails_with_the_reason_after_a_restart() {
    // Arrange: the intake system's snapshots do not reach the bus, so a submission is
    // answered `"durable": false` after the submit timeout and its case waits to be sent.
    let app = spawn_durable_app(|s| s.service.submit_timeout_ms = 200).await;
    let bus = app.memory_bus().clone();
    bus.refuse_snapshots_of("intake");
    let response = app
        .submit(crate::common::app::TERMINAL, &app.application_body(MATTER))
        .await;
    let answer = assert_status(response, 202).await;
    assert_eq!(answer["durable"], json!(false), "{answer}");
    let lost = answer["case_id"].as_str().expect("a case id").to_owned();

    // Act: the service stops before the bus took the submission (as the process would die),
    // and a new one starts over the same bus and case repository.
    let app = app.restart().await;

    // Assert: the case the city will never get says so, instead of staying `submitted`.
    let failed = || async {
        let case = app.get_case(&lost).await;
        match case["status"].as_str() {
            Some("failed") => Ok(case),
            _ => Err(case.to_string()),
        }
    };
    let case = poll("the lost case to fail", failed).await;
    let failure = case["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("did not reach the city") && failure.contains("Submit it again"),
        "{case}"
    );

    // Assert: once the bus takes snapshots again, the next submission goes through, and the
    // failed case stays failed.
    bus.accept_snapshots();
    let next = app.submit_ok(&app.application_body(MATTER)).await;
    app.wait_for_inbox_case(DECIDES, &next).await;
    assert_eq!(app.get_case(&lost).await["status"], json!("failed"));
}
