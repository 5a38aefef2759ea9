//! The supervision system over a restart on a durable in-memory bus: it resumes from the case
//! repository instead of reading the flow topics again, gives the same figures, raises each
//! warning once whether the deadline passed before or during the restart, and keeps in memory
//! only the cases whose supervision is open.
//!
//! December 2026 has no holidays: Tue 1, Wed 2, Thu 3, Fri 4, (Sat 5, Sun 6), Mon 7.

use crate::helpers::{
    assert_status, at, make_manual, poll, warnings, TestApp, TestClock, TERMINAL,
};
use crate::supervision::{case_in_inbox, permit_waiting, rate, MANUAL, MARKET, SIMPLE};
use govfusion::actors::supervisor::{Holding, Watched};
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::Topic;
use govfusion::settings::{BusKind, Settings};
use serde_json::{json, Value};
use std::sync::Arc;

/// A matter `urban_management` decides by hand, after street_office verified the site.
const OUTDOOR: &str = "outdoor_advertising";

/// Starts the service on a new durable in-memory bus and a [`TestClock`] showing `start`,
/// deadlines checked every 20 ms, the default configuration changed by `tweak`.
async fn spawn_durable_at(
    start: &str,
    tweak: impl FnOnce(&mut Settings),
) -> (TestApp, Arc<TestClock>) {
    let clock = TestClock::showing(start);
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    settings.supervision.check_interval_ms = 20;
    tweak(&mut settings);
    let bus = MemoryBus::durable(&settings.bus);
    let app = TestApp::start_on(settings, clock.clone(), bus, crate::POLL_FOR).await;
    (app, clock)
}

/// How many `supervision.warning` records of the case are on the bus (repeats of one id
/// included): what departments were told.
fn warnings_sent(app: &TestApp, case_id: &str) -> usize {
    Topic::flow()
        .into_iter()
        .flat_map(|topic| app.memory_bus().all_records(topic))
        .filter(|(_, record)| record.key == case_id)
        .filter(|(_, record)| record.header("type") == Some("supervision.warning"))
        .count()
}

/// Waits until supervision has checked the deadlines at the time `clock` shows now and the
/// warnings of that check are on the bus: a check reads the clock once, and the next one
/// starts only after its warnings are published (see `TestApp::wait_for_supervision_check`,
/// whose wait for the intake system's group does not apply to a group that resumed).
async fn wait_for_check(clock: &TestClock) {
    poll(
        "supervision to check the deadlines at the new time",
        || async {
            match clock.reads() {
                reads if reads >= 3 => Ok(()),
                reads => Err(format!("the clock was read {reads} times since it was set")),
            }
        },
    )
    .await;
}

/// The department and centre figures over every period, as a supervisor reads them.
pub(crate) async fn figures(app: &TestApp) -> (Value, Value) {
    let departments = app.get_json("/api/v1/supervision/departments").await;
    let centres = app.get_json("/api/v1/supervision/centers").await;
    (departments, centres)
}

/// The figures of `department` among every department's.
pub(crate) fn of<'a>(departments: &'a Value, department: &str) -> &'a Value {
    departments
        .as_array()
        .and_then(|all| all.iter().find(|d| d["department"] == department))
        .unwrap_or_else(|| panic!("no figures of {department}: {departments}"))
}

/// What the supervision system holds in memory.
pub(crate) async fn holding(app: &TestApp) -> Watched {
    app.systems
        .desks
        .supervision
        .holding
        .send(Holding)
        .await
        .expect("the supervision system answers")
}

/// Two registrations approved at once and an outdoor advertising case waiting for
/// urban_management's decision; returns their ids once the first two completed and supervision
/// holds only the third, with its one event.
pub(crate) async fn two_completed_and_one_open(app: &TestApp) -> ([String; 2], String) {
    let done = [
        app.submit_ok(&app.application_body(SIMPLE)).await,
        app.submit_ok(&app.application_body(SIMPLE)).await,
    ];
    let open = case_in_inbox(app, OUTDOOR, MANUAL).await;
    for case_id in &done {
        app.wait_until_completed(case_id).await;
    }
    let held = wait_until_holding(app, 1).await;
    assert_eq!(held.events, 1, "{held:?}");
    (done, open)
}

/// Waits until the supervision system holds `cases` cases in memory, none of them over.
pub(crate) async fn wait_until_holding(app: &TestApp, cases: usize) -> Watched {
    poll("the supervision system to hold only open cases", || async {
        match holding(app).await {
            held if held.cases == cases && held.over == 0 => Ok(held),
            held => Err(format!("holding {held:?}")),
        }
    })
    .await
}

#[actix_web::test]
async fn after_a_restart_supervision_reads_no_flow_record_and_gives_the_same_figures() {
    // Arrange: Tuesday 1 December, 10:00. Two registrations approved at once, a permit whose
    // urban_management event is answered, one case rated.
    let (app, _clock) = spawn_durable_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let first = app.submit_ok(&app.application_body(SIMPLE)).await;
    let second = app.submit_ok(&app.application_body(SIMPLE)).await;
    let (permit, event_id) = permit_waiting(&app).await;
    let answered = app
        .post_json(
            &format!("/api/v1/collaborations/{event_id}/result"),
            &json!({ "outcome": "agree" }),
        )
        .await;
    assert_status(answered, 200).await;
    for case_id in [&first, &second, &permit] {
        app.wait_until_completed(case_id).await;
    }
    let rated = rate(&app, TERMINAL, &first, &json!({ "score": 4 })).await;
    assert_status(rated, 201).await;
    let before = poll("supervision to count every case and the rating", || async {
        let (departments, centres) = figures(&app).await;
        let market = of(&departments, MARKET);
        match (&market["cases"]["completed"], &market["ratings"]["count"]) {
            (completed, count) if completed == 2 && count == 1 => Ok((departments, centres)),
            _ => Err(format!("market: {market}")),
        }
    })
    .await;
    assert_eq!(of(&before.0, MANUAL)["collaborations"]["completed"], 1);

    // Act
    let app = app.restart().await;

    // Assert: nothing read again, the same figures; a rating of a case that left memory
    // still counts.
    let rebuilt = app.systems.rebuilt().expect("start-up has finished");
    assert_eq!(rebuilt.supervision_view_records, 0, "{rebuilt:?}");
    assert_eq!(figures(&app).await, before);
    let rated = rate(&app, TERMINAL, &second, &json!({ "score": 2 })).await;
    assert_status(rated, 201).await;
    poll(
        "supervision to count the rating after the restart",
        || async {
            let (departments, _) = figures(&app).await;
            let ratings = &of(&departments, MARKET)["ratings"];
            match (&ratings["count"], &ratings["average"]) {
                (count, average) if count == 2 && average == 3.0 => Ok(()),
                _ => Err(format!("market's ratings: {ratings}")),
            }
        },
    )
    .await;
}

#[actix_web::test]
async fn a_red_warning_raised_before_a_restart_is_not_raised_again_after_it() {
    // Arrange: accepted Tuesday 1 December, 09:00, due by the end of Friday 4; on Saturday
    // 5 it is overdue and gets its red warning.
    let (app, clock) =
        spawn_durable_at("2026-12-01T09:00:00+08:00", |s| make_manual(s, MARKET)).await;
    let case_id = case_in_inbox(&app, SIMPLE, MARKET).await;
    app.wait_for_status(&case_id, "accepted").await;
    clock.set(at("2026-12-05T00:00:00+08:00"));
    app.wait_for_case(&case_id, "a red warning", |c| {
        !warnings(c, None, "red").is_empty()
    })
    .await;
    app.wait_for_supervision_check(&clock).await;

    // Act
    let app = app.restart().await;

    // Assert: checks after the restart, that day and a later one, raise nothing more.
    clock.set(at("2026-12-05T00:00:00+08:00"));
    wait_for_check(&clock).await;
    clock.set(at("2026-12-07T10:00:00+08:00"));
    wait_for_check(&clock).await;
    assert_eq!(warnings_sent(&app, &case_id), 1);
    let case = app.get_case(&case_id).await;
    assert_eq!(warnings(&case, None, "red").len(), 1, "{case}");
}

#[actix_web::test]
async fn a_case_overdue_during_a_restart_gets_its_red_warning_once_after_it() {
    // Arrange: accepted Tuesday 1 December, 09:00, due by the end of Friday 4.
    let (app, clock) =
        spawn_durable_at("2026-12-01T09:00:00+08:00", |s| make_manual(s, MARKET)).await;
    let case_id = case_in_inbox(&app, SIMPLE, MARKET).await;
    app.wait_for_status(&case_id, "accepted").await;
    app.wait_for_supervision_check(&clock).await;

    // Act: the service is down when the deadline passes.
    let app = app
        .restart_after(|_| clock.set(at("2026-12-05T00:00:00+08:00")))
        .await;

    // Assert: the red warning comes, once, and later checks raise nothing more.
    let case = app
        .wait_for_case(&case_id, "a red warning", |c| {
            !warnings(c, None, "red").is_empty()
        })
        .await;
    assert!(warnings(&case, None, "yellow").is_empty(), "{case}");
    clock.set(at("2026-12-07T10:00:00+08:00"));
    wait_for_check(&clock).await;
    assert_eq!(warnings_sent(&app, &case_id), 1);
}

#[actix_web::test]
async fn supervision_holds_in_memory_only_the_cases_whose_supervision_is_open() {
    // Arrange: two registrations approved at once; an outdoor advertising case waits for
    // urban_management's decision (the helper checks that supervision holds only that one).
    let (app, _clock) = spawn_durable_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (_, open) = two_completed_and_one_open(&app).await;

    // Act
    let app = app.restart().await;

    // Assert: after the restart too, only the open case is held, with its one event; once
    // decided, nothing.
    assert_eq!(
        holding(&app).await,
        Watched {
            cases: 1,
            events: 1,
            over: 0
        }
    );
    app.decide_ok(MANUAL, &open, "approve").await;
    app.wait_until_completed(&open).await;
    wait_until_holding(&app, 0).await;
}
