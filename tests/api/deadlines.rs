//! Promised deadlines (承诺时限) in working days on a clock the test moves: on time or late,
//! suspensions for supplementary materials (补正) that stop the clock, the holidays and make-up
//! working days of the calendar, and the supplement requests and supplements that are refused.
//!
//! The cases are `individual_business_registration` (promised in 3 working days, materials
//! `id_card` and `premises_proof`) at `market`, made a manual department so staff decide when
//! the test says. Every expected date is counted by hand in a comment (December 2026: Tue 1,
//! Fri 4, Sat 5, Mon 7, …), never with the library's calendar.

use crate::helpers::{
    assert_refused, assert_status, at, history_entries, history_notes, make_manual, spawn_app,
    spawn_app_at, timestamp, TestApp, TERMINAL,
};
use serde_json::{json, Value};

const MATTER: &str = "individual_business_registration";
const MARKET: &str = "market";

/// Config: `market` decides by hand.
fn manual_market(settings: &mut govfusion::settings::Settings) {
    make_manual(settings, MARKET);
}

/// Submits a case for [`MATTER`] and waits until it waits for market's staff.
async fn accepted_case(app: &TestApp) -> String {
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    app.wait_for_inbox_case(MARKET, &case_id).await;
    // The intake system reads the acceptance on its own consumer group: wait for its receipt.
    app.wait_for_status(&case_id, "accepted").await;
    case_id
}

fn supplement_request_path(case_id: &str) -> String {
    format!("/api/v1/departments/{MARKET}/cases/{case_id}/supplement-request")
}

fn supplements_path(terminal: &str, case_id: &str) -> String {
    format!("/api/v1/terminals/{terminal}/cases/{case_id}/supplements")
}

/// Market's staff ask for `premises_proof` again, asserting 200; returns the suspension.
async fn ask_for_supplement(app: &TestApp, case_id: &str) -> Value {
    let response = app
        .post_json(
            &supplement_request_path(case_id),
            &json!({ "materials": ["premises_proof"], "reason": "房屋证明复印件不清晰" }),
        )
        .await;
    assert_status(response, 200).await
}

/// The applicant supplies `premises_proof`, asserting 202.
async fn supply(app: &TestApp, case_id: &str) {
    let response = app
        .post_json(
            &supplements_path(TERMINAL, case_id),
            &json!({ "materials": ["premises_proof"] }),
        )
        .await;
    assert_status(response, 202).await;
}

/// The inbox entry of a case at market.
async fn inbox_entry(app: &TestApp, case_id: &str) -> Value {
    let inbox = app
        .get_json(&format!("/api/v1/departments/{MARKET}/inbox"))
        .await;
    inbox["cases"]
        .as_array()
        .and_then(|cases| {
            cases
                .iter()
                .find(|c| c["application"]["case_id"] == case_id)
        })
        .cloned()
        .unwrap_or_else(|| panic!("case {case_id} is not in market's inbox: {inbox}"))
}

#[actix_web::test]
async fn a_case_decided_on_its_last_working_day_is_on_time_and_one_decided_a_day_later_is_late() {
    // Arrange: both accepted on Tuesday 1 December 2026, 10:00. Three working days after it:
    // Wed 2, Thu 3, Fri 4 — due by the end of Friday 4 December (midnight into Saturday).
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", manual_market).await;
    let on_time = accepted_case(&app).await;
    let late = accepted_case(&app).await;
    let case = app.get_case(&on_time).await;
    let receipt = &case["receipt"];
    assert_eq!(receipt["promised_days"], 3, "{receipt}");
    assert_eq!(receipt["due_date"], "2026-12-04", "{receipt}");
    assert_eq!(
        timestamp(&receipt["due_by"]),
        at("2026-12-05T00:00:00+08:00"),
        "{receipt}"
    );
    assert_eq!(receipt["suspended_working_days"], 0, "{receipt}");
    assert_eq!(case["on_time"], Value::Null, "undecided: {case}");

    // Act: one approved late on Friday, its last working day; the other on Saturday, a day
    // later.
    clock.set(at("2026-12-04T23:30:00+08:00"));
    app.decide_ok(MARKET, &on_time, "approve").await;
    let first = app.wait_until_completed(&on_time).await;
    clock.set(at("2026-12-05T10:00:00+08:00"));
    app.decide_ok(MARKET, &late, "approve").await;
    let second = app.wait_until_completed(&late).await;

    // Assert
    assert_eq!(
        first["on_time"], true,
        "decided before the end of the due date: {first}"
    );
    assert_eq!(
        second["on_time"], false,
        "decided the day after the due date: {second}"
    );
    assert_eq!(second["receipt"]["due_date"], "2026-12-04", "{second}");
}

#[actix_web::test]
async fn a_suspension_over_a_weekend_moves_the_due_date_by_one_working_day() {
    // Arrange: accepted Thursday 3 December 10:00; three working days: Fri 4, Mon 7, Tue 8.
    let (app, clock) = spawn_app_at("2026-12-03T10:00:00+08:00", manual_market).await;
    let case_id = accepted_case(&app).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(case["receipt"]["due_date"], "2026-12-08", "{case}");

    // Act: suspended on Friday 4 December, 15:00; supplied and resumed on Monday 7 December.
    clock.set(at("2026-12-04T15:00:00+08:00"));
    let suspension = ask_for_supplement(&app, &case_id).await;
    let suspended = app.wait_for_status(&case_id, "suspended").await;
    let stage_while_suspended = inbox_entry(&app, &case_id).await["stage"].clone();
    clock.set(at("2026-12-07T10:00:00+08:00"));
    supply(&app, &case_id).await;
    let resumed = app
        .wait_for_case(&case_id, "resumed", |c| {
            c["status"] == "accepted" && !history_entries(c, "case.resumed").is_empty()
        })
        .await;

    // Assert: while suspended.
    assert_eq!(suspension["sequence"], 1, "{suspension}");
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    assert_eq!(
        suspended["suspension"]["materials"],
        json!(["premises_proof"]),
        "{suspended}"
    );
    assert_eq!(
        suspended["suspension"]["reason"], "房屋证明复印件不清晰",
        "{suspended}"
    );
    assert_eq!(stage_while_suspended, "suspended");
    // Resumed: the working days d with Fri 4 < d <= Mon 7 are Monday alone (the weekend
    // does not count), so the due date moves one working day, from Tue 8 to Wed 9.
    let receipt = &resumed["receipt"];
    assert_eq!(receipt["suspended_working_days"], 1, "{receipt}");
    assert_eq!(receipt["due_date"], "2026-12-09", "{receipt}");
    assert_eq!(
        timestamp(&receipt["due_by"]),
        at("2026-12-10T00:00:00+08:00"),
        "{receipt}"
    );
    assert_eq!(
        resumed["suspension"],
        Value::Null,
        "no open supplement request: {resumed}"
    );
    assert!(
        history_notes(&resumed, "case.supplemented", &["premises_proof"]),
        "the history should show what was supplied: {resumed}"
    );
    let entry = inbox_entry(&app, &case_id).await;
    assert_eq!(entry["stage"], "awaiting_decision", "{entry}");
    assert_eq!(entry["receipt"]["due_date"], "2026-12-09", "{entry}");

    // And a decision on Wednesday 9, after the first due date, is on time.
    clock.set(at("2026-12-09T16:00:00+08:00"));
    app.decide_ok(MARKET, &case_id, "approve").await;
    let completed = app.wait_until_completed(&case_id).await;
    assert_eq!(completed["on_time"], true, "{completed}");
    assert_eq!(
        completed["receipt"]["suspended_working_days"], 1,
        "{completed}"
    );
}

#[actix_web::test]
async fn a_holiday_and_a_make_up_working_day_added_to_the_config_are_honoured() {
    // Arrange: Wednesday 2 December made a holiday, Saturday 5 December a make-up working
    // day (调休上班).
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |settings| {
        manual_market(settings);
        settings
            .calendar
            .holidays
            .push("2026-12-02".parse().unwrap());
        settings
            .calendar
            .workdays
            .push("2026-12-05".parse().unwrap());
    })
    .await;

    // Act: accepted Tuesday 1 December.
    let case_id = accepted_case(&app).await;
    let case = app.get_case(&case_id).await;

    // Assert: three working days after Tue 1: (Wed 2 is a holiday) Thu 3, Fri 4, Sat 5 —
    // not Fri 4 as without the change.
    assert_eq!(case["receipt"]["due_date"], "2026-12-05", "{case}");
    assert_eq!(
        timestamp(&case["receipt"]["due_by"]),
        at("2026-12-06T00:00:00+08:00"),
        "{case}"
    );
    // Approved on the make-up Saturday: on time.
    clock.set(at("2026-12-05T15:00:00+08:00"));
    app.decide_ok(MARKET, &case_id, "approve").await;
    let completed = app.wait_until_completed(&case_id).await;
    assert_eq!(completed["on_time"], true, "{completed}");
}

#[actix_web::test]
async fn the_national_day_holiday_and_its_make_up_saturday_in_the_default_calendar_are_honoured() {
    // Arrange: accepted Wednesday 30 September 2026. The default calendar has 1–7 October as
    // holidays and Saturday 10 October as a make-up working day.
    let (app, _clock) = spawn_app_at("2026-09-30T10:00:00+08:00", manual_market).await;

    // Act
    let case_id = accepted_case(&app).await;
    let case = app.get_case(&case_id).await;

    // Assert: three working days: Thu 8, Fri 9, Sat 10 October.
    assert_eq!(case["receipt"]["due_date"], "2026-10-10", "{case}");
    assert_eq!(
        timestamp(&case["receipt"]["due_by"]),
        at("2026-10-11T00:00:00+08:00"),
        "{case}"
    );
}

#[actix_web::test]
async fn a_department_can_only_ask_for_materials_on_a_case_awaiting_its_decision() {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", manual_market).await;
    let case_id = accepted_case(&app).await;
    let path = supplement_request_path(&case_id);

    // Act & Assert: nothing to ask for, or no reason.
    let none = app
        .post_json(&path, &json!({ "materials": [], "reason": "材料不全" }))
        .await;
    assert_refused(none, 422, "empty_list").await;
    let blank = app
        .post_json(
            &path,
            &json!({ "materials": ["premises_proof"], "reason": " " }),
        )
        .await;
    assert_refused(blank, 422, "missing_reason").await;
    let ask = json!({ "materials": ["premises_proof"], "reason": "房屋证明复印件不清晰" });
    let unknown_case = app
        .post_json(&supplement_request_path("no-such-case"), &ask)
        .await;
    assert_refused(unknown_case, 404, "not_waiting").await;
    let unknown_department = app
        .post_json(
            &format!("/api/v1/departments/dragon_office/cases/{case_id}/supplement-request"),
            &ask,
        )
        .await;
    assert_refused(unknown_department, 404, "unknown_department").await;

    // Suspended: a second request and a decision are refused.
    ask_for_supplement(&app, &case_id).await;
    let again = app
        .post_json(
            &path,
            &json!({ "materials": ["id_card"], "reason": "身份证过期" }),
        )
        .await;
    assert_refused(again, 409, "invalid_transition").await;
    let decision = app
        .post_json(
            &format!("/api/v1/departments/{MARKET}/cases/{case_id}/decision"),
            &json!({ "decision": "approve" }),
        )
        .await;
    assert_refused(decision, 409, "invalid_transition").await;

    // Resumed and decided: no more requests.
    app.wait_for_status(&case_id, "suspended").await;
    supply(&app, &case_id).await;
    app.wait_for_case(&case_id, "resumed", |c| c["status"] == "accepted")
        .await;
    app.wait_for_inbox_case(MARKET, &case_id).await;
    app.decide_ok(MARKET, &case_id, "approve").await;
    let decided = app
        .post_json(
            &path,
            &json!({ "materials": ["id_card"], "reason": "身份证过期" }),
        )
        .await;
    assert_refused(decided, 409, "invalid_transition").await;
}

#[actix_web::test]
async fn an_automatic_department_cannot_ask_for_materials() {
    // Arrange: market decides by rule in the default configuration.
    let app = spawn_app().await;
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    app.wait_until_completed(&case_id).await;

    // Act
    let response = app
        .post_json(
            &supplement_request_path(&case_id),
            &json!({ "materials": ["premises_proof"], "reason": "房屋证明复印件不清晰" }),
        )
        .await;

    // Assert
    assert_refused(response, 409, "invalid_transition").await;
}

#[actix_web::test]
async fn an_applicant_can_only_supplement_a_suspended_case_and_only_once_and_a_repeat_answers_the_same(
) {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", manual_market).await;
    let case_id = accepted_case(&app).await;
    let path = supplements_path(TERMINAL, &case_id);
    let materials = json!({ "materials": ["premises_proof"] });

    // Act & Assert: not suspended.
    let early = app.post_json(&path, &materials).await;
    assert_refused(early, 409, "invalid_transition").await;

    // Suspended: an empty list, an unknown terminal, an unknown case.
    ask_for_supplement(&app, &case_id).await;
    app.wait_for_status(&case_id, "suspended").await;
    let empty = app.post_json(&path, &json!({ "materials": [] })).await;
    assert_refused(empty, 422, "empty_list").await;
    let terminal = app
        .post_json(&supplements_path("no-such-terminal", &case_id), &materials)
        .await;
    assert_refused(terminal, 404, "unknown_terminal").await;
    let unknown = app
        .post_json(&supplements_path(TERMINAL, "no-such-case"), &materials)
        .await;
    assert_refused(unknown, 404, "unknown_case").await;

    // Supplied once: the same request again answers the same supplement; other materials
    // are refused.
    let first = app.post_json(&path, &materials).await;
    let first = assert_status(first, 202).await;
    let repeat = app.post_json(&path, &materials).await;
    assert_eq!(
        assert_status(repeat, 202).await,
        first,
        "a repeat answers the same"
    );
    let other = json!({ "materials": ["id_card"] });
    let second = app.post_json(&path, &other).await;
    assert_refused(second, 409, "invalid_transition").await;
    let resumed = app
        .wait_for_case(&case_id, "resumed", |c| c["status"] == "accepted")
        .await;
    assert_eq!(
        history_entries(&resumed, "case.supplemented").len(),
        1,
        "one supplement: {resumed}"
    );
    let after = app.post_json(&path, &materials).await;
    assert_eq!(
        assert_status(after, 202).await,
        first,
        "still a repeat once resumed"
    );
    let other_after = app.post_json(&path, &other).await;
    assert_refused(other_after, 409, "invalid_transition").await;
}

#[actix_web::test]
async fn every_suspension_moves_the_due_date_and_supplied_materials_complete_the_application() {
    // Arrange: submitted without premises_proof; accepted Tuesday 1 December, 10:00, due by
    // the end of Friday 4 December.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", manual_market).await;
    let mut body = app.application_body(MATTER);
    body["materials"] = json!(["id_card"]);
    let case_id = app.submit_ok(&body).await;
    app.wait_for_inbox_case(MARKET, &case_id).await;
    let entry = inbox_entry(&app, &case_id).await;
    assert_eq!(
        entry["missing_materials"],
        json!(["premises_proof"]),
        "{entry}"
    );
    let resumed = |n: usize| {
        move |c: &Value| c["status"] == "accepted" && history_entries(c, "case.resumed").len() == n
    };

    // Act: suspended Tue 1 11:00, supplied Wed 2 10:00 — the working days Tue 1 < d <= Wed 2:
    // Wed 2 alone, due Fri 4 + 1 = Mon 7.
    clock.set(at("2026-12-01T11:00:00+08:00"));
    ask_for_supplement(&app, &case_id).await;
    app.wait_for_status(&case_id, "suspended").await;
    clock.set(at("2026-12-02T10:00:00+08:00"));
    supply(&app, &case_id).await;
    let first = app
        .wait_for_case(&case_id, "resumed once", resumed(1))
        .await;
    // Suspended again Wed 2 15:00, supplied Mon 7 09:30 — Thu 3, Fri 4, Mon 7: due Mon 7 + 3
    // = Thu 10.
    clock.set(at("2026-12-02T15:00:00+08:00"));
    let suspension = ask_for_supplement(&app, &case_id).await;
    app.wait_for_status(&case_id, "suspended").await;
    clock.set(at("2026-12-07T09:30:00+08:00"));
    supply(&app, &case_id).await;
    let second = app
        .wait_for_case(&case_id, "resumed twice", resumed(2))
        .await;

    // Assert
    assert_eq!(first["receipt"]["due_date"], "2026-12-07", "{first}");
    assert_eq!(first["receipt"]["suspended_working_days"], 1, "{first}");
    assert_eq!(suspension["sequence"], 2, "{suspension}");
    assert_eq!(second["receipt"]["due_date"], "2026-12-10", "{second}");
    assert_eq!(second["receipt"]["suspended_working_days"], 4, "{second}");
    let entry = inbox_entry(&app, &case_id).await;
    assert_eq!(entry["missing_materials"], json!([]), "{entry}");
    assert!(
        entry["application"]["materials"]
            .as_array()
            .unwrap()
            .contains(&json!("premises_proof")),
        "{entry}"
    );
}

#[actix_web::test]
async fn a_case_waiting_for_collaboration_cannot_be_suspended_or_decided() {
    // Arrange: urban_management decides outdoor_advertising by hand after street_office's
    // verification; street_office answers by hand too, so the case waits for it.
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |settings| {
        make_manual(settings, "street_office");
    })
    .await;
    let case_id = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    let event = app.wait_for_collaboration("street_office", &case_id).await;
    let request =
        format!("/api/v1/departments/urban_management/cases/{case_id}/supplement-request");
    let ask = json!({ "materials": ["site_consent"], "reason": "业主同意书缺签字" });

    // Act
    let suspend = app.post_json(&request, &ask).await;
    let decide = app
        .post_json(
            &format!("/api/v1/departments/urban_management/cases/{case_id}/decision"),
            &json!({ "decision": "approve" }),
        )
        .await;

    // Assert
    assert_refused(suspend, 409, "invalid_transition").await;
    assert_refused(decide, 409, "invalid_transition").await;
    // Once street_office answered, the case awaits the decision and may be suspended.
    let response = app
        .post_json(
            &format!(
                "/api/v1/collaborations/{}/result",
                event["event_id"].as_str().unwrap()
            ),
            &json!({ "outcome": "agree" }),
        )
        .await;
    assert_status(response, 200).await;
    app.wait_for_inbox_case("urban_management", &case_id).await;
    let suspend = app.post_json(&request, &ask).await;
    assert_status(suspend, 200).await;
    app.wait_for_status(&case_id, "suspended").await;
}
