//! The life of a collaboration event at a manual department, on a clock the test moves: signing
//! for it (签收), returning it (退单) and its re-routing, extensions (延期申请), escalation of an
//! overdue event (督办), reassignment at a centre, and the actions refused out of turn.
//!
//! The cases are `construction_permit` (at `housing`, automatic) in 渝中区 / 解放碑街道: it needs
//! `fire` (district, automatic) and `urban_management` (district, manual, `return_to =
//! street_office`). The matter gives each collaborator 5 working days, which wins over
//! urban_management's own 2. Expected dates are counted by hand in comments (December 2026:
//! Tue 1, Fri 4, Mon 7, …), never with the library's calendar.

use crate::helpers::Caller;
use crate::helpers::{
    assert_refused, assert_status, at, event_view, history_entries, history_notes, make_manual,
    spawn_app_at, timestamp, warnings, TestApp,
};
use serde_json::{json, Value};
use std::time::Duration;

const MATTER: &str = "construction_permit";
const MANUAL: &str = "urban_management";
/// The city centre, 重庆市.
const CITY: &str = "500000";
/// The district centre, 渝中区: it dispatches district-tier events.
const DISTRICT: &str = "500103";

/// Submits a `construction_permit` case and waits until its event waits at
/// urban_management; returns the case id and the event id.
async fn case_waiting_at_urban_management(app: &TestApp) -> (String, String) {
    let case_id = app.submit_ok(&app.application_body(MATTER)).await;
    let event = app.wait_for_collaboration(MANUAL, &case_id).await;
    let event_id = event["event_id"].as_str().unwrap().to_owned();
    (case_id, event_id)
}

/// The `collaboration.escalated` records of a case on the bus.
fn escalations_on_the_bus(app: &TestApp, case_id: &str) -> usize {
    app.memory_bus()
        .all_records(govfusion::bus::Topic::Supervision)
        .iter()
        .filter(|(_, r)| r.key == case_id && r.header("type") == Some("collaboration.escalated"))
        .count()
}

/// The figures entry whose `key` is `code`.
fn entry<'a>(list: &'a Value, key: &str, code: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[key] == code))
        .unwrap_or_else(|| panic!("no {key} {code} in {list}"))
}

#[actix_web::test]
async fn a_returned_event_is_rerouted_to_the_alternative_department_and_the_case_completes() {
    // Arrange: dispatched Tuesday 1 December, 10:00.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;
    let before = app.get_case(&case_id).await;
    // The matter's 5 working days: Wed 2, Thu 3, Fri 4, Mon 7, Tue 8 (urban_management's own
    // 2 days would end on Thu 3).
    assert_eq!(
        timestamp(&event_view(&before, &event_id)["deadline"]),
        at("2026-12-09T00:00:00+08:00"),
        "{before}"
    );

    // Act: returned on Thursday 3 December, 10:00.
    clock.set(at("2026-12-03T10:00:00+08:00"));
    let response = app
        .event_action(
            &event_id,
            "return",
            &json!({ "reason": "属街道管辖，非本局职责" }),
        )
        .await;
    assert_status(response, 200).await;
    let case = app.wait_until_completed(&case_id).await;

    // Assert: re-routed by the district centre to street_office, which answered.
    let event = event_view(&case, &event_id);
    assert_eq!(event["department"], "street_office", "{event}");
    assert_eq!(event["tier"], "street", "{event}");
    assert_eq!(event["status"], "answered", "{event}");
    assert_eq!(
        event["tier_path"],
        json!(["重庆市", "渝中区", "解放碑街道"]),
        "{event}"
    );
    assert_eq!(event["result"]["outcome"], "agree", "{event}");
    let returns = event["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 1, "{event}");
    assert_eq!(returns[0]["department"], MANUAL, "{event}");
    assert_eq!(returns[0]["reason"], "属街道管辖，非本局职责", "{event}");
    assert_eq!(
        timestamp(&returns[0]["returned_at"]),
        at("2026-12-03T10:00:00+08:00"),
        "{event}"
    );
    // A fresh deadline from the re-routing on Thu 3: Fri 4, Mon 7, Tue 8, Wed 9, Thu 10.
    assert_eq!(
        timestamp(&event["deadline"]),
        at("2026-12-11T00:00:00+08:00"),
        "{event}"
    );
    assert!(
        history_notes(
            &case,
            "collaboration.returned",
            &[MANUAL, "属街道管辖，非本局职责"]
        ),
        "the history should say who returned the event and why: {case}"
    );
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    let inbox = app
        .get_json(&format!("/api/v1/departments/{MANUAL}/inbox"))
        .await;
    assert_eq!(inbox["collaborations"], json!([]), "{inbox}");
    let centres = app.get_json("/api/v1/supervision/centers").await;
    assert_eq!(
        entry(&centres, "centre", DISTRICT)["returns"],
        1,
        "the district centre dispatched the returned event: {centres}"
    );
    let departments = app.get_json("/api/v1/supervision/departments").await;
    assert_eq!(entry(&departments, "department", MANUAL)["returns"], 1);
}

#[actix_web::test]
async fn an_event_returned_without_an_alternative_waits_at_the_parent_centre_until_reassigned() {
    // Arrange: urban_management names no department to re-route its returns to.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |settings| {
        let department = settings
            .departments
            .iter_mut()
            .find(|d| d.code == MANUAL)
            .unwrap();
        department.return_to = None;
    })
    .await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;
    let returned_at_city = format!("/api/v1/governance/centers/{CITY}/returned");

    // Act: returned; the district centre passes it up to the city.
    let response = app
        .event_action(&event_id, "return", &json!({ "reason": "不属于本局职责" }))
        .await;
    assert_status(response, 200).await;
    let waiting = crate::helpers::poll("the event to wait at the city centre", || async {
        let list = app.get_json(&returned_at_city).await;
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            Ok(list)
        } else {
            Err(list.to_string())
        }
    })
    .await;

    // Assert: it waits at the city, not at the district; the case waits too.
    assert_eq!(waiting[0]["event_id"], event_id.as_str(), "{waiting}");
    assert_eq!(waiting[0]["returns"][0]["department"], MANUAL, "{waiting}");
    assert_eq!(
        waiting[0]["returns"][0]["reason"], "不属于本局职责",
        "{waiting}"
    );
    let at_district = app
        .get_json(&format!("/api/v1/governance/centers/{DISTRICT}/returned"))
        .await;
    assert_eq!(at_district, json!([]), "{at_district}");
    let case = app.get_case(&case_id).await;
    assert_eq!(case["status"], "collaborating", "{case}");
    assert_eq!(event_view(&case, &event_id)["status"], "returned", "{case}");

    // Refused: the wrong centre, an unknown department, an unknown centre.
    let reassign =
        |centre: &str| format!("/api/v1/governance/centers/{centre}/events/{event_id}/reassign");
    let wrong_centre = app
        .post_json(
            &reassign(DISTRICT),
            &json!({ "department": "street_office" }),
        )
        .await;
    assert_refused(wrong_centre, 404, "not_waiting").await;
    let unknown_department = app
        .post_json(&reassign(CITY), &json!({ "department": "dragon_office" }))
        .await;
    assert_refused(unknown_department, 422, "unknown_department").await;
    let unknown_centre = app
        .post_json(
            &reassign("599999"),
            &json!({ "department": "street_office" }),
        )
        .await;
    assert_refused(unknown_centre, 404, "unknown_centre").await;

    // Reassigned by the city's staff on Thursday 3 December, 10:00.
    clock.set(at("2026-12-03T10:00:00+08:00"));
    let reassigned = app
        .post_json(&reassign(CITY), &json!({ "department": "street_office" }))
        .await;
    let reassigned = assert_status(reassigned, 200).await;
    assert_eq!(reassigned["department"], "street_office", "{reassigned}");
    let case = app.wait_until_completed(&case_id).await;
    let event = event_view(&case, &event_id);
    assert_eq!(event["department"], "street_office", "{event}");
    assert_eq!(event["status"], "answered", "{event}");
    assert_eq!(
        event["tier_path"],
        json!(["重庆市", "渝中区", "解放碑街道"]),
        "{event}"
    );
    // From Thu 3: Fri 4, Mon 7, Tue 8, Wed 9, Thu 10.
    assert_eq!(
        timestamp(&event["deadline"]),
        at("2026-12-11T00:00:00+08:00"),
        "{event}"
    );
    assert!(
        history_notes(&case, "collaboration.returned", &["reassignment", MANUAL]),
        "the history should show the return passed up: {case}"
    );
    assert_eq!(app.get_json(&returned_at_city).await, json!([]));
    let centres = app.get_json("/api/v1/supervision/centers").await;
    assert_eq!(
        entry(&centres, "centre", DISTRICT)["returns"],
        1,
        "{centres}"
    );
    assert_eq!(entry(&centres, "centre", CITY)["returns"], 0, "{centres}");
    let again = app
        .post_json(&reassign(CITY), &json!({ "department": "street_office" }))
        .await;
    assert_eq!(
        assert_status(again, 200).await,
        reassigned,
        "the same reassignment again answers the same"
    );
    let elsewhere = app
        .post_json(&reassign(CITY), &json!({ "department": "fire" }))
        .await;
    assert_refused(elsewhere, 404, "not_waiting").await;
}

#[actix_web::test]
async fn a_signed_event_cannot_be_signed_again_or_returned_but_can_be_answered() {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;

    // Act & Assert: a return needs a reason, an extension a reason and at least a day.
    let blank = app
        .event_action(&event_id, "return", &json!({ "reason": "  " }))
        .await;
    assert_refused(blank, 422, "missing_reason").await;
    let no_days = app
        .event_action(
            &event_id,
            "extension",
            &json!({ "days": 0, "reason": "复核" }),
        )
        .await;
    assert_refused(no_days, 422, "invalid_days").await;
    let no_reason = app
        .event_action(&event_id, "extension", &json!({ "days": 1, "reason": "" }))
        .await;
    assert_refused(no_reason, 422, "missing_reason").await;
    for (action, body) in [
        ("sign", json!({})),
        ("return", json!({ "reason": "不属于本局" })),
        ("extension", json!({ "days": 1, "reason": "复核" })),
    ] {
        let unknown = app.event_action("no-such-event", action, &body).await;
        assert_refused(unknown, 404, "unknown_event").await;
    }

    // Signed for once, by the officer the token names.
    let sign_path = format!("/api/v1/collaborations/{event_id}/sign");
    let wang = Caller::NamedOfficer(MANUAL.into(), "wang".into(), "王科长".into());
    let signed = app.post_json_as(&wang, &sign_path, &json!({})).await;
    assert_status(signed, 200).await;
    let case = app
        .wait_for_event_status(&case_id, &event_id, "signed")
        .await;
    assert!(
        signed_by(&case, "wang", "王科长"),
        "the history should name the officer: {case}"
    );
    let inbox = app
        .get_json(&format!("/api/v1/departments/{MANUAL}/inbox"))
        .await;
    assert_eq!(inbox["collaborations"][0]["signed"], true, "{inbox}");
    let li = Caller::NamedOfficer(MANUAL.into(), "li".into(), "李科长".into());
    let twice = app.post_json_as(&li, &sign_path, &json!({})).await;
    assert_refused(twice, 409, "invalid_transition").await;
    let returned = app
        .event_action(&event_id, "return", &json!({ "reason": "不属于本局" }))
        .await;
    assert_refused(returned, 409, "invalid_transition").await;

    // Answered.
    let answered = app
        .event_action(
            &event_id,
            "result",
            &json!({ "outcome": "agree", "opinion": "无异议" }),
        )
        .await;
    assert_status(answered, 200).await;
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(event_view(&case, &event_id)["status"], "answered", "{case}");
}

#[actix_web::test]
async fn a_returned_or_answered_event_cannot_be_acted_on_again() {
    // Arrange: one event returned, one answered.
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (returned_case, returned) = case_waiting_at_urban_management(&app).await;
    let (answered_case, answered) = case_waiting_at_urban_management(&app).await;
    let response = app
        .event_action(&returned, "return", &json!({ "reason": "不属于本局" }))
        .await;
    assert_status(response, 200).await;
    let response = app
        .event_action(&answered, "result", &json!({ "outcome": "agree" }))
        .await;
    assert_status(response, 200).await;
    app.wait_until_completed(&returned_case).await;
    app.wait_until_completed(&answered_case).await;

    let actions = [
        (
            "result",
            json!({ "outcome": "disagree", "opinion": "不同意" }),
        ),
        ("sign", json!({})),
        ("return", json!({ "reason": "再退一次" })),
        ("extension", json!({ "days": 2, "reason": "需要现场复核" })),
    ];
    for (event_id, how) in [
        (&returned, "already returned"),
        (&answered, "already answered"),
    ] {
        for (action, body) in &actions {
            // Act
            let response = app.event_action(event_id, action, body).await;

            // Assert
            let body = assert_refused(response, 409, "invalid_transition").await;
            assert!(
                body["message"].as_str().unwrap().contains(how),
                "{action} on an event {how}: {body}"
            );
        }
    }
}

#[actix_web::test]
async fn an_approved_extension_moves_the_events_deadline_and_one_too_long_is_refused() {
    // Arrange: dispatched Tuesday 1 December 10:00, due by the end of Tuesday 8 December.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;
    let ask = |days: u32| json!({ "days": days, "reason": "需要现场复核" });

    // Act: 6 working days is more than the 5 allowed at once.
    let too_long = app.event_action(&event_id, "extension", &ask(6)).await;
    assert_status(too_long, 202).await;
    let refused = app
        .wait_for_case(&case_id, "the long extension refused", |c| {
            history_notes(c, "collaboration.extension_decided", &["extension refused"])
        })
        .await;

    // Assert: refused, deadline unchanged.
    assert!(
        history_notes(
            &refused,
            "collaboration.extension_decided",
            &["extension refused", "5"]
        ),
        "the refusal should name the rule: {refused}"
    );
    let event = event_view(&refused, &event_id);
    assert_eq!(event["extensions"], 0, "{event}");
    assert_eq!(
        timestamp(&event["deadline"]),
        at("2026-12-09T00:00:00+08:00"),
        "{event}"
    );

    // Act: 2 working days.
    let response = app.event_action(&event_id, "extension", &ask(2)).await;
    let request = assert_status(response, 202).await;
    assert_eq!(request["days"], 2, "{request}");
    let extended = app
        .wait_for_case(&case_id, "the extension approved", |c| {
            event_view(c, &event_id)["extensions"] == 1
        })
        .await;

    // Assert: Tue 8 plus two working days: Wed 9, Thu 10.
    let event = event_view(&extended, &event_id);
    assert_eq!(
        timestamp(&event["deadline"]),
        at("2026-12-11T00:00:00+08:00"),
        "{event}"
    );
    assert!(
        history_notes(
            &extended,
            "collaboration.extension_decided",
            &["extension approved"]
        ),
        "{extended}"
    );
    let inbox = app
        .get_json(&format!("/api/v1/departments/{MANUAL}/inbox"))
        .await;
    let waiting = &inbox["collaborations"][0];
    assert_eq!(waiting["extension_pending"], false, "{inbox}");
    assert_eq!(waiting["extensions"], 1, "{inbox}");
    assert_eq!(
        timestamp(&waiting["deadline"]),
        at("2026-12-11T00:00:00+08:00"),
        "{inbox}"
    );

    // A second extension is refused: one per event.
    let response = app.event_action(&event_id, "extension", &ask(1)).await;
    assert_status(response, 202).await;
    let second = app
        .wait_for_case(&case_id, "the second extension refused", |c| {
            history_notes(
                c,
                "collaboration.extension_decided",
                &["extension refused", "already had 1"],
            )
        })
        .await;
    assert_eq!(
        timestamp(&event_view(&second, &event_id)["deadline"]),
        at("2026-12-11T00:00:00+08:00"),
        "{second}"
    );

    // Past the old deadline the extended event is not overdue; past the new one it is.
    app.wait_until_supervision_has_read(&case_id).await;
    clock.set(at("2026-12-09T10:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let case = app.get_case(&case_id).await;
    assert_eq!(
        event_view(&case, &event_id)["escalated_to"],
        Value::Null,
        "{case}"
    );
    assert!(warnings(&case, Some(&event_id), "red").is_empty(), "{case}");
    clock.set(at("2026-12-11T09:00:00+08:00"));
    let overdue = app
        .wait_for_case(&case_id, "the event escalated", |c| {
            !event_view(c, &event_id)["escalated_to"].is_null()
        })
        .await;
    let red = warnings(&overdue, Some(&event_id), "red");
    assert_eq!(red.len(), 1, "{overdue}");
    assert_eq!(
        timestamp(&red[0]["due_by"]),
        at("2026-12-11T00:00:00+08:00"),
        "{overdue}"
    );
}

#[actix_web::test]
async fn a_second_extension_request_while_one_is_pending_is_refused_and_a_repeat_answers_the_first()
{
    // Arrange: deliveries slowed, so the centre's decision cannot come back between two
    // requests.
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;
    let body = json!({ "days": 2, "reason": "需要现场复核" });
    app.memory_bus()
        .delay_deliveries(Duration::from_millis(500));

    // Act
    let first = app.event_action(&event_id, "extension", &body).await;
    let repeat = app.event_action(&event_id, "extension", &body).await;
    let other = json!({ "days": 3, "reason": "需要现场复核" });
    let second = app.event_action(&event_id, "extension", &other).await;
    app.memory_bus().delay_deliveries(Duration::ZERO);

    // Assert
    let first = assert_status(first, 202).await;
    assert_eq!(
        assert_status(repeat, 202).await,
        first,
        "a repeat answers the same"
    );
    assert_refused(second, 409, "invalid_transition").await;
    // The request and the centre's decision travel on different topics: the intake system may
    // read the decision first.
    let case = app
        .wait_for_case(&case_id, "the extension requested and approved", |c| {
            event_view(c, &event_id)["extensions"] == 1
                && !history_entries(c, "collaboration.extension_requested").is_empty()
        })
        .await;
    assert_eq!(
        history_entries(&case, "collaboration.extension_requested").len(),
        1,
        "{case}"
    );
}

#[actix_web::test]
async fn an_overdue_event_is_escalated_one_tier_up_exactly_once() {
    // Arrange: dispatched by the district centre on Tuesday 1 December, 10:00; due by the end
    // of Tuesday 8 December.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;

    // Act: Wednesday 9 December, unanswered.
    clock.set(at("2026-12-09T09:00:00+08:00"));
    let escalated = app
        .wait_for_case(&case_id, "the event escalated", |c| {
            !event_view(c, &event_id)["escalated_to"].is_null()
        })
        .await;
    app.wait_for_supervision_check(&clock).await;
    clock.set(at("2026-12-10T09:00:00+08:00"));
    app.wait_for_supervision_check(&clock).await;
    let later = app.get_case(&case_id).await;

    // Assert: to the city, the district centre's parent; once.
    assert_eq!(
        event_view(&escalated, &event_id)["escalated_to"],
        CITY,
        "{escalated}"
    );
    assert!(
        history_notes(&escalated, "collaboration.escalated", &[MANUAL, CITY]),
        "{escalated}"
    );
    assert_eq!(
        history_entries(&later, "collaboration.escalated").len(),
        1,
        "escalated once: {later}"
    );
    assert_eq!(escalations_on_the_bus(&app, &case_id), 1);
    let centres = app.get_json("/api/v1/supervision/centers").await;
    assert_eq!(
        entry(&centres, "centre", CITY)["escalations"],
        1,
        "{centres}"
    );
    assert_eq!(
        entry(&centres, "centre", DISTRICT)["escalations"],
        0,
        "{centres}"
    );
    let departments = app.get_json("/api/v1/supervision/departments").await;
    let manual = entry(&departments, "department", MANUAL);
    assert_eq!(manual["escalations"], 1, "{manual}");
    assert_eq!(manual["collaborations"]["open_overdue"], 1, "{manual}");

    // Still answerable: the case completes, the event late.
    let response = app
        .event_action(&event_id, "result", &json!({ "outcome": "agree" }))
        .await;
    assert_status(response, 200).await;
    app.wait_until_completed(&case_id).await;
    app.wait_until_supervision_has_read(&case_id).await;
    let departments = app.get_json("/api/v1/supervision/departments").await;
    let manual = &entry(&departments, "department", MANUAL)["collaborations"];
    assert_eq!(manual["completed"], 1, "{manual}");
    assert_eq!(manual["completed_on_time"], 0, "{manual}");
    assert_eq!(manual["open_overdue"], 0, "{manual}");
}

#[actix_web::test]
async fn an_overdue_street_event_is_escalated_to_its_district() {
    // Arrange: street_office decides by hand; residence_permit (public_security) asks it for
    // a verification, 3 working days, dispatched by 解放碑街道 on Tuesday 1 December: due by
    // the end of Friday 4 December (Wed 2, Thu 3, Fri 4).
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |settings| {
        make_manual(settings, "street_office");
    })
    .await;
    let case_id = app
        .submit_ok(&app.application_body("residence_permit"))
        .await;
    let event = app.wait_for_collaboration("street_office", &case_id).await;
    let event_id = event["event_id"].as_str().unwrap();
    assert_eq!(
        timestamp(&event["deadline"]),
        at("2026-12-05T00:00:00+08:00"),
        "{event}"
    );

    // Act: Monday 7 December.
    clock.set(at("2026-12-07T09:00:00+08:00"));
    let escalated = app
        .wait_for_case(&case_id, "the event escalated", |c| {
            !event_view(c, event_id)["escalated_to"].is_null()
        })
        .await;

    // Assert: one tier above the street centre.
    assert_eq!(
        event_view(&escalated, event_id)["escalated_to"],
        DISTRICT,
        "{escalated}"
    );
}

#[actix_web::test]
async fn an_overdue_event_dispatched_by_the_city_is_escalated_to_the_city() {
    // Arrange: public_security (city tier) answers by hand and must verify every individual
    // business registration; neither gives a collaboration time, so the default 3 working
    // days apply: dispatched Tuesday 1 December, due by the end of Friday 4 December.
    let (app, clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |settings| {
        make_manual(settings, "public_security");
        let matter = settings
            .matters
            .iter_mut()
            .find(|m| m.code == "individual_business_registration")
            .unwrap();
        matter.collaborators = vec![govfusion::domain::Collaborator {
            department: "public_security".into(),
            tier: govfusion::domain::Tier::City,
        }];
    })
    .await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    let event = app
        .wait_for_collaboration("public_security", &case_id)
        .await;
    let event_id = event["event_id"].as_str().unwrap();
    assert_eq!(
        timestamp(&event["deadline"]),
        at("2026-12-05T00:00:00+08:00"),
        "{event}"
    );

    // Act: Monday 7 December.
    clock.set(at("2026-12-07T09:00:00+08:00"));
    let escalated = app
        .wait_for_case(&case_id, "the event escalated", |c| {
            !event_view(c, event_id)["escalated_to"].is_null()
        })
        .await;

    // Assert: the city has no tier above; it receives the escalation itself.
    let event = event_view(&escalated, event_id);
    assert_eq!(event["tier_path"], json!(["重庆市"]), "{event}");
    assert_eq!(event["escalated_to"], CITY, "{event}");
}

#[actix_web::test]
async fn a_signature_with_a_bad_body_is_refused_and_signs_nothing() {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;
    let path = format!("/api/v1/collaborations/{event_id}/sign");

    // Act: a field (an `officer` no longer names anyone), a mistyped one, not JSON.
    let named = app.post_json(&path, &json!({ "officer": "王科长" })).await;
    let mistyped = app.post_json(&path, &json!({ "officer": 7 })).await;
    let not_json = app.post_raw(&path, "{officer").await;

    // Assert: refused, and the officer can still sign, in the name their token gives.
    assert_refused(named, 400, "invalid_body").await;
    assert_refused(mistyped, 400, "invalid_body").await;
    assert_refused(not_json, 400, "malformed_json").await;
    let wang = Caller::NamedOfficer(MANUAL.into(), "wang".into(), "王科长".into());
    let signed = app.post_json_as(&wang, &path, &json!({})).await;
    assert_status(signed, 200).await;
    let case = app
        .wait_for_event_status(&case_id, &event_id, "signed")
        .await;
    assert!(signed_by(&case, "wang", "王科长"), "{case}");
}

#[actix_web::test]
async fn a_signature_without_a_body_is_in_the_officers_name() {
    // Arrange
    let (app, _clock) = spawn_app_at("2026-12-01T10:00:00+08:00", |_| {}).await;
    let (case_id, event_id) = case_waiting_at_urban_management(&app).await;

    // Act
    let response = app
        .post_raw(&format!("/api/v1/collaborations/{event_id}/sign"), "")
        .await;

    // Assert
    assert_status(response, 200).await;
    let case = app
        .wait_for_event_status(&case_id, &event_id, "signed")
        .await;
    let officer = app.caller_for(&format!("/api/v1/collaborations/{event_id}/sign"));
    let claims = officer.claims().expect("an officer has claims");
    assert!(
        signed_by(
            &case,
            &claims.sub,
            claims.name.as_deref().unwrap_or_default()
        ),
        "{case}"
    );
}

/// Whether the case's history names the officer `id` (`name`) on its signature.
fn signed_by(case: &serde_json::Value, id: &str, name: &str) -> bool {
    history_entries(case, "collaboration.signed")
        .iter()
        .any(|h| h["officer"]["id"] == id && h["officer"]["name"] == name)
}
