//! `GET /api/v1/cases`: the cases of the case repository, which the intake system keeps up to
//! date. A supervisor pages through every case, an officer sees their department's, filters
//! narrow the list, bad values are refused naming the parameter, the database holds no
//! personal data in clear, and a restart keeps every case listed.

use crate::helpers::{
    assert_refused, json_body, make_manual, poll, spawn_app_with, Caller, TestApp,
};
use govfusion::bus::memory::MemoryBus;
use govfusion::clock::SystemClock;
use govfusion::settings::BusKind;
use govfusion::store::{CaseFilter, CaseRepository};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The manual department whose case stays waiting for a decision.
const MANUAL: &str = "transport";

/// A city where `market` completes two cases (two matters) and `transport`, staffed by
/// people, holds one waiting for a decision. Returns the app, the market cases (business
/// registration first) and the transport case, once every case is listed with its status.
async fn city_with_cases() -> (TestApp, Vec<String>, String) {
    let app = spawn_app_with(|settings| make_manual(settings, MANUAL)).await;
    let registration = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    let licence = app
        .submit_ok(&app.application_body("food_business_licence"))
        .await;
    let waiting = app
        .submit_ok(&app.application_body("road_transport_permit"))
        .await;
    app.wait_until_completed(&registration).await;
    app.wait_until_completed(&licence).await;
    app.wait_for_inbox_case(MANUAL, &waiting).await;
    let market = vec![registration, licence];
    wait_listed(&app, &market, "completed").await;
    (app, market, waiting)
}

/// Polls the supervisor's list until each of `cases` is in it with `status`.
async fn wait_listed(app: &TestApp, cases: &[String], status: &str) {
    poll(&format!("{cases:?} listed as {status}"), || async {
        let listed = app.get_as(&Caller::Supervisor, "/api/v1/cases").await;
        let listed = json_body(listed).await;
        let all_there = cases.iter().all(|id| {
            summaries(&listed)
                .iter()
                .any(|c| c["case_id"] == id.as_str() && c["status"] == status)
        });
        if all_there {
            Ok(())
        } else {
            Err(listed.to_string())
        }
    })
    .await
}

/// The summaries of a list answer.
fn summaries(list: &Value) -> Vec<Value> {
    list["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list of cases: {list}"))
        .clone()
}

/// The case ids of a list answer, in order.
fn ids(list: &Value) -> Vec<String> {
    summaries(list)
        .iter()
        .map(|c| c["case_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A time of a summary.
fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `GET path` as `caller`, asserting 200; the JSON.
async fn list_as(app: &TestApp, caller: &Caller, path: &str) -> Value {
    let response = app.get_as(caller, path).await;
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 200, "GET {path} as {caller:?}: {body}");
    body
}

#[actix_web::test]
async fn a_supervisor_pages_through_every_case_once_newest_first() {
    // Arrange
    let (app, market, waiting) = city_with_cases().await;

    // Act: one case a page, following `next` to the end.
    let mut seen = Vec::new();
    let mut path = "/api/v1/cases?limit=1".to_owned();
    loop {
        let page = list_as(&app, &Caller::Supervisor, &path).await;
        assert!(summaries(&page).len() <= 1, "{page}");
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/cases?limit=1&cursor={next}"),
            None => break,
        }
    }

    // Assert: every case once, the last submitted first; a summary carries no applicant.
    let expected = vec![waiting.clone(), market[1].clone(), market[0].clone()];
    assert_eq!(seen, expected);
    let all = list_as(&app, &Caller::Operator, "/api/v1/cases").await;
    let first = &summaries(&all)[0];
    let mut keys: Vec<&str> = first
        .as_object()
        .expect("a summary")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "case_id",
            "department",
            "matter_code",
            "status",
            "submitted_at",
            "updated_at"
        ]
    );
    assert_eq!(first["department"], MANUAL, "{all}");
}

#[actix_web::test]
async fn an_officer_lists_only_the_cases_of_their_department() {
    // Arrange
    let (app, market, _) = city_with_cases().await;
    let officer = Caller::officer("market");

    // Act
    let own = list_as(&app, &officer, "/api/v1/cases").await;
    let asked_own = list_as(&app, &officer, "/api/v1/cases?department=market").await;
    let other = app
        .get_as(&officer, "/api/v1/cases?department=transport")
        .await;

    // Assert
    let listed: HashSet<String> = ids(&own).into_iter().collect();
    assert_eq!(listed, market.iter().cloned().collect(), "{own}");
    assert_eq!(ids(&asked_own), ids(&own));
    assert_refused(other, 403, "forbidden").await;
}

#[actix_web::test]
async fn filters_by_status_and_matter_narrow_the_list() {
    // Arrange
    let (app, market, waiting) = city_with_cases().await;
    let supervisor = Caller::Supervisor;

    // Act
    let completed = list_as(&app, &supervisor, "/api/v1/cases?status=completed").await;
    let licences = list_as(
        &app,
        &supervisor,
        "/api/v1/cases?matter=food_business_licence",
    )
    .await;
    let transport = list_as(&app, &supervisor, "/api/v1/cases?department=transport").await;
    let none_yet = list_as(
        &app,
        &supervisor,
        "/api/v1/cases?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
    )
    .await;

    // Assert: a completed case changed after it was submitted.
    for case in summaries(&completed) {
        assert!(
            time(&case["updated_at"]) > time(&case["submitted_at"]),
            "{case}"
        );
    }
    let completed: HashSet<String> = ids(&completed).into_iter().collect();
    assert_eq!(completed, market.iter().cloned().collect());
    assert_eq!(ids(&licences), vec![market[1].clone()]);
    assert_eq!(ids(&transport), vec![waiting]);
    assert_eq!(ids(&none_yet), Vec::<String>::new());
}

#[actix_web::test]
async fn callers_outside_the_grant_get_403_and_bad_values_422_naming_the_parameter() {
    // Arrange
    let (app, _, _) = city_with_cases().await;
    let supervisor = Caller::Supervisor;

    // Act and Assert: who may not list.
    for caller in [
        Caller::applicant(),
        Caller::Terminal("pc-web".into()),
        Caller::Dispatcher("500103".into()),
        Caller::Service,
    ] {
        let response = app.get_as(&caller, "/api/v1/cases").await;
        assert_refused(response, 403, "forbidden").await;
    }
    // Values that cannot be.
    for (query, parameter) in [
        ("status=lost", "status"),
        ("cursor=not-a-cursor!", "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("from=yesterday", "from"),
        ("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "from"),
    ] {
        let response = app
            .get_as(&supervisor, &format!("/api/v1/cases?{query}"))
            .await;
        let body = assert_refused(response, 422, "invalid_field").await;
        assert_eq!(body["field"], parameter, "{query}: {body}");
    }
}

#[actix_web::test]
async fn the_repository_holds_no_personal_data_in_clear() {
    // Arrange
    let (app, market, waiting) = city_with_cases().await;

    // Act: read the database file as it rests.
    let repository = CaseRepository::open(&app.systems.settings.store)
        .await
        .expect("the test's database opens");
    let page = repository
        .list(&CaseFilter::default(), None, 200)
        .await
        .expect("the rows read");
    repository.close().await;

    // Assert: every case is there, its applicant sealed; no ID number, phone or name in clear.
    let stored: HashSet<&str> = page.rows.iter().map(|r| r.case_id.as_str()).collect();
    let expected: HashSet<&str> = market
        .iter()
        .chain([&waiting])
        .map(String::as_str)
        .collect();
    assert_eq!(stored, expected);
    for row in &page.rows {
        let view = row.view.get();
        let json: serde_json::Value = row.view.read().expect("the view is JSON");
        assert!(
            json["application"]["applicant"]["ciphertext"].is_string(),
            "the applicant is sealed: {view}"
        );
        for personal in ["500103199001011232", "13800000000", "张三"] {
            assert!(!view.contains(personal), "{personal} in clear: {view}");
        }
    }
}

#[actix_web::test]
async fn every_case_is_still_listed_after_a_restart() {
    // Arrange: two completed cases on a bus that outlives the service.
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    let bus = MemoryBus::durable(&settings.bus);
    let app = TestApp::start_on(settings, Arc::new(SystemClock), bus, crate::POLL_FOR).await;
    let first = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;
    let second = app
        .submit_ok(&app.application_body("road_transport_permit"))
        .await;
    app.wait_until_completed(&first).await;
    app.wait_until_completed(&second).await;
    let cases = vec![first, second];
    wait_listed(&app, &cases, "completed").await;

    // Act
    let app = app.restart().await;

    // Assert
    let listed = list_as(&app, &Caller::Supervisor, "/api/v1/cases").await;
    let listed: HashSet<String> = ids(&listed).into_iter().collect();
    assert_eq!(listed, cases.into_iter().collect());
}
