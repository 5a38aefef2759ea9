//! The intake system over its case repository: a restart reads only what was published while
//! it was down, and closed cases leave memory yet stay shown, rated, listed and recognised.

use crate::common::records;
use crate::helpers::{
    assert_each_step_once, assert_status, json_body, poll, spawn_app_with, TestApp,
};
use govfusion::actors::intake::Held;
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::Bus;
use govfusion::clock::SystemClock;
use govfusion::domain::CaseId;
use govfusion::settings::{BusKind, Settings};
use serde_json::json;
use std::sync::Arc;

/// A matter an automatic department decides without staff.
const AUTOMATIC: &str = "individual_business_registration";
/// The terminal the test applications come from.
const TERMINAL: &str = "pc-web";

/// Starts the service on a new durable in-memory bus, with `tweak` applied to its settings.
async fn spawn_durable_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    tweak(&mut settings);
    let bus = MemoryBus::durable(&settings.bus);
    TestApp::start_on(settings, Arc::new(SystemClock), bus, crate::POLL_FOR).await
}

/// Records the intake system's view group read at the last start.
fn intake_view_records(app: &TestApp) -> u64 {
    app.systems
        .rebuilt()
        .expect("the service has started")
        .intake_view_records
}

#[actix_web::test]
async fn a_restarted_intake_system_reads_only_what_was_published_while_it_was_down() {
    // Arrange: a case completes, and the service is restarted once.
    let app = spawn_durable_app(|_| {}).await;
    let case_id = app.submit_ok(&app.application_body(AUTOMATIC)).await;
    let before = app.wait_until_completed(&case_id).await;
    assert!(
        intake_view_records(&app) == 0,
        "a first start has nothing to read"
    );

    // Act: restarted with nothing new, then again after a record landed while it was down.
    let app = app.restart().await;
    let quiet_restart = intake_view_records(&app);
    let shown = app.get_case(&case_id).await;
    let stranger = CaseId::generate();
    let app = app
        .restart_after(|bus| {
            let record = records::published_to_market(&stranger, &json!({ "note": "late" }));
            futures::executor::block_on(bus.publish(vec![Arc::new(record)]))
                .expect("the memory bus takes the record");
        })
        .await;

    // Assert: nothing read again, then exactly the one new record; the case as it was.
    assert_eq!(quiet_restart, 0, "no flow record is read again");
    assert_eq!(
        intake_view_records(&app),
        1,
        "only the record published meanwhile"
    );
    assert_eq!(shown["status"], "completed", "{shown}");
    assert_eq!(shown["history"], before["history"], "{shown}");
    assert_eq!(app.get_case(&case_id).await["history"], before["history"]);
}

#[actix_web::test]
async fn an_open_case_is_taken_back_at_restart_and_completes() {
    // Arrange: a case waits for staff of a manual department when the service stops.
    let app = spawn_durable_app(|_| {}).await;
    let case_id = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    app.wait_for_inbox_case("urban_management", &case_id).await;

    // Act
    let app = app.restart().await;
    let taken_back = app.intake_holding().await;
    app.decide_ok("urban_management", &case_id, "approve").await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert: the case was in memory at once, and its history holds each step once.
    assert_eq!(taken_back.cases, 1, "{taken_back:?}");
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    assert_each_step_once(&case);
}

#[actix_web::test]
async fn a_closed_case_leaves_memory_and_is_still_shown_rated_and_listed() {
    // Arrange: no closed case stays in memory but the last one.
    let app = spawn_app_with(|settings| settings.store.closed_cases_in_memory = 0).await;
    let first = app.submit_ok(&app.application_body(AUTOMATIC)).await;
    let completed = app.wait_until_completed(&first).await;
    let second = app.submit_ok(&app.application_body(AUTOMATIC)).await;
    app.wait_until_completed(&second).await;
    let holding = app.intake_holding().await;

    // Act: the first case, out of memory, is read, rated and listed.
    let shown = app.get_case(&first).await;
    let path = format!("/api/v1/terminals/{TERMINAL}/cases/{first}/rating");
    let rated = app.post_json(&path, &json!({ "score": 4 })).await;
    let rated = assert_status(rated, 201).await;
    let again = app.post_json(&path, &json!({ "score": 1 })).await;
    let case = app
        .wait_for_case(&first, "the rating in the history", |c| {
            c["history"]
                .as_array()
                .is_some_and(|h| h.iter().any(|e| e["step"] == "case.rated"))
        })
        .await;
    let mine = app
        .get_as(
            &crate::common::callers::Caller::applicant(),
            "/api/v1/applicants/me/cases",
        )
        .await;

    // Assert
    assert_eq!(
        holding.cases, 1,
        "only the last closed case stays: {holding:?}"
    );
    assert_eq!(holding.feed, 1, "{holding:?}");
    assert_eq!(shown["status"], "completed", "{shown}");
    assert_eq!(shown["history"], completed["history"], "{shown}");
    assert_eq!(rated["score"], 4, "{rated}");
    assert_eq!(json_body(again).await["error"], "invalid_transition");
    assert_eq!(case["rating"]["score"], 4, "{case}");
    let listed: Vec<String> = json_body(mine).await["cases"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["case_id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        listed.contains(&first) && listed.contains(&second),
        "{listed:?}"
    );
}

#[actix_web::test]
async fn a_rated_case_leaving_memory_takes_the_record_of_its_rating_with_it() {
    // Arrange: no closed case stays in memory but the last one; the first case is rated.
    let app = spawn_app_with(|settings| settings.store.closed_cases_in_memory = 0).await;
    let first = app.submit_ok(&app.application_body(AUTOMATIC)).await;
    app.wait_until_completed(&first).await;
    let path = format!("/api/v1/terminals/{TERMINAL}/cases/{first}/rating");
    assert_status(app.post_json(&path, &json!({ "score": 5 })).await, 201).await;
    let rated = app.intake_holding().await;

    // Act: a second case completes, and the first leaves memory.
    let second = app.submit_ok(&app.application_body(AUTOMATIC)).await;
    app.wait_until_completed(&second).await;
    let later = app.intake_holding().await;
    let again = app.post_json(&path, &json!({ "score": 5 })).await;

    // Assert: the rating's record left with the case; the same rating again is checked
    // against the case read back — rated already — as after a restart.
    assert_eq!((rated.cases, rated.acts), (1, 1), "{rated:?}");
    assert_eq!((later.cases, later.acts), (1, 0), "{later:?}");
    assert_eq!(json_body(again).await["error"], "invalid_transition");
}

#[actix_web::test]
async fn a_stalled_case_taken_back_at_restart_is_re_driven_with_its_current_step() {
    // Arrange: the market department's group loses the case's application, and the service
    // restarts while the case waits for it.
    let app = spawn_durable_app(|_| {}).await;
    let case_id = app.submit_lost_by_market().await;
    let app = app.restart().await;

    // Act: the operator re-drives the case, which the restarted intake took back from its
    // repository without reading the flow topics again.
    let redriven = app
        .post_json(
            &format!("/api/v1/operations/cases/{case_id}/redrive"),
            &json!({}),
        )
        .await;
    let redriven = assert_status(redriven, 200).await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert: its current step (the publication) was sent again, and the case completed.
    assert_eq!(intake_view_records(&app), 0, "nothing read again");
    assert_eq!(redriven["resent"], 1, "{redriven}");
    assert_eq!(
        redriven["messages"][0]["type"], "application.published",
        "{redriven}"
    );
    assert_eq!(case["status"], "completed", "{case}");
}

#[actix_web::test]
async fn open_cases_waiting_for_staff_leave_memory_and_complete_once_decided() {
    // Arrange: one open case stays in memory; two cases wait for urban_management's staff.
    let app = spawn_app_with(|settings| settings.store.open_cases_in_memory = 1).await;
    let (cases, waiting) = two_cases_waiting_one_out_of_memory(&app).await;

    // Act: the staff approve both, each read back when its approval comes.
    let mut completed = Vec::new();
    for case_id in &cases {
        app.decide_ok("urban_management", case_id, "approve").await;
        completed.push(app.wait_until_completed(case_id).await);
    }
    let after = app.intake_holding().await;

    // Assert: both completed, each step once in their history, and no open case is away.
    assert_eq!((waiting.cases, waiting.away), (1, 1), "{waiting:?}");
    for case in &completed {
        assert_eq!(
            case["approval"]["outcome"]["decision"], "approved",
            "{case}"
        );
        assert_each_step_once(case);
    }
    assert_eq!(after.away, 0, "{after:?}");
}

#[actix_web::test]
async fn cases_out_of_memory_across_a_restart_complete_and_replace_their_snapshots_with_closed_markers(
) {
    // Arrange: a bus that outlives the process (the intake writes snapshots), one open case
    // kept in memory, and two cases waiting for urban_management's staff: one leaves memory.
    let app = spawn_durable_app(|settings| settings.store.open_cases_in_memory = 1).await;
    let (cases, _) = two_cases_waiting_one_out_of_memory(&app).await;

    // Act: the service restarts, and takes both back from the repository; both are approved
    // and complete.
    let app = app.restart().await;
    let taken_back = app.intake_holding().await;
    for case_id in &cases {
        app.decide_ok("urban_management", case_id, "approve").await;
        app.wait_until_completed(case_id).await;
    }

    // Assert: one of the two cases taken back stayed in memory; each case's last intake
    // snapshot is its closed marker, at the feed position its first snapshot took, so that a
    // later start does not feed it again.
    assert_eq!(
        (taken_back.cases, taken_back.away),
        (1, 1),
        "{taken_back:?}"
    );
    for case_id in &cases {
        let snapshots = poll("the closed marker on the state topic", || async {
            let snapshots = intake_snapshots(&app, case_id);
            match snapshots.last() {
                Some(last) if last["state"].get("closed_at").is_some() => Ok(snapshots),
                _ => Err(format!("{snapshots:?}")),
            }
        })
        .await;
        let (first, last) = (&snapshots[0], &snapshots[snapshots.len() - 1]);
        assert_eq!(first["state"]["sequence"], last["state"]["sequence"]);
        assert_eq!(last["version"], first["version"].as_u64().unwrap() + 1);
    }
}

/// The snapshots the intake system wrote of `case_id` (their `data`), in order.
fn intake_snapshots(app: &TestApp, case_id: &str) -> Vec<serde_json::Value> {
    let records = app.memory_bus().all_records(govfusion::bus::Topic::State);
    records
        .iter()
        .filter(|(_, record)| record.key == format!("intake|{case_id}"))
        .filter_map(|(_, record)| serde_json::from_slice::<serde_json::Value>(&record.payload).ok())
        .map(|envelope| envelope["data"].clone())
        .collect()
}

/// Submits two cases for urban_management's staff, waits until both are in its inbox and the
/// intake system (keeping one open case in memory) has let one go; the cases and what the
/// intake system then held.
async fn two_cases_waiting_one_out_of_memory(app: &TestApp) -> (Vec<String>, Held) {
    let mut cases = Vec::new();
    for _ in 0..2 {
        let case_id = app
            .submit_ok(&app.application_body("outdoor_advertising"))
            .await;
        app.wait_for_inbox_case("urban_management", &case_id).await;
        cases.push(case_id);
    }
    let held = poll("one case out of memory", || async {
        match app.intake_holding().await {
            holding if holding.away == 1 => Ok(holding),
            holding => Err(format!("{holding:?}")),
        }
    })
    .await;
    (cases, held)
}
