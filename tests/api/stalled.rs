//! Stalled cases, as an operator sees them: a case whose message a department lost is listed
//! with its last step, and re-driving it completes it once; a completed case is neither listed
//! nor re-driven.

use crate::common::once::{
    assert_one_message_per_cause, ids_by_case_and_kind, sent_record, ONCE_PER_COLLABORATING_CASE,
};
use crate::helpers::{assert_refused, assert_status, at, poll, spawn_app, spawn_app_at, TestApp};
use govfusion::bus::{Record, Topic};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A weekday morning in the city's time: no deadline is near.
const MORNING: &str = "2026-12-01T09:00:00+08:00";

/// `GET /api/v1/operations/stalled` with `query`, asserting 200.
async fn stalled(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/operations/stalled{query}")).await;
    assert_status(response, 200).await
}

/// The entry of `case_id` in a listing of stalled cases, if listed.
fn listed<'a>(listing: &'a Value, case_id: &str) -> Option<&'a Value> {
    listing["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("no list of cases: {listing}"))
        .iter()
        .find(|case| case["case_id"] == case_id)
}

/// `POST /api/v1/operations/cases/{case_id}/redrive`.
async fn redrive(app: &TestApp, case_id: &str) -> reqwest::Response {
    app.post_json(
        &format!("/api/v1/operations/cases/{case_id}/redrive"),
        &json!({}),
    )
    .await
}

/// The ids of the `application.published` records of `case_id` on the bus, in order.
fn published_ids(app: &TestApp, case_id: &str) -> Vec<String> {
    app.memory_bus()
        .all_records(Topic::Applications)
        .iter()
        .map(|(_, record)| sent_record(record))
        .filter(|(key, kind, _)| *key == case_id && *kind == "application.published")
        .map(|(_, _, id)| id.to_owned())
        .collect()
}

#[actix_web::test]
async fn a_case_whose_application_a_department_lost_is_listed_and_completes_once_re_driven() {
    // Arrange: the market department's group loses the next application it is given.
    let (app, clock) = spawn_app_at(MORNING, |_| {}).await;
    let case_id = app.submit_lost_by_market().await;
    let case = app.get_case(&case_id).await;
    assert_eq!(case["status"], "published", "{case}");
    let published = published_ids(&app, &case_id);
    assert_eq!(published.len(), 1, "{published:?}");
    clock.set(at("2026-12-01T09:20:00+08:00"));

    // Act: the operator lists the stalled cases, then re-drives this one.
    let by_default = stalled(&app, "").await;
    let too_young = stalled(&app, "?idle_secs=1201").await;
    let all_open = stalled(&app, "?idle_secs=0").await;
    let response = redrive(&app, &case_id).await;

    // Assert: listed (idle 20 minutes, past the default 10) with the step that was lost...
    let entry = listed(&by_default, &case_id)
        .unwrap_or_else(|| panic!("case {case_id} not listed as stalled: {by_default}"));
    assert_eq!(entry["status"], "published", "{entry}");
    assert_eq!(entry["matter"], "restaurant_opening", "{entry}");
    assert_eq!(entry["department"], "market", "{entry}");
    assert_eq!(entry["idle_secs"], 1200, "{entry}");
    let step = &entry["last_step"];
    assert_eq!(step["type"], "application.published", "{step}");
    assert_eq!(step["message_id"], published[0].as_str(), "{step}");
    assert_eq!(step["to"], "department/market", "{step}");
    assert!(listed(&too_young, &case_id).is_none(), "{too_young}");
    assert!(listed(&all_open, &case_id).is_some(), "{all_open}");
    // ...the re-drive sent that very message again, with its id...
    let redriven = assert_status(response, 200).await;
    assert_eq!(redriven["resent"], 1, "{redriven}");
    assert_eq!(
        redriven["messages"][0]["id"],
        published[0].as_str(),
        "{redriven}"
    );
    assert_eq!(redriven["messages"][0]["type"], "application.published");
    assert_eq!(
        published_ids(&app, &case_id),
        [published[0].clone(), published[0].clone()]
    );
    // ...and the case completed with one acceptance and one approval, and is stalled no more.
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    let records = flow_records(&app);
    assert_one_message_per_cause(
        std::slice::from_ref(&case_id),
        &ONCE_PER_COLLABORATING_CASE,
        records.iter().map(|(_, record)| sent_record(record)),
    );
    assert!(listed(&stalled(&app, "?idle_secs=0").await, &case_id).is_none());
}

#[actix_web::test]
async fn a_lost_collaboration_completion_is_re_driven_with_its_whole_step_and_nothing_twice() {
    // Arrange: the market department loses the completion of its case's collaboration, as the
    // restarted department of issue 12 did: the case waits in `collaborating` for good.
    let app = spawn_app().await;
    let flow = app.systems.flow_group.clone().expect("departments run");
    let bus = app.memory_bus();
    bus.lose_next_deliveries(&flow, "department/market", "collaboration.completed", 1);
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    poll("the market department to lose the completion", || async {
        match bus.deliveries_lost() {
            1 => Ok(()),
            lost => Err(format!("{lost} deliveries lost")),
        }
    })
    .await;
    let waiting = app.wait_for_status(&case_id, "collaborating").await;
    assert_eq!(waiting["status"], "collaborating", "{waiting}");

    let before = ids_of(&app, &case_id);

    // Act
    let listing = stalled(&app, "?idle_secs=0").await;
    let response = redrive(&app, &case_id).await;

    // Assert: the whole step went again — the request, every hop and answer, the completion —
    // and each system dropped what it had handled: no message of any kind under a new id,
    // only the approval the completion was waiting for.
    let entry = listed(&listing, &case_id).unwrap_or_else(|| panic!("not listed: {listing}"));
    assert_eq!(entry["status"], "collaborating", "{entry}");
    let redriven = assert_status(response, 200).await;
    let kinds: Vec<&str> = redriven["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.first(),
        Some(&"collaboration.requested"),
        "{redriven}"
    );
    assert!(kinds.contains(&"collaboration.completed"), "{redriven}");
    assert_eq!(redriven["resent"], kinds.len());
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(
        case["collaboration_events"].as_array().map(Vec::len),
        Some(2)
    );
    let after = ids_of(&app, &case_id);
    for (kind, ids) in &before {
        assert_eq!(
            after.get(kind),
            Some(ids),
            "{kind}: new ids after the re-drive"
        );
    }
    let records = flow_records(&app);
    let sent = records.iter().map(|(_, record)| sent_record(record));
    assert_one_message_per_cause(
        std::slice::from_ref(&case_id),
        &ONCE_PER_COLLABORATING_CASE,
        sent,
    );
}

/// Every record on the (memory) bus's flow topics.
fn flow_records(app: &TestApp) -> Vec<(u32, Arc<Record>)> {
    Topic::flow()
        .into_iter()
        .flat_map(|topic| app.memory_bus().all_records(topic))
        .collect()
}

/// The distinct message ids of `case_id` on the bus, by message type.
fn ids_of(app: &TestApp, case_id: &str) -> HashMap<String, HashSet<String>> {
    let records = flow_records(app);
    ids_by_case_and_kind(records.iter().map(|(_, record)| sent_record(record)))
        .into_iter()
        .filter(|((case, _), _)| *case == case_id)
        .map(|((_, kind), ids)| {
            let ids = ids.into_iter().map(str::to_owned).collect();
            (kind.to_owned(), ids)
        })
        .collect()
}

#[actix_web::test]
async fn a_completed_case_is_not_listed_and_is_not_re_driven() {
    // Arrange
    let app = spawn_app().await;
    let case_id = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    app.wait_until_completed(&case_id).await;

    // Act
    let listing = stalled(&app, "?idle_secs=0").await;
    let completed = redrive(&app, &case_id).await;
    let unknown = redrive(&app, "no-such-case").await;
    let bad_query = app.get("/api/v1/operations/stalled?idle_secs=soon").await;

    // Assert
    assert!(listed(&listing, &case_id).is_none(), "{listing}");
    assert_refused(completed, 409, "case_completed").await;
    assert_refused(unknown, 404, "unknown_case").await;
    assert_refused(bad_query, 400, "invalid_query").await;
}

#[actix_web::test]
async fn stalled_cases_are_listed_oldest_first_and_bounded() {
    // Arrange: two cases the market department never gets, submitted a minute apart.
    let (app, clock) = spawn_app_at(MORNING, |_| {}).await;
    let flow = app.systems.flow_group.clone().expect("departments run");
    app.memory_bus()
        .lose_next_deliveries(&flow, "department/market", "application.published", 2);
    let body = app.application_body("individual_business_registration");
    let first = app.submit_ok(&body).await;
    app.wait_for_status(&first, "published").await;
    clock.set(at("2026-12-01T09:01:00+08:00"));
    let second = app.submit_ok(&body).await;
    app.wait_for_status(&second, "published").await;
    clock.set(at("2026-12-01T09:11:00+08:00"));

    // Act
    let both = stalled(&app, "").await;
    let one = stalled(&app, "?max=1").await;

    // Assert: ten and eleven minutes idle, the older first; `max` bounds the list, not the
    // count.
    let ids: Vec<&str> = both["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "{both}");
    assert_eq!(both["cases"][0]["idle_secs"], 660);
    assert_eq!(both["cases"][1]["idle_secs"], 600);
    assert_eq!(one["total"], 2, "{one}");
    assert_eq!(one["cases"].as_array().map(Vec::len), Some(1), "{one}");
}

#[actix_web::test]
async fn a_stalled_case_out_of_memory_is_listed_and_re_driven_from_the_repository() {
    // Arrange: one open case stays in memory; the market department loses the first case's
    // application, and a second case, changing later, pushes the first out of memory.
    let (app, clock) = spawn_app_at(MORNING, |s| s.store.open_cases_in_memory = 1).await;
    let case_id = app.submit_lost_by_market().await;
    let other = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    app.wait_until_completed(&other).await;
    let holding = app.intake_holding().await;
    clock.set(at("2026-12-01T09:20:00+08:00"));

    // Act: the operator lists the stalled cases and re-drives the one out of memory.
    let listing = stalled(&app, "").await;
    let response = redrive(&app, &case_id).await;

    // Assert: it was out of memory, listed with the step that was lost, and the re-drive,
    // reading it back with its current step, completed it.
    assert_eq!(holding.away, 1, "{holding:?}");
    let entry = listed(&listing, &case_id)
        .unwrap_or_else(|| panic!("case {case_id} not listed as stalled: {listing}"));
    assert_eq!(listing["total"], 1, "{listing}");
    assert_eq!(entry["status"], "published", "{entry}");
    assert_eq!(entry["department"], "market", "{entry}");
    assert_eq!(entry["idle_secs"], 1200, "{entry}");
    assert_eq!(entry["last_step"]["type"], "application.published");
    let redriven = assert_status(response, 200).await;
    assert_eq!(redriven["resent"], 1, "{redriven}");
    assert_eq!(redriven["messages"][0]["type"], "application.published");
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(
        case["approval"]["outcome"]["decision"], "approved",
        "{case}"
    );
    assert_eq!(app.intake_holding().await.away, 0);
}
