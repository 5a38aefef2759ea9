//! The state topic's store on both engines (see `govfusion::store::state`): the latest snapshot
//! of each system and case as the state group read it, open ones for a restart to take back,
//! closed markers looked up one by one and deleted past the retention.

// Only the PostgreSQL variable of the shared list is used here.
#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
// How a store was opened (to open it again) is not used here.
#[allow(dead_code)]
#[macro_use]
#[path = "common/test_store.rs"]
mod test_store;

use chrono::{DateTime, Duration, TimeZone, Utc};
use govfusion::bus::{Record, Topic};
use govfusion::store::{CaseWriter, ClosedStates, StateRow, StoredOffset, StoredSnapshot};
use serde_json::json;
use std::collections::HashMap;
use test_store::TestStore;

/// The state topic of these tests.
const TOPIC: &str = "govfusion.state";
/// A department, as the `target` of its snapshots names it.
const MARKET: &str = "department/market";
/// The intake system.
const INTAKE: &str = "intake";

/// 2027-01-01T00:00:00Z plus `hours`.
fn hour(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
}

/// A snapshot record of `system` for `case_id` holding `state`, as a system writes it.
fn snapshot(system: &str, case_id: &str, version: u64, state: serde_json::Value) -> Record {
    let envelope = json!({
        "id": format!("snapshot:{system}:{case_id}#{version}"),
        "type": "state.snapshot",
        "case_id": case_id,
        "source": system,
        "target": system,
        "occurred_at": "2027-01-01T00:00:00Z",
        "trace_id": "",
        "schema": 1,
        "data": { "version": version, "state": state },
    });
    Record {
        topic: Topic::State,
        key: format!("{system}|{case_id}"),
        headers: vec![("target".into(), system.into())],
        payload: serde_json::to_vec(&envelope).unwrap().into(),
    }
}

/// The row of `record` read at (`partition`, `offset`).
fn row(system: &str, record: &Record, partition: i32, offset: i64) -> StateRow {
    StateRow::of(TOPIC, system, record, partition, offset)
}

/// An open snapshot's state.
fn open_state(note: &str) -> serde_json::Value {
    json!({ "case": { "note": note } })
}

/// A closed marker's state, closed at `at`.
fn closed_state(at: DateTime<Utc>) -> serde_json::Value {
    json!({ "closed_at": at })
}

/// Writes `rows` in one transaction.
async fn write(store: &TestStore, rows: &[StateRow]) {
    let mut tx = store.repo.begin().await.unwrap();
    for row in rows {
        tx.upsert_state(row).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The payloads of `snapshots`, as JSON.
fn states(snapshots: &[StoredSnapshot]) -> Vec<serde_json::Value> {
    let mut states: Vec<serde_json::Value> = snapshots
        .iter()
        .map(|s| {
            serde_json::from_slice::<serde_json::Value>(&s.payload).unwrap()["data"]["state"]
                .clone()
        })
        .collect();
    states.sort_by_key(|state| state.to_string());
    states
}

async fn a_row_names_the_case_and_reads_whether_it_is_closed(_store: &TestStore) {
    // Arrange
    let open = snapshot(MARKET, "c-1", 1, open_state("a"));
    let closed = snapshot(MARKET, "c-1", 2, closed_state(hour(1)));
    let intake = snapshot(
        INTAKE,
        "c-1",
        3,
        json!({ "sequence": 7, "closed_at": hour(2) }),
    );

    // Act
    let rows = [
        row(MARKET, &open, 0, 1),
        row(MARKET, &closed, 0, 2),
        row(INTAKE, &intake, 0, 3),
    ];

    // Assert: the case, not the record key (`{system}|{case}`); closed only with `closed_at`.
    assert!(rows.iter().all(|r| r.case_id == "c-1"), "{rows:?}");
    assert_eq!(rows[0].closed_at, None);
    assert_eq!(rows[1].closed_at, Some(hour(1)));
    assert_eq!(
        (rows[2].closed_at, rows[2].sequence),
        (Some(hour(2)), Some(7))
    );
}

async fn a_snapshot_read_earlier_never_replaces_one_read_later(store: &TestStore) {
    // Arrange: version 2 read at offset 9, then version 1 at offset 4 (a second state group
    // that lags behind the first).
    let later = row(
        MARKET,
        &snapshot(MARKET, "c-1", 2, open_state("later")),
        0,
        9,
    );
    let earlier = row(
        MARKET,
        &snapshot(MARKET, "c-1", 1, open_state("earlier")),
        0,
        4,
    );

    // Act
    write(store, &[later]).await;
    write(store, &[earlier]).await;

    // Assert
    let open = store.repo.open_snapshots(TOPIC, MARKET).await.unwrap();
    assert_eq!(states(&open), vec![open_state("later")]);
    assert_eq!((open[0].partition, open[0].offset), (0, 9));
}

async fn a_lower_version_read_later_never_replaces_a_higher_one(store: &TestStore) {
    // Arrange: a centre published version 1 and then version 2 of a case's snapshot, and the
    // partition took them in the other order — version 2 at offset 3, version 1 at offset 4.
    let newer = row(
        MARKET,
        &snapshot(MARKET, "c-1", 2, open_state("both events routed")),
        4,
        3,
    );
    let older = row(
        MARKET,
        &snapshot(MARKET, "c-1", 1, open_state("one event routed")),
        4,
        4,
    );

    // Act: the state group reads them in offset order.
    write(store, &[newer]).await;
    write(store, &[older]).await;

    // Assert: the store keeps the highest version, as a system reading the topic does.
    let open = store.repo.open_snapshots(TOPIC, MARKET).await.unwrap();
    assert_eq!(states(&open), vec![open_state("both events routed")]);
    assert_eq!((open[0].partition, open[0].offset), (4, 3));
}

async fn a_batch_of_more_rows_than_one_statement_takes_writes_each_by_the_same_rule(
    store: &TestStore,
) {
    // Arrange: more cases than one statement writes (500), at version 2, and the same cases
    // at version 1 read later.
    let cases: Vec<String> = (0..1_201).map(|n| format!("c-{n:04}")).collect();
    let rows = |version: u64, offset: i64| -> Vec<StateRow> {
        cases
            .iter()
            .map(|case_id| {
                let state = open_state(&format!("{case_id} v{version}"));
                let record = snapshot(MARKET, case_id, version, state);
                row(MARKET, &record, 1, offset)
            })
            .collect()
    };
    let (newer, older) = (rows(2, 10), rows(1, 20));

    // Act: each set in one call.
    let mut tx = store.repo.begin().await.unwrap();
    tx.upsert_states(&newer.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    tx.upsert_states(&older.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Assert: every case is there once, at the higher version.
    let open = store.repo.open_snapshots(TOPIC, MARKET).await.unwrap();
    let mut found = states(&open);
    found.sort_by_key(|state| state.to_string());
    let expected: Vec<serde_json::Value> = cases
        .iter()
        .map(|case_id| open_state(&format!("{case_id} v2")))
        .collect();
    assert_eq!(found.len(), 1_201);
    assert_eq!(found, expected);
}

async fn open_snapshots_are_a_systems_open_cases_and_markers_are_found_one_by_one(
    store: &TestStore,
) {
    // Arrange: c-1 open and c-2 closed at market; c-1 open at the intake system.
    write(
        store,
        &[
            row(MARKET, &snapshot(MARKET, "c-1", 1, open_state("c-1")), 0, 1),
            row(MARKET, &snapshot(MARKET, "c-2", 1, open_state("c-2")), 1, 1),
            row(
                MARKET,
                &snapshot(MARKET, "c-2", 2, closed_state(hour(1))),
                1,
                2,
            ),
            row(
                INTAKE,
                &snapshot(INTAKE, "c-1", 1, open_state("intake")),
                0,
                3,
            ),
        ],
    )
    .await;

    // Act
    let open = store.repo.open_snapshots(TOPIC, MARKET).await.unwrap();
    let closed = store
        .repo
        .closed_snapshot(TOPIC, MARKET, "c-2")
        .await
        .unwrap();
    let not_closed = store
        .repo
        .closed_snapshot(TOPIC, MARKET, "c-1")
        .await
        .unwrap();
    let elsewhere = store
        .repo
        .closed_snapshot("other.state", MARKET, "c-2")
        .await
        .unwrap();

    // Assert
    assert_eq!(states(&open), vec![open_state("c-1")]);
    let marker: serde_json::Value =
        serde_json::from_slice(&closed.expect("c-2 is closed")).unwrap();
    assert_eq!(marker["data"]["state"], closed_state(hour(1)));
    assert_eq!((not_closed, elsewhere), (None, None));
}

async fn the_intake_systems_last_position_is_its_highest_closed_one_of_its_own(store: &TestStore) {
    // Arrange: closed at positions 3, 11, 8 and 5; an open case at 12.
    let mut rows = Vec::new();
    let closed = [("c-3", 3), ("c-11", 11), ("c-8", 8), ("c-5", 5)];
    for (offset, (case_id, sequence)) in closed.iter().enumerate() {
        let state = json!({ "sequence": sequence, "closed_at": hour(1) });
        rows.push(row(
            INTAKE,
            &snapshot(INTAKE, case_id, 1, state),
            0,
            offset as i64,
        ));
    }
    let open = json!({ "sequence": 12, "application": {} });
    rows.push(row(INTAKE, &snapshot(INTAKE, "c-12", 1, open), 0, 10));
    write(store, &rows).await;

    // Act: the only intake process, then each of two (instance 0 issues the even positions).
    let mut found = Vec::new();
    for (instances, instance) in [(1, 0), (2, 0), (2, 1)] {
        let last = store
            .repo
            .last_closed_position(TOPIC, INTAKE, instances, instance)
            .await
            .unwrap();
        let last: serde_json::Value =
            serde_json::from_slice(&last.expect("a position").payload).unwrap();
        found.push(last["case_id"].as_str().unwrap_or_default().to_owned());
    }

    // Assert
    assert_eq!(found, ["c-11", "c-8", "c-11"]);
}

async fn closed_markers_past_the_retention_are_deleted_and_nothing_else(store: &TestStore) {
    // Arrange: c-old closed at hour 1, c-new at hour 30, c-open open.
    write(
        store,
        &[
            row(
                MARKET,
                &snapshot(MARKET, "c-old", 2, closed_state(hour(1))),
                0,
                1,
            ),
            row(
                MARKET,
                &snapshot(MARKET, "c-new", 2, closed_state(hour(30))),
                0,
                2,
            ),
            row(
                MARKET,
                &snapshot(MARKET, "c-open", 1, open_state("o")),
                0,
                3,
            ),
        ],
    )
    .await;

    // Act: a retention of 24 hours, at hour 26.
    let deleted = store.repo.forget_closed_states(hour(2)).await.unwrap();

    // Assert
    assert_eq!(deleted, 1);
    let repo = &store.repo;
    assert_eq!(
        repo.closed_snapshot(TOPIC, MARKET, "c-old").await.unwrap(),
        None
    );
    assert!(repo
        .closed_snapshot(TOPIC, MARKET, "c-new")
        .await
        .unwrap()
        .is_some());
    assert_eq!(repo.open_snapshots(TOPIC, MARKET).await.unwrap().len(), 1);
}

async fn the_writer_writes_a_snapshot_with_the_offset_handed_on_after_it(store: &TestStore) {
    // Arrange
    let writer = CaseWriter::start(store.repo.clone());
    let group = format!("{TOPIC}[{MARKET}]");

    // Act: the snapshot, then the offset after its record, as the state group hands them on.
    writer.write_state(row(
        MARKET,
        &snapshot(MARKET, "c-1", 1, open_state("a")),
        0,
        4,
    ));
    writer.offset(StoredOffset {
        group: group.clone(),
        topic: TOPIC.to_owned(),
        partition: 0,
        next: 5,
    });
    writer.written().await;

    // Assert: both are in the store.
    let stored = store.repo.offsets(&group).await.unwrap();
    assert_eq!(stored, HashMap::from([((TOPIC.to_owned(), 0), 5)]));
    let open = store.repo.open_snapshots(TOPIC, MARKET).await.unwrap();
    assert_eq!(states(&open), vec![open_state("a")]);
    assert_eq!(writer.flush().await, 0);
}

async fn the_writer_keeps_the_higher_version_of_two_handed_on_together(store: &TestStore) {
    // Arrange
    let writer = CaseWriter::start(store.repo.clone());

    // Act: version 2 read at offset 3 and version 1 at offset 4, handed on one after the other
    // (so that they meet in one batch) as the state group reads them.
    writer.write_state(row(
        MARKET,
        &snapshot(MARKET, "c-1", 2, open_state("both events routed")),
        4,
        3,
    ));
    writer.write_state(row(
        MARKET,
        &snapshot(MARKET, "c-1", 1, open_state("one event routed")),
        4,
        4,
    ));
    writer.written().await;

    // Assert
    let open = store.repo.open_snapshots(TOPIC, MARKET).await.unwrap();
    assert_eq!(states(&open), vec![open_state("both events routed")]);
    assert_eq!(writer.flush().await, 0);
}

async fn a_case_above_every_stored_marker_is_known_to_have_none_without_asking(store: &TestStore) {
    // Arrange: closed markers of "a-1" at market and "B-2" at the intake system (bytewise
    // "a-1" is the greater; a locale's collation would put "B-2" last), "c-3" open; and a
    // topic with no marker at all.
    write(
        store,
        &[
            row(
                MARKET,
                &snapshot(MARKET, "a-1", 1, closed_state(hour(1))),
                0,
                1,
            ),
            row(
                INTAKE,
                &snapshot(INTAKE, "B-2", 1, closed_state(hour(1))),
                0,
                2,
            ),
            row(MARKET, &snapshot(MARKET, "c-3", 1, open_state("c-3")), 1, 1),
        ],
    )
    .await;
    let states = ClosedStates::new(store.repo.clone(), TOPIC.to_owned());
    let empty = ClosedStates::new(store.repo.clone(), "other.state".to_owned());
    let before = (states.may_hold("z-9"), empty.may_hold("a-0"));

    // Act: the first look-ups; then a marker written after them.
    let found = states.marker(MARKET, "a-1").await.unwrap();
    let above = states.marker(MARKET, "c-3").await.unwrap();
    let none = empty.marker(MARKET, "a-1").await.unwrap();
    write(
        store,
        &[row(
            MARKET,
            &snapshot(MARKET, "d-4", 1, closed_state(hour(2))),
            0,
            3,
        )],
    )
    .await;
    let shared = states.clone();

    // Assert: nothing is known to be absent before the first look-up; after it, ids up to the
    // greatest stored then may have a marker, ids above it have none — a marker written later
    // reaches its system from the state topic, not from here.
    assert_eq!(before, (true, true));
    assert!(found.is_some(), "a-1 is closed at market");
    assert_eq!((above, none), (None, None));
    assert!(shared.may_hold("a-1") && shared.may_hold("a-0") && shared.may_hold("B-2"));
    assert!(!shared.may_hold("b-0") && !shared.may_hold("c-3") && !shared.may_hold("d-4"));
    assert!(!empty.may_hold("a-0"));
}

suite!(
    a_row_names_the_case_and_reads_whether_it_is_closed,
    a_snapshot_read_earlier_never_replaces_one_read_later,
    a_lower_version_read_later_never_replaces_a_higher_one,
    a_batch_of_more_rows_than_one_statement_takes_writes_each_by_the_same_rule,
    open_snapshots_are_a_systems_open_cases_and_markers_are_found_one_by_one,
    the_intake_systems_last_position_is_its_highest_closed_one_of_its_own,
    closed_markers_past_the_retention_are_deleted_and_nothing_else,
    the_writer_writes_a_snapshot_with_the_offset_handed_on_after_it,
    the_writer_keeps_the_higher_version_of_two_handed_on_together,
    a_case_above_every_stored_marker_is_known_to_have_none_without_asking,
);
