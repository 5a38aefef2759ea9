//! The case repository on both engines: every test runs on SQLite (a file in the temp dir) and,
//! with `GOVFUSION_TEST_POSTGRES` set, on PostgreSQL (a database of its own per test, so that
//! tests run in parallel). Run with `--include-ignored` and no PostgreSQL, the PostgreSQL tests
//! fail rather than pass unrun.

// Only the PostgreSQL variable of the shared list is used here.
#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[macro_use]
#[path = "common/test_store.rs"]
mod test_store;

use chrono::{DateTime, Utc};
use govfusion::settings::StoreSettings;
use govfusion::store::writer::BACKLOG_LIMIT;
use govfusion::store::{
    CaseFilter, CaseRepository, CaseRow, CaseWriter, JsonText, StoreError, StoredOffset, MAX_PAGE,
};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use test_store::{with_database, TestStore};

/// The time `secs` seconds after 2027-01-01T00:00:00Z, plus `micros`.
fn at(secs: i64, micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros((1_798_761_600 + secs) * 1_000_000 + micros)
        .expect("a time in range")
}

/// A case submitted at `submitted`, with the given department, status, matter and owner.
fn case(
    id: &str,
    submitted: DateTime<Utc>,
    department: Option<&str>,
    status: &str,
    matter: &str,
    owner: Option<&str>,
) -> CaseRow {
    CaseRow {
        case_id: id.to_owned(),
        owner: owner.map(str::to_owned),
        terminal_id: "kiosk-1".to_owned(),
        matter_code: matter.to_owned(),
        department: department.map(str::to_owned),
        status: status.to_owned(),
        submitted_at: submitted,
        updated_at: submitted,
        revision: 1,
        trace_id: format!("trace-{id}"),
        view: view(
            json!({ "case_id": id, "status": status, "history": [{ "step": "submitted" }] }),
        ),
        trail: None,
    }
}

/// `json` as a row's view.
fn view(json: serde_json::Value) -> JsonText {
    JsonText::of(&json).expect("a JSON value serializes")
}

/// Writes `rows` in one committed transaction.
async fn insert(repo: &CaseRepository, rows: &[CaseRow]) {
    let mut tx = repo.begin().await.expect("Failed to begin");
    for row in rows {
        tx.upsert_case(row).await.expect("Failed to upsert");
    }
    tx.commit().await.expect("Failed to commit");
}

/// The case ids of one page of `filter`'s list.
async fn ids(repo: &CaseRepository, filter: CaseFilter) -> Vec<String> {
    let page = repo
        .list(&filter, None, MAX_PAGE)
        .await
        .expect("Failed to list");
    page.rows.into_iter().map(|row| row.case_id).collect()
}

async fn upsert_then_get_returns_the_row(store: &TestStore) {
    let row = case(
        "c-1",
        at(0, 123_456),
        None,
        "submitted",
        "business_license",
        Some("alice"),
    );

    insert(&store.repo, std::slice::from_ref(&row)).await;

    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(row));
    assert_eq!(store.repo.get("c-404").await.unwrap(), None);
}

async fn an_update_replaces_the_row(store: &TestStore) {
    let submitted = case("c-1", at(0, 0), None, "submitted", "m", Some("alice"));
    insert(&store.repo, &[submitted]).await;
    let mut accepted = case(
        "c-1",
        at(0, 0),
        Some("market"),
        "accepted",
        "m",
        Some("alice"),
    );
    accepted.updated_at = at(60, 7);
    accepted.view = view(json!({ "case_id": "c-1", "status": "accepted", "receipt": { "no": 1 } }));

    insert(&store.repo, std::slice::from_ref(&accepted)).await;

    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(accepted));
    assert_eq!(ids(&store.repo, CaseFilter::default()).await, ["c-1"]);
}

async fn an_offset_commits_with_its_row(store: &TestStore) {
    let row = case("c-1", at(0, 0), None, "submitted", "m", None);
    let mut tx = store.repo.begin().await.unwrap();
    tx.upsert_case(&row).await.unwrap();
    tx.store_offset("intake-view", "govfusion.intake", 2, 43)
        .await
        .unwrap();

    tx.commit().await.unwrap();
    let mut tx = store.repo.begin().await.unwrap();
    tx.store_offset("intake-view", "govfusion.intake", 2, 44)
        .await
        .unwrap();
    tx.store_offset("intake-view", "govfusion.approvals", 0, 7)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(row));
    let expected = HashMap::from([
        (("govfusion.intake".to_owned(), 2), 44),
        (("govfusion.approvals".to_owned(), 0), 7),
    ]);
    assert_eq!(store.repo.offsets("intake-view").await.unwrap(), expected);
    assert!(store
        .repo
        .offsets("another-group")
        .await
        .unwrap()
        .is_empty());
}

async fn a_transaction_not_committed_keeps_neither_row_nor_offset(store: &TestStore) {
    let dropped = case("c-dropped", at(0, 0), None, "submitted", "m", None);
    let rolled_back = case("c-rolled-back", at(1, 0), None, "submitted", "m", None);

    let mut tx = store.repo.begin().await.unwrap();
    tx.upsert_case(&dropped).await.unwrap();
    tx.store_offset("intake-view", "govfusion.intake", 0, 10)
        .await
        .unwrap();
    drop(tx);
    let mut tx = store.repo.begin().await.unwrap();
    tx.upsert_case(&rolled_back).await.unwrap();
    tx.store_offset("intake-view", "govfusion.intake", 1, 20)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(store.repo.get("c-dropped").await.unwrap(), None);
    assert_eq!(store.repo.get("c-rolled-back").await.unwrap(), None);
    assert!(store.repo.offsets("intake-view").await.unwrap().is_empty());
    assert!(ids(&store.repo, CaseFilter::default()).await.is_empty());
}

async fn each_filter_selects_its_cases(store: &TestStore) {
    insert(
        &store.repo,
        &[
            case("c-1", at(0, 0), None, "submitted", "license", Some("alice")),
            case(
                "c-2",
                at(10, 0),
                Some("market"),
                "accepted",
                "license",
                Some("bob"),
            ),
            case(
                "c-3",
                at(20, 0),
                Some("market"),
                "approved",
                "permit",
                Some("alice"),
            ),
            case("c-4", at(30, 0), Some("fire"), "accepted", "permit", None),
        ],
    )
    .await;
    let filter = |f: fn(&mut CaseFilter)| {
        let mut filter = CaseFilter::default();
        f(&mut filter);
        filter
    };

    let all = ids(&store.repo, CaseFilter::default()).await;
    let market = ids(
        &store.repo,
        filter(|f| f.department = Some("market".into())),
    )
    .await;
    let accepted = ids(&store.repo, filter(|f| f.status = Some("accepted".into()))).await;
    let permits = ids(&store.repo, filter(|f| f.matter = Some("permit".into()))).await;
    let alices = ids(&store.repo, filter(|f| f.owner = Some("alice".into()))).await;
    let from_10 = ids(&store.repo, filter(|f| f.from = Some(at(10, 0)))).await;
    let before_20 = ids(&store.repo, filter(|f| f.to = Some(at(20, 0)))).await;
    let combined = ids(
        &store.repo,
        filter(|f| {
            f.department = Some("market".into());
            f.status = Some("accepted".into());
            f.from = Some(at(5, 0));
            f.to = Some(at(30, 0));
        }),
    )
    .await;

    assert_eq!(all, ["c-4", "c-3", "c-2", "c-1"]);
    assert_eq!(market, ["c-3", "c-2"]);
    assert_eq!(accepted, ["c-4", "c-2"]);
    assert_eq!(permits, ["c-4", "c-3"]);
    assert_eq!(alices, ["c-3", "c-1"]);
    assert_eq!(from_10, ["c-4", "c-3", "c-2"]);
    assert_eq!(before_20, ["c-2", "c-1"]);
    assert_eq!(combined, ["c-2"]);
}

async fn pages_return_every_row_once_in_order_despite_equal_times(store: &TestStore) {
    // 23 cases over 4 submission times: most share their time with others, so the order and
    // the cursor rest on the case id as much as on the time.
    let rows: Vec<CaseRow> = (0..23)
        .map(|n| {
            let dept = if n % 3 == 0 { "fire" } else { "market" };
            case(
                &format!("c-{n:02}"),
                at(n % 4, 0),
                Some(dept),
                "accepted",
                "m",
                None,
            )
        })
        .collect();
    insert(&store.repo, &rows).await;
    let mut expected: Vec<(DateTime<Utc>, String)> = rows
        .iter()
        .map(|row| (row.submitted_at, row.case_id.clone()))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .repo
            .list(&CaseFilter::default(), cursor.as_deref(), 5)
            .await
            .unwrap();
        pages += 1;
        assert!(
            page.rows.len() <= 5,
            "page {pages}: {} rows",
            page.rows.len()
        );
        seen.extend(page.rows.into_iter().map(|row| row.case_id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let market_pages = {
        let filter = CaseFilter {
            department: Some("market".into()),
            ..CaseFilter::default()
        };
        let first = store.repo.list(&filter, None, 4).await.unwrap();
        let cursor = first
            .next
            .clone()
            .expect("more than one page of market cases");
        let second = store.repo.list(&filter, Some(&cursor), 4).await.unwrap();
        first
            .rows
            .into_iter()
            .chain(second.rows)
            .map(|row| row.case_id)
            .collect::<Vec<_>>()
    };

    assert_eq!(seen, expected);
    assert_eq!(pages, 5);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23);
    let expected_market: Vec<&String> = expected
        .iter()
        .filter(|id| id[2..].parse::<u32>().unwrap() % 3 != 0)
        .take(8)
        .collect();
    assert_eq!(market_pages.iter().collect::<Vec<_>>(), expected_market);
}

async fn the_page_size_is_clamped_and_a_forged_cursor_refused(store: &TestStore) {
    let rows: Vec<CaseRow> = (0..=MAX_PAGE)
        .map(|n| {
            case(
                &format!("c-{n:03}"),
                at(i64::from(n), 0),
                None,
                "submitted",
                "m",
                None,
            )
        })
        .collect();
    insert(&store.repo, &rows).await;

    let huge = store
        .repo
        .list(&CaseFilter::default(), None, 100_000)
        .await
        .unwrap();
    let zero = store
        .repo
        .list(&CaseFilter::default(), None, 0)
        .await
        .unwrap();
    let forged = store
        .repo
        .list(&CaseFilter::default(), Some("not-a-cursor!"), 10)
        .await;

    assert_eq!(huge.rows.len(), MAX_PAGE as usize);
    assert!(huge.next.is_some());
    assert_eq!(zero.rows.len(), 1);
    assert_eq!(zero.rows[0].case_id, format!("c-{MAX_PAGE:03}"));
    assert!(matches!(forged, Err(StoreError::BadCursor)), "{forged:?}");
}

async fn reopening_keeps_rows_and_offsets(store: &TestStore) {
    let row = case("c-1", at(0, 0), None, "submitted", "m", None);
    let mut tx = store.repo.begin().await.unwrap();
    tx.upsert_case(&row).await.unwrap();
    tx.store_offset("intake-view", "govfusion.intake", 0, 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let reopened = CaseRepository::open(&store.settings)
        .await
        .expect("Failed to open the repository again");

    assert_eq!(reopened.get("c-1").await.unwrap(), Some(row));
    assert_eq!(reopened.offsets("intake-view").await.unwrap().len(), 1);
    reopened.close().await;
}

async fn the_writer_keeps_the_latest_row_of_each_case_and_a_flush_writes_them(store: &TestStore) {
    // Arrange: a case that changes twice, and another.
    let submitted = case("c-1", at(0, 0), None, "submitted", "m", Some("alice"));
    let mut accepted = case(
        "c-1",
        at(0, 0),
        Some("market"),
        "accepted",
        "m",
        Some("alice"),
    );
    accepted.updated_at = at(60, 0);
    let other = case("c-2", at(1, 0), None, "submitted", "m", None);
    let writer = CaseWriter::start(store.repo.clone());

    // Act: handed on, then flushed at once, before a batch is due.
    writer.write(submitted);
    writer.write(accepted.clone());
    writer.write(other.clone());
    let unwritten = writer.flush().await;

    // Assert: each case's latest row is in the database.
    assert_eq!(unwritten, 0);
    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(accepted));
    assert_eq!(store.repo.get("c-2").await.unwrap(), Some(other));
}

async fn the_writer_writes_a_batch_without_being_flushed(store: &TestStore) {
    // Arrange
    let row = case("c-1", at(0, 0), None, "submitted", "m", None);
    let writer = CaseWriter::start(store.repo.clone());

    // Act
    writer.write(row.clone());

    // Assert: the batch is written while the writer runs on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.repo.get("c-1").await.unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the row was never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(row));
    assert_eq!(writer.flush().await, 0);
}

async fn an_older_revision_never_replaces_a_newer_row(store: &TestStore) {
    // Arrange: the case as it stands, and an older state of it written after (another intake
    // process behind this one, or a write replayed after a restart).
    let mut newer = case("c-1", at(0, 0), Some("market"), "accepted", "m", None);
    newer.revision = 3;
    let mut older = case("c-1", at(0, 0), None, "submitted", "m", None);
    older.revision = 2;
    let mut same = newer.clone();
    same.view = view(json!({ "case_id": "c-1", "status": "accepted", "rating": 5 }));

    // Act
    insert(&store.repo, std::slice::from_ref(&newer)).await;
    insert(&store.repo, std::slice::from_ref(&older)).await;
    let kept = store.repo.get("c-1").await.unwrap();
    insert(&store.repo, std::slice::from_ref(&same)).await;

    // Assert: the older one was ignored; one of the same revision (a rating) replaces it.
    assert_eq!(kept, Some(newer));
    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(same));
}

async fn open_cases_are_those_neither_completed_nor_failed(store: &TestStore) {
    let statuses = [
        "submitted",
        "published",
        "accepted",
        "suspended",
        "collaborating",
        "decided",
        "completed",
        "failed",
    ];
    let rows: Vec<CaseRow> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            case(
                &format!("c-{status}"),
                at(i as i64, 0),
                None,
                status,
                "m",
                None,
            )
        })
        .collect();
    insert(&store.repo, &rows).await;

    let open: HashSet<String> = store
        .repo
        .open_cases(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.status)
        .collect();

    let expected: HashSet<String> = statuses[..6].iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(open, expected);
}

async fn open_cases_come_a_page_at_a_time_the_one_that_changed_longest_ago_first(
    store: &TestStore,
) {
    // Arrange: three open cases, submitted in one order and last changed in another.
    let changed_at = [("c-1", 30), ("c-2", 10), ("c-3", 20)];
    let rows: Vec<CaseRow> = changed_at
        .iter()
        .map(|(id, micros)| CaseRow {
            updated_at: at(1, *micros),
            ..case(id, at(0, 0), None, "accepted", "m", None)
        })
        .collect();
    insert(&store.repo, &rows).await;

    // Act: read two pages, of two and of what follows.
    let first = store.repo.open_cases(None, 2).await.unwrap();
    let rest = store.repo.open_cases(first.last(), 2).await.unwrap();

    // Assert: the intake takes them back in this order, so those that changed last stay in
    // memory when there are more than it keeps; each once.
    let ids: Vec<&str> = first
        .iter()
        .chain(&rest)
        .map(|row| row.case_id.as_str())
        .collect();
    assert_eq!(ids, ["c-2", "c-3", "c-1"]);
}

async fn the_writer_writes_offsets_with_the_rows_handed_on_before_them(store: &TestStore) {
    // Arrange
    let row = case("c-1", at(0, 0), None, "submitted", "m", None);
    let writer = CaseWriter::start(store.repo.clone());
    let offset = StoredOffset {
        group: "intake-view".to_owned(),
        topic: "govfusion.applications".to_owned(),
        partition: 3,
        next: 18,
    };

    // Act: the row, then the offset of the record that changed it.
    writer.write(row.clone());
    writer.offset(offset);
    let before_commit = writer.unwritten("c-1");
    writer.written().await;

    // Assert: a reader of this process saw the row before it was committed; then both are in
    // the repository, and the writer holds nothing more.
    assert_eq!(before_commit, Some(row.clone()));
    assert_eq!(store.repo.get("c-1").await.unwrap(), Some(row));
    let expected = HashMap::from([(("govfusion.applications".to_owned(), 3), 18)]);
    assert_eq!(store.repo.offsets("intake-view").await.unwrap(), expected);
    assert_eq!(writer.unwritten("c-1"), None);
    assert_eq!(writer.flush().await, 0);
}

async fn the_writer_holds_back_who_hands_it_rows_while_it_is_behind(store: &TestStore) {
    // Arrange: another transaction holds the row the writer writes first, so the writer's
    // first batch waits for it.
    let writer = CaseWriter::start(store.repo.clone());
    let mut blocker = store.repo.begin().await.unwrap();
    blocker
        .upsert_case(&case("c-blocked", at(0, 0), None, "accepted", "m", None))
        .await
        .unwrap();
    writer.write(case("c-blocked", at(0, 0), None, "submitted", "m", None));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;

    // Act: more rows than the writer lets wait, handed on while its batch is stuck.
    let more = BACKLOG_LIMIT + 10;
    for i in 0..more {
        writer.write(case(
            &format!("c-{i}"),
            at(1, 0),
            None,
            "submitted",
            "m",
            None,
        ));
    }
    let room = writer.room();
    tokio::pin!(room);
    let behind = tokio::time::timeout(std::time::Duration::from_millis(300), &mut room).await;
    blocker.commit().await.unwrap();
    let caught_up = tokio::time::timeout(std::time::Duration::from_secs(20), room).await;

    // Assert: no room while behind, room once the writer took its backlog, nothing lost.
    assert!(
        behind.is_err(),
        "room was given while the writer was behind"
    );
    assert!(caught_up.is_ok(), "no room after the writer caught up");
    assert_eq!(writer.flush().await, 0);
    assert_eq!(count_cases(&store.repo).await, more + 1);
}

/// How many cases the repository holds, counted page by page.
async fn count_cases(repo: &CaseRepository) -> usize {
    let (mut count, mut cursor) = (0, None);
    loop {
        let page = repo
            .list(&CaseFilter::default(), cursor.as_deref(), MAX_PAGE)
            .await
            .unwrap();
        count += page.rows.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => return count,
        }
    }
}

suite!(
    upsert_then_get_returns_the_row,
    an_update_replaces_the_row,
    an_offset_commits_with_its_row,
    a_transaction_not_committed_keeps_neither_row_nor_offset,
    each_filter_selects_its_cases,
    pages_return_every_row_once_in_order_despite_equal_times,
    the_page_size_is_clamped_and_a_forged_cursor_refused,
    reopening_keeps_rows_and_offsets,
    the_writer_keeps_the_latest_row_of_each_case_and_a_flush_writes_them,
    the_writer_writes_a_batch_without_being_flushed,
    an_older_revision_never_replaces_a_newer_row,
    open_cases_are_those_neither_completed_nor_failed,
    open_cases_come_a_page_at_a_time_the_one_that_changed_longest_ago_first,
    the_writer_writes_offsets_with_the_rows_handed_on_before_them,
    the_writer_holds_back_who_hands_it_rows_while_it_is_behind,
);

#[tokio::test]
async fn an_sqlite_url_names_the_file_and_a_data_dir_is_created_when_missing() {
    let dir =
        std::env::temp_dir().join(format!("govfusion-store-{}", uuid::Uuid::new_v4().simple()));
    let by_url = StoreSettings {
        url: format!("sqlite://{}/named.db?mode=rwc", dir.display()),
        ..StoreSettings::default()
    };
    let by_dir = StoreSettings {
        data_dir: dir.join("nested").join("dir?#").display().to_string(),
        ..StoreSettings::default()
    };
    std::fs::create_dir_all(&dir).unwrap();

    let named = CaseRepository::open(&by_url).await.unwrap();
    let default = CaseRepository::open(&by_dir).await.unwrap();
    named.close().await;
    default.close().await;

    assert!(dir.join("named.db").is_file());
    assert!(dir
        .join("nested")
        .join("dir?#")
        .join("govfusion.db")
        .is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_test_database_url_keeps_the_server_and_its_options() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5/postgres?sslmode=disable", "t1"),
        "postgres://u@127.0.0.1:5/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "t1"), "postgres://u@h/t1");
}
