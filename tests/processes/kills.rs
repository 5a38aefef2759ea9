//! Processes die mid-run: by kill -9, with no chance to finish anything, and by SIGTERM, which
//! must finish cleanly within the configured limit. Restarted, they rebuild their state from
//! the bus, and every case completes exactly once.

use crate::common::callers::Caller;
use crate::common::once::assert_each_step_once;
use crate::common::poll;
use crate::harness::{one_at_a_time, require, City, KAFKA_ENV, MATTERS};
use crate::raw::group_caught_up;
use std::time::Duration;

/// Waits until the consumer groups of the running governance and market processes have
/// committed every record on the topics they read (the group names and topics of
/// `src/systems.rs`).
async fn wait_until_committed(city: &City) {
    let prefix = &city.prefix;
    let topics = |suffixes: &[&str]| -> Vec<String> {
        suffixes.iter().map(|s| format!("{prefix}.{s}")).collect()
    };
    let groups = [
        (
            format!("{prefix}.governance"),
            topics(&[
                "collaboration.requests",
                "collaboration.events",
                "collaboration.results",
                "approvals",
            ]),
        ),
        (
            format!("{prefix}.department.market"),
            topics(&[
                "applications",
                "collaboration.events",
                "collaboration.results",
                "case.updates",
            ]),
        ),
    ];
    poll(
        "the governance and market groups to commit all they read",
        || async {
            for (group, topics) in &groups {
                group_caught_up(&city.brokers, group, topics).await?;
            }
            Ok(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a Kafka-protocol broker); .ci/run provides it"]
async fn every_case_completes_exactly_once_when_each_role_is_killed_in_turn() {
    let brokers = require(KAFKA_ENV);
    let _serial = one_at_a_time().await;
    // Arrange: with fire and the street office down, collaborations stay open — the city holds
    // open requests and the market department holds cases waiting for answers.
    let mut city = City::start(&brokers, &[]).await;
    let mut ids = city.submit(6).await;
    city.process("fire-street").kill9();
    let waiting = city.submit(9).await;
    let collaborating: Vec<String> = waiting
        .iter()
        .enumerate()
        .filter(|(i, _)| MATTERS[i % MATTERS.len()] != "individual_business_registration")
        .map(|(_, id)| id.clone())
        .collect();
    city.wait_all_in_status(&collaborating, "collaborating")
        .await;
    ids.extend(waiting);
    // Wait until the running groups have committed all they handled (librdkafka commits
    // stored offsets every 5 s), so that what happened is known after a restart only from the
    // state topic.
    wait_until_committed(&city).await;

    // Act: kill -9 each role in turn while that state is open, with more cases arriving.
    city.process("governance").kill9();
    ids.extend(city.submit(3).await);
    city.process("governance").restart().await;
    city.process("market-a").kill9();
    ids.extend(city.submit(3).await);
    city.process("fire-street").restart().await;
    city.process("intake").kill9();
    city.process("intake").restart().await;
    ids.extend(city.submit(6).await);
    city.process("market-a").restart().await;
    ids.extend(city.submit(3).await);

    // Assert
    let cases = city.wait_all_completed(&ids).await;
    assert_eq!(cases.len(), ids.len());
    city.assert_exactly_once(&cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a Kafka-protocol broker); .ci/run provides it"]
async fn sigterm_stops_each_role_cleanly_and_nothing_is_missing_after_restart() {
    let brokers = require(KAFKA_ENV);
    let _serial = one_at_a_time().await;
    // Arrange: GOVFUSION__SERVICE__SHUTDOWN_TIMEOUT_MS is 15 s in every process.
    let limit = Duration::from_secs(15);
    let mut city = City::start(&brokers, &[]).await;
    let mut ids = city.submit(12).await;

    // Act: each role is told to stop while cases are in flight.
    let mut statuses = Vec::new();
    for victim in ["governance", "market-a", "intake"] {
        ids.extend(city.submit(6).await);
        let status = city.process(victim).sigterm(limit + Duration::from_secs(5));
        statuses.push((victim, status));
        city.process(victim).restart().await;
    }
    ids.extend(city.submit(6).await);

    // Assert
    for (victim, status) in statuses {
        let status = status.unwrap_or_else(|| panic!("{victim} still ran after SIGTERM"));
        assert!(
            status.success(),
            "{victim} exited with {status} after SIGTERM"
        );
    }
    let cases = city.wait_all_completed(&ids).await;
    city.assert_exactly_once(&cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs GOVFUSION_TEST_KAFKA (a Kafka-protocol broker); .ci/run provides it"]
async fn the_intake_process_killed_while_it_writes_its_cases_loses_and_doubles_no_row() {
    let brokers = require(KAFKA_ENV);
    let _serial = one_at_a_time().await;
    // Arrange: cases on their way, so that the intake process writes rows and offsets to its
    // case repository every few milliseconds.
    let mut city = City::start(&brokers, &[]).await;
    let mut ids = city.submit(9).await;

    // Act: kill -9 the intake process three times right after submissions, while what it
    // observes of the earlier cases is being written; then more cases.
    for _ in 0..3 {
        ids.extend(city.submit(3).await);
        city.process("intake").kill9();
        city.process("intake").restart().await;
    }
    ids.extend(city.submit(6).await);

    // Assert: each case once in the repository's list, completed, and no step of its history
    // twice — neither a row lost with a killed transaction nor a record applied twice after
    // the restart resumed from the offsets written with the rows.
    let cases = city.wait_all_completed(&ids).await;
    let mut expected: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.clone(), "\"completed\"".to_owned()))
        .collect();
    expected.sort();
    // The list is written a few milliseconds after a case changes (it may trail
    // `GET /cases/{id}`), so it is read until it agrees; a row lost or doubled never does.
    poll("every case listed once, completed", || async {
        let listed = city
            .intake_json_as(&Caller::Supervisor, "/api/v1/cases?limit=200")
            .await;
        let mut rows: Vec<(String, String)> = listed["cases"]
            .as_array()
            .expect("a list of cases")
            .iter()
            .map(|c| {
                (
                    c["case_id"].as_str().unwrap_or_default().to_owned(),
                    c["status"].to_string(),
                )
            })
            .collect();
        rows.sort();
        if rows == expected {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    for case in &cases {
        assert_each_step_once(case);
    }
    city.assert_exactly_once(&cases).await;
}
