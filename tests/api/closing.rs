//! Bounded working state: a case finished at a department or a governance centre is closed
//! there — nothing of it stays in memory but a closed record — and a late repeat of one of its
//! messages is still dropped, before and after a restart.

use crate::helpers::{assert_refused, assert_status, poll, TestApp};
use chrono::{Duration, Utc};
use govfusion::actors::{GetHolding, Holding};
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::{Bus, Record, Topic};
use govfusion::clock::{ManualClock, SystemClock};
use govfusion::settings::BusKind;
use serde_json::json;
use std::sync::Arc;

/// A matter that takes the case through every tier: market decides after fire (district) and
/// street_office (street) answered, all automatically.
const MATTER: &str = "restaurant_opening";
/// Cases each test completes.
const CASES: usize = 4;

/// Starts the service on a new durable in-memory bus, so that systems write snapshots, and
/// keep them in the store (`store.keep_state`).
async fn spawn_durable_app() -> TestApp {
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    settings.store.keep_state = true;
    let bus = MemoryBus::durable(&settings.bus);
    TestApp::start_on(settings, Arc::new(SystemClock), bus, crate::POLL_FOR).await
}

/// A city on a durable memory bus whose clock the test moves, with the flow topics' retention.
async fn spawn_app_on_a_manual_clock() -> (TestApp, Arc<ManualClock>, Duration) {
    let clock = ManualClock::new(Utc::now());
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    let retention = Duration::hours(i64::try_from(settings.bus.flow_retention_hours).unwrap());
    let bus = MemoryBus::durable(&settings.bus);
    let app = TestApp::start_on(settings, clock.clone(), bus, crate::POLL_FOR).await;
    (app, clock, retention)
}

/// Submits [`CASES`] applications and waits until each is completed; their ids.
async fn complete_cases(app: &TestApp) -> Vec<String> {
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let case_id = app.submit_ok(&app.application_body(MATTER)).await;
        app.wait_until_completed(&case_id).await;
        cases.push(case_id);
    }
    cases
}

/// What every department and centre of the process holds, added up.
async fn held(app: &TestApp) -> Holding {
    let desks = &app.systems.desks;
    let departments = desks.departments.values().map(|d| d.holding.clone());
    let centres = desks.centres.values().map(|c| c.holding.clone());
    let mut total = Holding {
        open_cases: 0,
        handled_ids: 0,
        snapshot_versions: 0,
        closed_cases: 0,
        acts: 0,
    };
    for desk in departments.chain(centres) {
        let one = desk.send(GetHolding).await.expect("the system runs");
        total.open_cases += one.open_cases;
        total.handled_ids += one.handled_ids;
        total.snapshot_versions += one.snapshot_versions;
        total.closed_cases += one.closed_cases;
        total.acts += one.acts;
    }
    total
}

/// Snapshot versions kept whatever the cases: the city's, of its intake feed position.
const FEED_POSITION: usize = 1;

/// Waits until no department or centre holds open work, ids or versions of cases; what they
/// hold then.
async fn wait_until_nothing_open(app: &TestApp) -> Holding {
    poll("every system to close the finished cases", || async {
        let holding = held(app).await;
        match holding {
            Holding {
                open_cases: 0,
                handled_ids: 0,
                snapshot_versions: FEED_POSITION,
                ..
            } => Ok(()),
            other => Err(format!("still held: {other:?}")),
        }
    })
    .await;
    held(app).await
}

/// The systems a [`MATTER`] case is closed at: market, fire and street_office, and the city,
/// district and street centres.
const SYSTEMS_PER_CASE: usize = 6;

/// The `application.published` record of `case_id` on the bus.
fn published_record(bus: &MemoryBus, case_id: &str) -> (u32, Arc<Record>) {
    bus.all_records(Topic::Applications)
        .into_iter()
        .find(|(_, r)| r.key == case_id && r.header("type") == Some("application.published"))
        .expect("the case was published")
}

/// How many records of type `kind` the case has on the bus.
fn count_of(bus: &MemoryBus, case_id: &str, topic: Topic, kind: &str) -> usize {
    bus.all_records(topic)
        .into_iter()
        .filter(|(_, r)| r.key == case_id && r.header("type") == Some(kind))
        .count()
}

/// Publishes the case's `application.published` again, as a duplicate publish or an operator's
/// re-drive would, and waits until the market department has taken it off its partition.
async fn publish_again_and_wait_taken(app: &TestApp, case_id: &str) {
    let bus = app.memory_bus();
    let (partition, record) = published_record(bus, case_id);
    let end = bus.records(Topic::Applications, partition).len() as u64;
    bus.publish(vec![record]).await.expect("the bus takes it");
    let group = app.systems.flow_group.clone().expect("departments run");
    poll("the market department to take the repeat", || {
        let committed = bus.committed_offset(&group, Topic::Applications, partition);
        async move {
            match committed {
                c if c > end => Ok(()),
                c => Err(format!("committed {c}, repeat at {end}")),
            }
        }
    })
    .await;
}

/// Asserts that the case was accepted once: one `application.accepted` on the bus.
fn assert_accepted_once(bus: &MemoryBus, case_id: &str) {
    let accepted = count_of(bus, case_id, Topic::Acceptances, "application.accepted");
    assert_eq!(accepted, 1, "case {case_id} should be accepted once");
}

#[actix_web::test]
async fn finished_cases_leave_nothing_open_at_departments_and_centres() {
    // Arrange
    let app = spawn_durable_app().await;

    // Act
    complete_cases(&app).await;

    // Assert: no state, handled id or snapshot version is left; each system keeps one closed
    // record per case it worked on.
    let holding = wait_until_nothing_open(&app).await;
    assert_eq!(
        holding.closed_cases,
        CASES * SYSTEMS_PER_CASE,
        "{holding:?}"
    );
}

#[actix_web::test]
async fn a_repeated_application_of_a_finished_case_is_dropped() {
    // Arrange
    let app = spawn_durable_app().await;
    let cases = complete_cases(&app).await;
    wait_until_nothing_open(&app).await;

    // Act
    publish_again_and_wait_taken(&app, &cases[0]).await;

    // Assert: no second acceptance, and nothing opened again.
    assert_accepted_once(app.memory_bus(), &cases[0]);
    let holding = held(&app).await;
    assert_eq!(
        (holding.open_cases, holding.handled_ids),
        (0, 0),
        "{holding:?}"
    );
}

#[actix_web::test]
async fn after_a_restart_closed_cases_hold_nothing_and_late_repeats_are_still_dropped() {
    // Arrange
    let app = spawn_durable_app().await;
    let cases = complete_cases(&app).await;
    wait_until_nothing_open(&app).await;

    // Act
    let app = app.restart().await;
    let restored = held(&app).await;
    let rebuilt = app.systems.rebuilt().expect("start-up is over");
    publish_again_and_wait_taken(&app, &cases[1]).await;

    // Assert: the restarted systems took back nothing of the closed cases — no state, no
    // closed record — and read nothing of the state topic: the store had it all …
    let nothing = Holding {
        open_cases: 0,
        handled_ids: 0,
        snapshot_versions: FEED_POSITION,
        closed_cases: 0,
        acts: 0,
    };
    assert_eq!(restored, nothing);
    assert_eq!(rebuilt.state_records, 0, "{rebuilt:?}");
    // … all it took back from the store was the city centre's feed cursor and the intake
    // system's last feed position …
    assert_eq!(rebuilt.state_taken_back, 2, "{rebuilt:?}");
    // … and the repeat was still dropped: the market department found the case's closed marker
    // in the store, and holds that one closed record now.
    assert_accepted_once(app.memory_bus(), &cases[1]);
    assert_eq!(
        held(&app).await,
        Holding {
            closed_cases: 1,
            ..nothing
        }
    );
}

#[actix_web::test]
async fn a_staff_decision_is_forgotten_with_its_case_once_the_retention_has_passed() {
    // Arrange: a case urban_management's staff approve, on a clock the test moves.
    let (app, clock, retention) = spawn_app_on_a_manual_clock().await;
    let case_id = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    app.wait_for_inbox_case("urban_management", &case_id).await;
    app.decide_ok("urban_management", &case_id, "approve").await;
    app.wait_until_completed(&case_id).await;
    let closed = wait_until_nothing_open(&app).await;

    // Act: the flow topics' retention passes.
    clock.advance(retention + Duration::minutes(1));
    let later = held(&app).await;

    // Assert: the decision was kept while the case could still be repeated to, and leaves
    // with the case's closed record.
    assert_eq!(closed.acts, 1, "{closed:?}");
    assert!(closed.closed_cases > 0, "{closed:?}");
    assert_eq!((later.acts, later.closed_cases), (0, 0), "{later:?}");
}

#[actix_web::test]
async fn an_answered_event_is_told_finished_until_its_case_is_forgotten_with_the_retention() {
    // Arrange: an event urban_management's staff answered, on a clock the test moves.
    let (app, clock, retention) = spawn_app_on_a_manual_clock().await;
    let (case_id, event_id) = app
        .event_waiting_at("urban_management", "construction_permit")
        .await;
    let answer = json!({ "outcome": "agree" });
    let response = app.event_action(&event_id, "result", &answer).await;
    assert_status(response, 200).await;
    app.wait_until_completed(&case_id).await;
    wait_until_nothing_open(&app).await;

    // Act: the answer sent again within the retention, and once it has passed.
    let within = app.event_action(&event_id, "result", &answer).await;
    let within_body = assert_status(within, 200).await;
    clock.advance(retention + Duration::minutes(1));
    held(&app).await;
    let after = app.event_action(&event_id, "result", &answer).await;

    // Assert: the repeat answers as the first did; afterwards the event is unknown, its case
    // and its finished events forgotten together.
    assert_eq!(within_body["event_id"], event_id.as_str(), "{within_body}");
    assert_refused(after, 404, "unknown_event").await;
}
