//! Two intake processes behind one address (issue 14, item 3): each issues the case ids of its
//! share of the partitions, feeds them to the city centre (which reads both feeds) and builds
//! their views in the one PostgreSQL case repository; either answers for any case, and one
//! killed and started again goes on with its own cases and feed.

use crate::common::callers::Caller;
use crate::common::env::POSTGRES_ENV;
use crate::harness::{
    application, one_at_a_time, require, City, Process, KAFKA_ENV, MATTERS, WAIT_FOR,
};
use crate::test_store::TestStore;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a broker) and GOVFUSION_TEST_POSTGRES (a PostgreSQL server)"]
async fn cases_taken_by_either_of_two_intake_processes_complete_once_and_either_answers_for_all_across_a_restart(
) {
    let _serial = one_at_a_time().await;
    let brokers = require(KAFKA_ENV);
    require(POSTGRES_ENV);
    let store = TestStore::postgres().await;
    // Arrange: intake instances 0 and 1 on one PostgreSQL repository, governance reading both
    // feeds, one market process, fire with the street office.
    let prefix = format!("p{}", uuid::Uuid::new_v4().simple());
    let mut env = City::env(&brokers, &prefix);
    env.push(("GOVFUSION__SERVICE__INTAKE_INSTANCES".into(), "2".into()));
    let mut intake_env = env.clone();
    intake_env.push(("GOVFUSION__STORE__URL".into(), store.settings.url.clone()));
    let intakes: Vec<Process> = (0..2)
        .map(|instance| {
            let mut env = intake_env.clone();
            env.push((
                "GOVFUSION__SERVICE__INTAKE_INSTANCE".into(),
                instance.to_string(),
            ));
            let name = if instance == 0 { "intake" } else { "intake-1" };
            Process::start(name, "intake", env)
        })
        .collect();
    let mut governance_env = env.clone();
    let urls: Vec<String> = intakes.iter().map(Process::url).collect();
    governance_env.push((
        "GOVFUSION__SERVICE__INTAKE_FEED_URLS".into(),
        urls.join(","),
    ));
    let mut processes = intakes;
    processes.push(Process::start("governance", "governance", governance_env));
    processes.push(Process::start("market-a", "department:market", env.clone()));
    processes.push(Process::start(
        "fire-street",
        "department:fire,department:street_office",
        env,
    ));
    let mut city = City::of(&brokers, &prefix, processes).await;

    // Act: six cases through each intake process, the matters in turn; intake 1 killed and
    // started again; three more through each.
    let mut ids = submit_to_each(&city, 6).await;
    city.wait_all_completed(&ids).await;
    city.process("intake-1").restart().await;
    ids.extend(submit_to_each(&city, 3).await);

    // Assert: every case completes once, as intake 0 shows it; intake 1 shows each the same,
    // and lists all eighteen among the applicant's own cases.
    let cases = city.wait_all_completed(&ids).await;
    city.assert_exactly_once(&cases).await;
    for case in &cases {
        let id = case["case_id"].as_str().unwrap_or_default();
        let there = wait_completed_at(&city, "intake-1", id).await;
        assert_eq!(
            there["history"], case["history"],
            "case {id} differs between the processes"
        );
    }
    let own = city
        .json_at(
            "intake-1",
            &Caller::applicant(),
            "/api/v1/applicants/me/cases",
        )
        .await;
    let listed: Vec<&str> = own_case_ids(&own);
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} not among {listed:?}");
    }
    drop(city);
    store.finish().await;
}

/// Submits `n` applications to each intake process, the matters in turn; their case ids.
async fn submit_to_each(city: &City, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for name in ["intake", "intake-1"] {
        for i in 0..n {
            let (status, answer) = city
                .post_application_to(name, &application(MATTERS[i % MATTERS.len()]))
                .await;
            assert_eq!(status, 202, "{name}: {answer}");
            ids.push(answer["case_id"].as_str().expect("a case id").to_owned());
        }
    }
    ids
}

/// Waits until `process` shows case `id` completed; the case.
async fn wait_completed_at(city: &City, process: &str, id: &str) -> Value {
    let deadline = Instant::now() + WAIT_FOR;
    loop {
        let case = city
            .json_at(
                process,
                &Caller::applicant(),
                &format!("/api/v1/cases/{id}"),
            )
            .await;
        if case["status"] == "completed" {
            return case;
        }
        assert!(
            Instant::now() < deadline,
            "{process}: {id} is {}",
            case["status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The case ids of an applicant's list of own cases.
fn own_case_ids(own: &Value) -> Vec<&str> {
    own["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|case| case["case_id"].as_str())
        .collect()
}
