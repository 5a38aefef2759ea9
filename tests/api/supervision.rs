//! Supervision (监督评价考核) on a clock the test moves: yellow and red warnings on cases and
//! events, no warnings while a case's clock is stopped, the department and centre figures
//! after a scripted set of cases, and ratings (好差评).
//!
//! Every expected value — dates, working hours, rates — is worked out by hand in a comment,
//! never with the library's calendar. Working hours are 09:00–17:00 on working days; December
//! 2026 has no holidays: Tue 1, Wed 2, Thu 3, Fri 4, (Sat 5, Sun 6), Mon 7, Tue 8, Wed 9, ….

use crate::helpers::{
    assert_refused, assert_status, at, event_view, history_entries, make_manual, spawn_app_at,
    timestamp, warnings, TestApp, TERMINAL,
};
use serde_json::{json, Value};

/// Individual business registration at market: 3 working days, no collaboration.
pub(crate) const SIMPLE: &str = "individual_business_registration";
pub(crate) const MARKET: &str = "market";
/// Construction permit at housing (automatic, 15 working days): fire (automatic) and
/// urban_management (manual) collaborate, 5 working days each.
const PERMIT: &str = "construction_permit";
pub(crate) const MANUAL: &str = "urban_management";

/// Config: `market` decides by hand.
fn manual_market(settings: &mut govfusion::settings::Settings) {
    make_manual(settings, MARKET);
}

/// Submits `matter` and waits until the case waits in `department`'s inbox.
pub(crate) async fn case_in_inbox(app: &TestApp, matter: &str, department: &str) -> String {
    let case_id = app.submit_ok(&app.application_body(matter)).await;
    app.wait_for_inbox_case(department, &case_id).await;
    case_id
}

/// Submits a construction permit and waits until fire answered and urban_management has the
/// event; returns the case id and urban_management's event id.
pub(crate) async fn permit_waiting(app: &TestApp) -> (String, String) {
    let case_id = app.submit_ok(&app.application_body(PERMIT)).await;
    let event = app.wait_for_collaboration(MANUAL, &case_id).await;
    app.wait_for_event_status(&case_id, &format!("{case_id}-fire"), "answered")
        .await;
    (case_id, event["event_id"].as_str().unwrap().to_owned())
}

/// The applicant rates `case_id` from `terminal`.
pub(crate) async fn rate(
    app: &TestApp,
    terminal: &str,
    case_id: &str,
    body: &Value,
) -> reqwest::Response {
    app.post_json(
        &format!("/api/v1/terminals/{terminal}/cases/{case_id}/rating"),
        body,
    )
    .await
}

#[actix_web::test]
async fn a_case_gets_a_yellow_then_a_red_warning_once_each() {
    // Arrange: accepted Tuesday 1 December, 09:00; due by the end of Friday 4 December. Its
    // time is 4 working days × 8 hours = 32 working hours; yellow at 80 %: 25.6 hours.
    let (app, clock) = spawn_app_at("2026-12-01T09:00:00+08:00", manual_market).await;
    let case_id = case_in_inbox(&app, SIMPLE, MARKET).await;

    // Act & Assert: Thursday 17:00, 24 of 32 hours used (75 %): no warning.
    clock.set(at("2026-12-03T17:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(case["warnings"], json!([]), "{case}");

    // Friday 11:00, 26 of 32 hours (81.25 %): yellow.
    clock.set(at("2026-12-04T11:00:00+08:00"));
    let case = app
        .wait_for_case(&case_id, "a yellow warning", |c| {
            !warnings(c, None, "yellow").is_empty()
        })
        .await;
    let yellow = warnings(&case, None, "yellow")[0].clone();
    assert_eq!(yellow["department"], MARKET, "{yellow}");
    assert!(
        (yellow["share_used"].as_f64().unwrap() - 26.0 / 32.0).abs() < 1e-9,
        "{yellow}"
    );
    assert_eq!(
        timestamp(&yellow["due_by"]),
        at("2026-12-05T00:00:00+08:00"),
        "{yellow}"
    );
    assert_eq!(
        timestamp(&yellow["raised_at"]),
        at("2026-12-04T11:00:00+08:00"),
        "{yellow}"
    );

    // Friday 16:00, 31 of 32 hours: still the one yellow.
    clock.set(at("2026-12-04T16:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(warnings(&case, None, "yellow").len(), 1, "{case}");
    assert!(warnings(&case, None, "red").is_empty(), "{case}");

    // Saturday 00:00, the deadline itself: red.
    clock.set(at("2026-12-05T00:00:00+08:00"));
    let case = app
        .wait_for_case(&case_id, "a red warning", |c| {
            !warnings(c, None, "red").is_empty()
        })
        .await;
    let red = warnings(&case, None, "red")[0].clone();
    assert!(red["share_used"].as_f64().unwrap() >= 1.0, "{red}");

    // Later checks, and a later day, raise nothing more.
    app.wait_for_supervision_check(&clock).await;
    clock.set(at("2026-12-07T10:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(warnings(&case, None, "yellow").len(), 1, "{case}");
    assert_eq!(warnings(&case, None, "red").len(), 1, "{case}");
    assert_eq!(
        history_entries(&case, "supervision.warning").len(),
        2,
        "{case}"
    );
}

#[actix_web::test]
async fn an_event_gets_a_yellow_then_a_red_warning_once_each() {
    // Arrange: dispatched Tuesday 1 December, 10:00; due by the end of Tuesday 8 December.
    // Its time: Tue 7 h + Wed, Thu, Fri, Mon, Tue 8 h each = 47 working hours; yellow at
    // 37.6 hours.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = permit_waiting(&app).await;

    // Act & Assert: Monday 7 December 12:00, 7 + 8 + 8 + 8 + 3 = 34 hours (72 %): nothing.
    clock.set(at("2026-12-07T12:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(case["warnings"], json!([]), "{case}");

    // Monday 16:00, 38 hours (80.9 %): yellow, on the event.
    clock.set(at("2026-12-07T16:00:00+08:00"));
    let case = app
        .wait_for_case(&case_id, "a yellow warning on the event", |c| {
            !warnings(c, Some(&event_id), "yellow").is_empty()
        })
        .await;
    let yellow = warnings(&case, Some(&event_id), "yellow")[0].clone();
    assert_eq!(yellow["department"], MANUAL, "{yellow}");
    assert!(
        (yellow["share_used"].as_f64().unwrap() - 38.0 / 47.0).abs() < 1e-9,
        "{yellow}"
    );

    // Wednesday 9 December: red.
    clock.set(at("2026-12-09T09:00:00+08:00"));
    app.wait_for_case(&case_id, "a red warning on the event", |c| {
        !warnings(c, Some(&event_id), "red").is_empty()
    })
    .await;
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;

    // Once each; the case itself (due Tue 22 December) has none.
    assert_eq!(
        warnings(&case, Some(&event_id), "yellow").len(),
        1,
        "{case}"
    );
    assert_eq!(warnings(&case, Some(&event_id), "red").len(), 1, "{case}");
    assert!(warnings(&case, None, "yellow").is_empty(), "{case}");
    assert!(warnings(&case, None, "red").is_empty(), "{case}");
}

#[actix_web::test]
async fn a_suspended_or_decided_case_gets_no_warnings() {
    // Arrange: two cases accepted Tuesday 1 December, 09:00, due by the end of Friday 4.
    let (app, clock) = spawn_app_at("2026-12-01T09:00:00+08:00", manual_market).await;
    let suspended = case_in_inbox(&app, SIMPLE, MARKET).await;
    let decided = case_in_inbox(&app, SIMPLE, MARKET).await;
    app.decide_ok(MARKET, &decided, "approve").await;
    app.wait_until_completed(&decided).await;
    // Suspended on Wednesday 2 December, 10:00.
    clock.set(at("2026-12-02T10:00:00+08:00"));
    let response = app
        .post_json(
            &format!("/api/v1/departments/{MARKET}/cases/{suspended}/supplement-request"),
            &json!({ "materials": ["id_card"], "reason": "身份证复印件缺页" }),
        )
        .await;
    assert_status(response, 200).await;
    app.wait_for_status(&suspended, "suspended").await;
    app.wait_until_supervision_has_read(&suspended).await;
    app.wait_until_supervision_has_read(&decided).await;

    // Act: Monday 7 December, past the first due date.
    clock.set(at("2026-12-07T10:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;

    // Assert: no warnings; not counted overdue.
    let case = app.get_case(&suspended).await;
    assert_eq!(case["warnings"], json!([]), "suspended: {case}");
    let case = app.get_case(&decided).await;
    assert_eq!(case["warnings"], json!([]), "decided: {case}");
    let figures = app.get_json("/api/v1/supervision/departments").await;
    let market = figures
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["department"] == MARKET)
        .unwrap();
    assert_eq!(market["cases"]["open_overdue"], 0, "{market}");

    // Act: supplied on Monday; the working days Wed 2 < d <= Mon 7 are Thu 3, Fri 4, Mon 7,
    // so the case is now due by the end of Fri 4 + 3 = Wednesday 9 December.
    let response = app
        .post_json(
            &format!("/api/v1/terminals/{TERMINAL}/cases/{suspended}/supplements"),
            &json!({ "materials": ["id_card"] }),
        )
        .await;
    assert_status(response, 202).await;
    let resumed = app
        .wait_for_case(&suspended, "resumed", |c| c["status"] == "accepted")
        .await;
    assert_eq!(resumed["receipt"]["due_date"], "2026-12-09", "{resumed}");
    app.wait_until_supervision_has_read(&suspended).await;
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&suspended).await;
    assert_eq!(case["warnings"], json!([]), "resumed, not due: {case}");

    // Thursday 10 December: overdue, red (superseding the yellow it skipped).
    clock.set(at("2026-12-10T09:00:00+08:00"));
    let case = app
        .wait_for_case(&suspended, "a red warning", |c| {
            !warnings(c, None, "red").is_empty()
        })
        .await;
    assert_eq!(
        timestamp(&warnings(&case, None, "red")[0]["due_by"]),
        at("2026-12-10T00:00:00+08:00"),
        "{case}"
    );
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&suspended).await;
    assert!(warnings(&case, None, "yellow").is_empty(), "{case}");
    assert_eq!(warnings(&case, None, "red").len(), 1, "{case}");
    let case = app.get_case(&decided).await;
    assert_eq!(case["warnings"], json!([]), "decided: {case}");
}

#[actix_web::test]
async fn a_long_suspension_does_not_use_up_the_cases_time() {
    // Arrange: accepted Tuesday 3 November, 09:00, due by the end of Friday 6 November: 32
    // working hours. Suspended after one hour, at 10:00.
    let (app, clock) = spawn_app_at("2026-11-03T09:00:00+08:00", manual_market).await;
    let case_id = case_in_inbox(&app, SIMPLE, MARKET).await;
    clock.set(at("2026-11-03T10:00:00+08:00"));
    let response = app
        .post_json(
            &format!("/api/v1/departments/{MARKET}/cases/{case_id}/supplement-request"),
            &json!({ "materials": ["id_card"], "reason": "身份证复印件缺页" }),
        )
        .await;
    assert_status(response, 200).await;
    app.wait_for_status(&case_id, "suspended").await;
    app.wait_until_supervision_has_read(&case_id).await;

    // Act: supplied four weeks later, Tuesday 1 December, 10:00. The working days Tue 3 Nov
    // < d <= Tue 1 Dec: Nov 4–6 (3), 9–13, 16–20, 23–27 (15), 30 (1), Dec 1 (1) = 20; due by
    // the end of Fri 6 Nov + 20 = Friday 4 December. Of its 32 hours one is used; 31 remain
    // (Tue 7, Wed 8, Thu 8, Fri 8).
    clock.set(at("2026-12-01T10:00:00+08:00"));
    let response = app
        .post_json(
            &format!("/api/v1/terminals/{TERMINAL}/cases/{case_id}/supplements"),
            &json!({ "materials": ["id_card"] }),
        )
        .await;
    assert_status(response, 202).await;
    let resumed = app
        .wait_for_case(&case_id, "resumed", |c| c["status"] == "accepted")
        .await;
    app.wait_until_supervision_has_read(&case_id).await;
    app.wait_for_supervision_check(&clock).await;

    // Assert: 1 of 32 hours is no reason for a warning.
    assert_eq!(
        resumed["receipt"]["suspended_working_days"], 20,
        "{resumed}"
    );
    assert_eq!(resumed["receipt"]["due_date"], "2026-12-04", "{resumed}");
    let case = app.get_case(&case_id).await;
    assert_eq!(case["warnings"], json!([]), "{case}");
    // Thursday 3 December, 17:00: 1 + 7 + 8 + 8 = 24 of 32 hours (75 %): still none.
    clock.set(at("2026-12-03T17:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(case["warnings"], json!([]), "{case}");
    // Friday 4 December, 11:00: 26 of 32 hours (81.25 %): yellow.
    clock.set(at("2026-12-04T11:00:00+08:00"));
    let case = app
        .wait_for_case(&case_id, "a yellow warning", |c| {
            !warnings(c, None, "yellow").is_empty()
        })
        .await;
    let yellow = warnings(&case, None, "yellow")[0];
    assert!(
        (yellow["share_used"].as_f64().unwrap() - 26.0 / 32.0).abs() < 1e-9,
        "{yellow}"
    );
    // Decided then: 26 working hours of handling. The four weeks waiting for the applicant
    // are not the department's.
    app.decide_ok(MARKET, &case_id, "approve").await;
    app.wait_until_completed(&case_id).await;
    app.wait_until_supervision_has_read(&case_id).await;
    let figures = app.get_json("/api/v1/supervision/departments").await;
    let market = find(&figures, "department", MARKET);
    assert_eq!(market["cases"]["average_handling_hours"], 26.0, "{market}");
    assert_eq!(market["cases"]["completed_on_time"], 1, "{market}");
}

/// Expected [`Figures`](govfusion::actors::supervisor::Figures), worked out by hand.
struct Expected {
    received: u64,
    completed: u64,
    completed_on_time: u64,
    on_time_rate: Option<f64>,
    average_handling_hours: Option<f64>,
    p90_handling_hours: Option<f64>,
    open_overdue: u64,
}

/// No item at all.
const NOTHING: Expected = Expected {
    received: 0,
    completed: 0,
    completed_on_time: 0,
    on_time_rate: None,
    average_handling_hours: None,
    p90_handling_hours: None,
    open_overdue: 0,
};

fn assert_figures(what: &str, actual: &Value, expected: &Expected) {
    let count = |field: &str| {
        actual[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: `{field}` is not a count: {actual}"))
    };
    assert_eq!(
        count("received"),
        expected.received,
        "{what} received: {actual}"
    );
    assert_eq!(
        count("completed"),
        expected.completed,
        "{what} completed: {actual}"
    );
    assert_eq!(
        count("completed_on_time"),
        expected.completed_on_time,
        "{what} completed_on_time: {actual}"
    );
    assert_eq!(
        count("open_overdue"),
        expected.open_overdue,
        "{what} open_overdue: {actual}"
    );
    for (field, value) in [
        ("on_time_rate", expected.on_time_rate),
        ("average_handling_hours", expected.average_handling_hours),
        ("p90_handling_hours", expected.p90_handling_hours),
    ] {
        match value {
            None => assert!(actual[field].is_null(), "{what} {field}: {actual}"),
            Some(v) => assert!(
                actual[field].as_f64().is_some_and(|a| (a - v).abs() < 1e-9),
                "{what} {field}: expected {v}: {actual}"
            ),
        }
    }
}

fn find<'a>(list: &'a Value, key: &str, code: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[key] == code))
        .unwrap_or_else(|| panic!("no {key} {code} in {list}"))
}

#[actix_web::test]
async fn the_figures_after_a_scripted_set_of_cases_equal_the_hand_computed_values() {
    // Arrange: market decides by hand. At T0 = Tuesday 1 December, 09:00: market cases A, B,
    // C, D and construction permits P, Q, R (housing). Fire answers every permit at once.
    let (app, clock) = spawn_app_at("2026-12-01T09:00:00+08:00", manual_market).await;
    let a = case_in_inbox(&app, SIMPLE, MARKET).await;
    let b = case_in_inbox(&app, SIMPLE, MARKET).await;
    let c = case_in_inbox(&app, SIMPLE, MARKET).await;
    let d = case_in_inbox(&app, SIMPLE, MARKET).await;
    let (p, p_event) = permit_waiting(&app).await;
    let (q, q_event) = permit_waiting(&app).await;
    let (r, _) = permit_waiting(&app).await;

    // T1 = Tue 1, 13:00: A approved; urban_management returns Q's event, re-routed to
    // street_office, which answers; housing approves Q.
    clock.set(at("2026-12-01T13:00:00+08:00"));
    app.decide_ok(MARKET, &a, "approve").await;
    let response = app
        .event_action(&q_event, "return", &json!({ "reason": "属街道职责" }))
        .await;
    assert_status(response, 200).await;
    app.wait_until_completed(&a).await;
    app.wait_until_completed(&q).await;

    // T2 = Thu 3, 11:00: B approved; urban_management answers P; housing approves P.
    clock.set(at("2026-12-03T11:00:00+08:00"));
    app.decide_ok(MARKET, &b, "approve").await;
    let response = app
        .event_action(&p_event, "result", &json!({ "outcome": "agree" }))
        .await;
    assert_status(response, 200).await;
    app.wait_until_completed(&b).await;
    app.wait_until_completed(&p).await;

    // T3 = Mon 7, 10:00: C rejected (late); E submitted; A rated 5, B rated 3.
    clock.set(at("2026-12-07T10:00:00+08:00"));
    app.decide_ok(MARKET, &c, "reject").await;
    app.wait_until_completed(&c).await;
    let e = case_in_inbox(&app, SIMPLE, MARKET).await;
    for (case_id, score) in [(&a, 5), (&b, 3)] {
        let response = rate(&app, TERMINAL, case_id, &json!({ "score": score })).await;
        assert_status(response, 201).await;
    }

    // T4 = Wed 9, 10:00: R's event (due by the end of Tue 8) is overdue and escalated.
    clock.set(at("2026-12-09T10:00:00+08:00"));
    app.wait_for_case(&r, "R's event escalated", |case| {
        !event_view(case, &format!("{r}-{MANUAL}"))["escalated_to"].is_null()
    })
    .await;
    for case_id in [&a, &b, &c, &d, &e, &p, &q, &r] {
        app.wait_until_supervision_has_read(case_id).await;
    }

    // Act
    let departments = app.get_json("/api/v1/supervision/departments").await;
    let centres = app.get_json("/api/v1/supervision/centers").await;
    let first_day = app
        .get_json("/api/v1/supervision/departments?from=2026-12-01&to=2026-12-01")
        .await;
    let monday = app
        .get_json("/api/v1/supervision/departments?from=2026-12-07&to=2026-12-07")
        .await;
    let centres_monday = app
        .get_json("/api/v1/supervision/centers?from=2026-12-07")
        .await;

    // Assert: market's cases. Each accepted Tue 09:00 (E: Mon 10:00), due by the end of
    // Fri 4 (E: Thu 10).
    //   A decided Tue 13:00:  4 h, on time.
    //   B decided Thu 11:00:  Tue 8 + Wed 8 + Thu 2 = 18 h, on time.
    //   C decided Mon 10:00:  Tue 8 + Wed 8 + Thu 8 + Fri 8 + Mon 1 = 33 h, late.
    //   D open, past its due date at Wed 9: overdue. E open, not yet due.
    // 5 received, 3 completed, 2 on time: 2/3; mean (4 + 18 + 33) / 3 = 55/3 h; p90 of
    // [4, 18, 33]: rank ⌈0.9 × 3⌉ = 3 → 33 h. Ratings 5 and 3: 2, mean 4.
    let market = find(&departments, "department", MARKET);
    assert_eq!(market["name"], "市场监督管理局", "{market}");
    assert_figures(
        "market cases",
        &market["cases"],
        &Expected {
            received: 5,
            completed: 3,
            completed_on_time: 2,
            on_time_rate: Some(2.0 / 3.0),
            average_handling_hours: Some(55.0 / 3.0),
            p90_handling_hours: Some(33.0),
            open_overdue: 1,
        },
    );
    assert_figures("market events", &market["collaborations"], &NOTHING);
    assert_eq!(market["ratings"], json!({ "count": 2, "average": 4.0 }));
    assert_eq!(market["returns"], 0, "{market}");
    assert_eq!(market["escalations"], 0, "{market}");

    // housing's cases, accepted Tue 09:00 and due by the end of Tue 22 (15 working days):
    //   Q decided at T1 when street_office answered: 4 h. P decided at T2: 18 h. R open.
    // 3 received, 2 completed, both on time: 1.0; mean 11 h; p90 rank ⌈1.8⌉ = 2 → 18 h.
    let housing = find(&departments, "department", "housing");
    assert_figures(
        "housing cases",
        &housing["cases"],
        &Expected {
            received: 3,
            completed: 2,
            completed_on_time: 2,
            on_time_rate: Some(1.0),
            average_handling_hours: Some(11.0),
            p90_handling_hours: Some(18.0),
            open_overdue: 0,
        },
    );
    assert_eq!(housing["ratings"], json!({ "count": 0, "average": null }));

    // fire: P, Q, R dispatched and answered at T0: 3 received, 3 on time, 0 h each.
    let zero_hours = |n: u64| Expected {
        received: n,
        completed: n,
        completed_on_time: n,
        on_time_rate: Some(1.0),
        average_handling_hours: Some(0.0),
        p90_handling_hours: Some(0.0),
        open_overdue: 0,
    };
    let fire = find(&departments, "department", "fire");
    assert_figures("fire events", &fire["collaborations"], &zero_hours(3));

    // urban_management: dispatched P, Q, R at T0, due by the end of Tue 8.
    //   P answered at T2: 18 h, on time. Q returned (not completed, not overdue).
    //   R open and overdue, escalated.
    let manual = find(&departments, "department", MANUAL);
    assert_figures(
        "urban_management events",
        &manual["collaborations"],
        &Expected {
            received: 3,
            completed: 1,
            completed_on_time: 1,
            on_time_rate: Some(1.0),
            average_handling_hours: Some(18.0),
            p90_handling_hours: Some(18.0),
            open_overdue: 1,
        },
    );
    assert_figures("urban_management cases", &manual["cases"], &NOTHING);
    assert_eq!(manual["returns"], 1, "{manual}");
    assert_eq!(manual["escalations"], 1, "{manual}");

    // street_office: Q's event re-routed to it at T1 and answered at T1: 0 h.
    let street = find(&departments, "department", "street_office");
    assert_figures(
        "street_office events",
        &street["collaborations"],
        &zero_hours(1),
    );
    assert_eq!(street["returns"], 0, "{street}");

    // A department with nothing.
    let ecology = find(&departments, "department", "ecology");
    assert_figures("ecology cases", &ecology["cases"], &NOTHING);
    assert_eq!(ecology["ratings"], json!({ "count": 0, "average": null }));

    // Centres. Every dispatch to fire or urban_management went 重庆市 → 渝中区; Q's
    // re-routing 重庆市 → 渝中区 → 解放碑街道. So 7 dispatches pass the city and the district:
    // 5 answered (3 fire, P, Q at street_office), all on time, hours [0, 0, 0, 0, 18]: mean
    // 3.6, p90 rank ⌈4.5⌉ = 5 → 18; R overdue. The district dispatched the returned event;
    // the city received R's escalation.
    let through_city = Expected {
        received: 7,
        completed: 5,
        completed_on_time: 5,
        on_time_rate: Some(1.0),
        average_handling_hours: Some(3.6),
        p90_handling_hours: Some(18.0),
        open_overdue: 1,
    };
    let city = find(&centres, "centre", "500000");
    assert_eq!(city["tier"], "city", "{city}");
    assert_eq!(city["name"], "重庆市", "{city}");
    assert_figures("city events", &city["events"], &through_city);
    assert_eq!(city["returns"], 0, "{city}");
    assert_eq!(city["escalations"], 1, "{city}");
    let district = find(&centres, "centre", "500103");
    assert_figures("渝中区 events", &district["events"], &through_city);
    assert_eq!(district["returns"], 1, "{district}");
    assert_eq!(district["escalations"], 0, "{district}");
    let street_centre = find(&centres, "centre", "500103001");
    assert_eq!(street_centre["tier"], "street", "{street_centre}");
    assert_figures(
        "解放碑街道 events",
        &street_centre["events"],
        &zero_hours(1),
    );
    assert_eq!(street_centre["returns"], 0, "{street_centre}");
    let elsewhere = find(&centres, "centre", "500105");
    assert_figures("江北区 events", &elsewhere["events"], &NOTHING);

    // Periods: Tuesday 1 December alone leaves out E; Monday 7 December has only E.
    let market = find(&first_day, "department", MARKET);
    assert_figures(
        "market cases on Dec 1",
        &market["cases"],
        &Expected {
            received: 4,
            completed: 3,
            completed_on_time: 2,
            on_time_rate: Some(2.0 / 3.0),
            average_handling_hours: Some(55.0 / 3.0),
            p90_handling_hours: Some(33.0),
            open_overdue: 1,
        },
    );
    assert_eq!(market["ratings"]["count"], 2, "{market}");
    let market = find(&monday, "department", MARKET);
    assert_figures(
        "market cases on Dec 7",
        &market["cases"],
        &Expected {
            received: 1,
            ..NOTHING
        },
    );
    assert_eq!(market["ratings"], json!({ "count": 0, "average": null }));
    let manual = find(&monday, "department", MANUAL);
    assert_eq!(manual["returns"], 0, "{manual}");
    assert_eq!(manual["escalations"], 0, "{manual}");
    let city = find(&centres_monday, "centre", "500000");
    assert_figures("city events from Dec 7", &city["events"], &NOTHING);
    assert_eq!(city["escalations"], 0, "{city}");
}

#[actix_web::test]
async fn a_malformed_or_inverted_period_is_refused() {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T09:00:00+08:00", |_| {}).await;

    for endpoint in ["departments", "centers"] {
        // Act
        let malformed = app
            .get(&format!("/api/v1/supervision/{endpoint}?from=2026-12-32"))
            .await;
        let inverted = app
            .get(&format!(
                "/api/v1/supervision/{endpoint}?from=2026-12-09&to=2026-12-01"
            ))
            .await;

        // Assert
        assert_refused(malformed, 400, "invalid_query").await;
        assert_refused(inverted, 422, "invalid_period").await;
    }
}

#[actix_web::test]
async fn a_completed_case_is_rated_once() {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T09:00:00+08:00", |_| {}).await;
    let case_id = app.submit_ok(&app.application_body(SIMPLE)).await;
    app.wait_until_completed(&case_id).await;

    // Act
    let first = rate(
        &app,
        TERMINAL,
        &case_id,
        &json!({ "score": 4, "comment": "办事快" }),
    )
    .await;
    let second = rate(&app, TERMINAL, &case_id, &json!({ "score": 1 })).await;

    // Assert
    let rating = assert_status(first, 201).await;
    assert_eq!(rating["score"], 4, "{rating}");
    assert_refused(second, 409, "invalid_transition").await;
    let case = app
        .wait_for_case(&case_id, "the rating recorded", |c| {
            !history_entries(c, "case.rated").is_empty()
        })
        .await;
    assert_eq!(
        case["rating"]["score"], 4,
        "the first rating stands: {case}"
    );
    assert_eq!(case["rating"]["comment"], "办事快", "{case}");
    app.wait_until_supervision_has_read(&case_id).await;
    let figures = app.get_json("/api/v1/supervision/departments").await;
    assert_eq!(
        find(&figures, "department", MARKET)["ratings"],
        json!({ "count": 1, "average": 4.0 })
    );
}

#[actix_web::test]
async fn a_case_cannot_be_rated_before_it_is_completed_nor_out_of_range() {
    // Arrange: a case waiting for market's staff.
    let (app, _clock) = spawn_app_at("2026-12-01T09:00:00+08:00", manual_market).await;
    let case_id = case_in_inbox(&app, SIMPLE, MARKET).await;

    // Act & Assert: not completed.
    let early = rate(&app, TERMINAL, &case_id, &json!({ "score": 5 })).await;
    assert_refused(early, 409, "invalid_transition").await;

    // Completed: out of range, unknown terminal, unknown case.
    app.decide_ok(MARKET, &case_id, "approve").await;
    app.wait_until_completed(&case_id).await;
    for score in [0, 6] {
        let response = rate(&app, TERMINAL, &case_id, &json!({ "score": score })).await;
        assert_refused(response, 422, "invalid_score").await;
    }
    let terminal = rate(&app, "no-such-terminal", &case_id, &json!({ "score": 5 })).await;
    assert_refused(terminal, 404, "unknown_terminal").await;
    let unknown = rate(&app, TERMINAL, "no-such-case", &json!({ "score": 5 })).await;
    assert_refused(unknown, 404, "unknown_case").await;

    // None of them counted: a valid rating still goes through.
    let valid = rate(&app, TERMINAL, &case_id, &json!({ "score": 5 })).await;
    assert_status(valid, 201).await;
}

#[actix_web::test]
async fn an_extended_event_gets_warnings_of_its_own_for_the_new_deadline() {
    // Arrange: dispatched Tuesday 1 December, 10:00, due by the end of Tuesday 8 December
    // (47 working hours). Monday 7 December, 16:00: 38 hours used (80.9 %), yellow.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = permit_waiting(&app).await;
    clock.set(at("2026-12-07T16:00:00+08:00"));
    app.wait_for_case(&case_id, "a yellow warning on the event", |c| {
        !warnings(c, Some(&event_id), "yellow").is_empty()
    })
    .await;

    // Act: 2 more working days: due by the end of Thursday 10 December, 47 + 16 = 63 hours.
    let response = app
        .event_action(
            &event_id,
            "extension",
            &json!({ "days": 2, "reason": "需要现场复核" }),
        )
        .await;
    assert_status(response, 202).await;
    app.wait_for_case(&case_id, "the extension approved", |c| {
        event_view(c, &event_id)["extensions"] == 1
    })
    .await;
    app.wait_until_supervision_has_read(&case_id).await;
    // Thursday 10 December, 10:00: 7 + 6 × 8 + 1 = 56 of 63 hours (88.9 %).
    clock.set(at("2026-12-10T10:00:00+08:00"));
    let case = app
        .wait_for_case(&case_id, "a yellow warning for the new deadline", |c| {
            warnings(c, Some(&event_id), "yellow").len() == 2
        })
        .await;

    // Assert: the second yellow names the new deadline.
    let yellow = warnings(&case, Some(&event_id), "yellow");
    assert_eq!(
        timestamp(&yellow[0]["due_by"]),
        at("2026-12-09T00:00:00+08:00"),
        "{case}"
    );
    assert_eq!(
        timestamp(&yellow[1]["due_by"]),
        at("2026-12-11T00:00:00+08:00"),
        "{case}"
    );
    assert!(
        (yellow[1]["share_used"].as_f64().unwrap() - 56.0 / 63.0).abs() < 1e-9,
        "{case}"
    );
}
