//! The supervision records of the case repository on both engines: what `CaseTx` and the
//! `CaseWriter` write is what `supervised` and `open_supervision` read back, and the figures'
//! counts match counts made by hand. Every test runs on SQLite (a file in the temp dir) and,
//! with `GOVFUSION_TEST_POSTGRES` set, on PostgreSQL (a database of its own per test, so that
//! tests run in parallel). Run with `--include-ignored` and no PostgreSQL, the PostgreSQL tests
//! fail rather than pass unrun.

// Only the PostgreSQL variable of the shared list is used here.
#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
// How a store was opened (to open it again) is not used here.
#[allow(dead_code)]
#[macro_use]
#[path = "common/test_store.rs"]
mod test_store;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use govfusion::store::supervision::{
    AppliedMessage, AssignmentRow, CentreTally, DepartmentTally, FigureScope, SupervisedCaseRow,
    SupervisedRecords, Tally,
};
use govfusion::store::{CaseRepository, CaseWriter, SupervisionRow};
use std::collections::HashMap;
use test_store::TestStore;

/// 2027-01-`d`: a local date of the figures' periods.
fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, d).expect("a day of January 2027")
}

/// `hour` o'clock (UTC) on 2027-01-`d`.
fn at(d: u32, hour: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour, 0, 0).expect("an hour of the day");
    day(d).and_time(time).and_utc()
}

/// A case of `department` accepted on day `d` at 09:00 and due three days later: not decided,
/// not suspended, not rated, not warned.
fn case(id: &str, department: &str, d: u32) -> SupervisedCaseRow {
    SupervisedCaseRow {
        case_id: id.to_owned(),
        trace_id: format!("trace-{id}"),
        department: department.to_owned(),
        accepted_at: at(d, 9),
        accepted_on: day(d),
        due_by: at(d + 3, 9),
        suspended_since: None,
        paused_hours: 0.0,
        decided_at: None,
        handling_hours: None,
        rating: None,
        warned_yellow: false,
        warned_red: false,
    }
}

/// `row` decided at `decided_at`, after `hours` working hours.
fn decided(row: SupervisedCaseRow, decided_at: DateTime<Utc>, hours: f64) -> SupervisedCaseRow {
    SupervisedCaseRow {
        decided_at: Some(decided_at),
        handling_hours: Some(hours),
        ..row
    }
}

/// Dispatch number `dispatch` of event `event_id` (of case `case_id`) to `department` along
/// `route`, by the last centre of the route, on day `d` at 10:00 and due two days later: not
/// answered, not returned, not warned, not escalated.
fn dispatch(
    event_id: &str,
    dispatch: i64,
    case_id: &str,
    department: &str,
    route: &[&str],
    d: u32,
) -> AssignmentRow {
    AssignmentRow {
        event_id: event_id.to_owned(),
        dispatch,
        case_id: case_id.to_owned(),
        trace_id: format!("trace-{case_id}"),
        department: department.to_owned(),
        dispatched_by: route
            .last()
            .expect("a route of one centre or more")
            .to_string(),
        route: route.iter().map(|centre| centre.to_string()).collect(),
        dispatched_at: at(d, 10),
        dispatched_on: day(d),
        deadline: at(d + 2, 10),
        extensions: 0,
        answered_at: None,
        handling_hours: None,
        returned: false,
        warned_yellow: false,
        warned_red: false,
        escalated_to: None,
    }
}

/// `row` answered at `answered_at`, after `hours` working hours.
fn answered(row: AssignmentRow, answered_at: DateTime<Utc>, hours: f64) -> AssignmentRow {
    AssignmentRow {
        answered_at: Some(answered_at),
        handling_hours: Some(hours),
        ..row
    }
}

/// `row` returned by its department.
fn returned(row: AssignmentRow) -> AssignmentRow {
    AssignmentRow {
        returned: true,
        ..row
    }
}

/// The row of message `message_id` applied to case `case_id`.
fn applied(case_id: &str, message_id: &str) -> SupervisionRow {
    SupervisionRow::Applied(AppliedMessage {
        case_id: case_id.to_owned(),
        message_id: message_id.to_owned(),
    })
}

/// Writes `rows` through one committed transaction, in their order.
async fn write(repo: &CaseRepository, rows: &[SupervisionRow]) {
    let mut tx = repo.begin().await.expect("Failed to begin");
    for row in rows {
        match row {
            SupervisionRow::Case(row) => tx.upsert_supervised_cases(&[row]).await,
            SupervisionRow::Assignment(row) => tx.upsert_assignments(&[row]).await,
            SupervisionRow::Applied(row) => tx.insert_applied(&[row]).await,
        }
        .expect("Failed to write a supervision row");
    }
    tx.commit().await.expect("Failed to commit");
}

/// `records` with its message ids sorted: the repository promises them in no order.
fn sorted(mut records: SupervisedRecords) -> SupervisedRecords {
    records.messages.sort();
    records
}

/// The supervision records of `case_id`, their message ids sorted.
async fn supervised(repo: &CaseRepository, case_id: &str) -> SupervisedRecords {
    let records = repo
        .supervised(case_id)
        .await
        .expect("Failed to read a case's supervision records");
    sorted(records)
}

/// The records of every open case, their message ids sorted, read a page of at most `limit`
/// at a time as start-up reads them (until a page is not full), with each page's length.
async fn open(repo: &CaseRepository, limit: u32) -> (Vec<SupervisedRecords>, Vec<usize>) {
    let mut records = Vec::new();
    let mut pages = Vec::new();
    loop {
        let after = records
            .last()
            .map(|last: &SupervisedRecords| last.case_id.clone());
        let page = repo
            .open_supervision(after.as_deref(), limit)
            .await
            .expect("Failed to read the open supervision records");
        pages.push(page.len());
        let full = page.len() == limit as usize;
        records.extend(page.into_iter().map(sorted));
        if !full {
            return (records, pages);
        }
    }
}

/// What `supervised(case_id)` should give for these rows, `messages` sorted.
fn records(
    case: SupervisedCaseRow,
    assignments: Vec<AssignmentRow>,
    messages: &[&str],
) -> SupervisedRecords {
    SupervisedRecords {
        case_id: case.case_id.clone(),
        case: Some(case),
        assignments,
        messages: messages.iter().map(|id| id.to_string()).collect(),
    }
}

async fn a_case_reads_back_as_written(store: &TestStore) {
    // Arrange: a suspended case with times to the microsecond; three dispatches of two events,
    // one routed through centres whose names sort otherwise than their hops; and another case.
    let case = SupervisedCaseRow {
        accepted_at: at(2, 9) + Duration::microseconds(123_456),
        due_by: at(5, 9) + Duration::microseconds(1),
        suspended_since: Some(at(3, 14) + Duration::microseconds(7)),
        paused_hours: 1.25,
        warned_yellow: true,
        ..self::case("c-1", "market", 2)
    };
    let first = answered(
        dispatch("e-0", 0, "c-1", "fire", &["city"], 2),
        at(3, 11) + Duration::microseconds(999_999),
        4.75,
    );
    let returned_once = returned(dispatch(
        "e-1",
        0,
        "c-1",
        "fire",
        &["city", "west", "street-3"],
        2,
    ));
    let again = AssignmentRow {
        extensions: 1,
        warned_red: true,
        escalated_to: Some("west".to_owned()),
        ..dispatch("e-1", 1, "c-1", "water", &["city", "west", "street-3"], 3)
    };
    let other = decided(self::case("c-2", "fire", 2), at(3, 9), 8.0);

    // Act: written out of order, the later dispatch and event first.
    write(
        &store.repo,
        &[
            SupervisionRow::Assignment(again.clone()),
            SupervisionRow::Assignment(returned_once.clone()),
            SupervisionRow::Case(case.clone()),
            applied("c-1", "m-2"),
            SupervisionRow::Assignment(first.clone()),
            applied("c-1", "m-1"),
            SupervisionRow::Case(other.clone()),
            SupervisionRow::Assignment(dispatch("e-9", 0, "c-2", "fire", &["city"], 2)),
            applied("c-2", "m-9"),
        ],
    )
    .await;
    let read = supervised(&store.repo, "c-1").await;

    // Assert: the case's rows and none of the other case's, dispatches by event and number,
    // each route in its hops' order.
    assert_eq!(
        read,
        records(case, vec![first, returned_once, again], &["m-1", "m-2"])
    );
    assert_eq!(read.assignments[1].route, ["city", "west", "street-3"]);
    assert_eq!(supervised(&store.repo, "c-2").await.case, Some(other));
}

async fn a_later_write_replaces_the_record_and_a_repeat_changes_nothing(store: &TestStore) {
    // Arrange: a suspended case with an open dispatch, and one message applied.
    let suspended = SupervisedCaseRow {
        suspended_since: Some(at(3, 9)),
        warned_yellow: true,
        ..case("c-1", "market", 2)
    };
    let open = dispatch("e-1", 0, "c-1", "fire", &["city", "west"], 2);
    write(
        &store.repo,
        &[
            SupervisionRow::Case(suspended),
            SupervisionRow::Assignment(open.clone()),
            applied("c-1", "m-1"),
        ],
    )
    .await;
    // The same records as they stand later: resumed and decided, rated and warned red; the
    // dispatch extended, escalated and answered.
    let later = SupervisedCaseRow {
        paused_hours: 3.5,
        rating: Some(4),
        warned_red: true,
        due_by: at(6, 9),
        warned_yellow: true,
        ..decided(case("c-1", "marketing", 2), at(6, 8), 20.5)
    };
    let extended = AssignmentRow {
        deadline: at(5, 10),
        extensions: 2,
        warned_yellow: true,
        escalated_to: Some("city".to_owned()),
        ..answered(open, at(4, 16), 12.0)
    };
    let rows = [
        SupervisionRow::Case(later.clone()),
        SupervisionRow::Assignment(extended.clone()),
        applied("c-1", "m-1"),
        applied("c-1", "m-2"),
    ];

    // Act
    write(&store.repo, &rows).await;
    let replaced = supervised(&store.repo, "c-1").await;
    write(&store.repo, &rows).await;
    let repeated = supervised(&store.repo, "c-1").await;

    // Assert: one row per record, as last written; the route once; each message once.
    let expected = records(later, vec![extended], &["m-1", "m-2"]);
    assert_eq!(replaced, expected);
    assert_eq!(repeated, expected);
}

async fn a_case_never_written_reads_back_empty(store: &TestStore) {
    // Arrange: an empty repository, then one with another case in it.
    let before = store.repo.supervised("c-404").await.unwrap();
    let (open_before, pages) = open(&store.repo, 1_000).await;
    write(
        &store.repo,
        &[
            SupervisionRow::Case(case("c-1", "market", 2)),
            SupervisionRow::Assignment(dispatch("e-1", 0, "c-1", "fire", &["city"], 2)),
            applied("c-1", "m-1"),
        ],
    )
    .await;

    // Act
    let after = store.repo.supervised("c-404").await.unwrap();

    // Assert: the case id asked for, and nothing else.
    let empty = SupervisedRecords {
        case_id: "c-404".to_owned(),
        ..SupervisedRecords::default()
    };
    assert_eq!(before, empty);
    assert_eq!(after, empty);
    assert!(open_before.is_empty(), "{open_before:?}");
    assert_eq!(pages, [0]);
}

async fn the_writer_writes_the_latest_supervision_rows(store: &TestStore) {
    // Arrange: a case handed on twice, a dispatch, and a message applied twice.
    let accepted = case("c-1", "market", 2);
    let decided = decided(accepted.clone(), at(4, 9), 14.0);
    let assignment = answered(
        dispatch("e-1", 0, "c-1", "fire", &["city", "east"], 2),
        at(3, 9),
        5.0,
    );
    let writer = CaseWriter::start(store.repo.clone());

    // Act
    writer.write_supervision(SupervisionRow::Case(accepted));
    writer.write_supervision(SupervisionRow::Assignment(assignment.clone()));
    writer.write_supervision(applied("c-1", "m-1"));
    writer.write_supervision(SupervisionRow::Case(decided.clone()));
    writer.write_supervision(applied("c-1", "m-1"));
    let written = writer.written().await;

    // Assert: a read that follows sees the latest rows; nothing is left to write.
    assert!(written, "the writer did not write its batch");
    assert_eq!(
        supervised(&store.repo, "c-1").await,
        records(decided, vec![assignment], &["m-1"])
    );
    assert_eq!(writer.flush().await, 0);
}

async fn open_supervision_returns_exactly_the_open_cases_a_page_at_a_time(store: &TestStore) {
    // Arrange: open cases (not decided; decided with a dispatch neither answered nor
    // returned), and closed ones (decided, with every dispatch answered or returned, or none).
    let route = ["city", "west"];
    let done = |id: &str| decided(case(id, "market", 2), at(4, 9), 10.0);
    let dispatched = |event: &str, number: i64, case_id: &str| {
        dispatch(event, number, case_id, "fire", &route, 2)
    };
    let rows = [
        // Open: not decided, without dispatches.
        SupervisionRow::Case(case("c-undecided", "market", 2)),
        applied("c-undecided", "m-1"),
        // Open: not decided, its only dispatch answered.
        SupervisionRow::Case(case("c-undecided-answered", "market", 2)),
        SupervisionRow::Assignment(answered(
            dispatched("e-a", 0, "c-undecided-answered"),
            at(3, 9),
            2.0,
        )),
        // Open: decided, two dispatches pending (a page counts it once).
        SupervisionRow::Case(done("c-multi")),
        SupervisionRow::Assignment(dispatched("e-i", 0, "c-multi")),
        SupervisionRow::Assignment(dispatched("e-j", 0, "c-multi")),
        // Open: decided, one dispatch answered and one pending.
        SupervisionRow::Case(done("c-pending")),
        SupervisionRow::Assignment(answered(dispatched("e-b", 0, "c-pending"), at(3, 9), 2.0)),
        SupervisionRow::Assignment(dispatched("e-c", 0, "c-pending")),
        applied("c-pending", "m-2"),
        // Open: decided, returned once and dispatched again.
        SupervisionRow::Case(done("c-redispatched")),
        SupervisionRow::Assignment(returned(dispatched("e-d", 0, "c-redispatched"))),
        SupervisionRow::Assignment(dispatched("e-d", 1, "c-redispatched")),
        // Closed: decided, its dispatches answered.
        SupervisionRow::Case(done("c-answered")),
        SupervisionRow::Assignment(answered(dispatched("e-e", 0, "c-answered"), at(3, 9), 2.0)),
        SupervisionRow::Assignment(answered(dispatched("e-e", 1, "c-answered"), at(3, 9), 2.0)),
        applied("c-answered", "m-3"),
        // Closed: decided, its only dispatch returned.
        SupervisionRow::Case(done("c-returned")),
        SupervisionRow::Assignment(returned(dispatched("e-f", 0, "c-returned"))),
        // Closed: decided, one dispatch answered and one returned.
        SupervisionRow::Case(done("c-answered-and-returned")),
        SupervisionRow::Assignment(answered(
            dispatched("e-g", 0, "c-answered-and-returned"),
            at(3, 9),
            2.0,
        )),
        SupervisionRow::Assignment(returned(dispatched("e-h", 0, "c-answered-and-returned"))),
        // Closed: decided, never dispatched.
        SupervisionRow::Case(done("c-decided")),
        applied("c-decided", "m-4"),
    ];
    write(&store.repo, &rows).await;

    // Act
    let (open, pages) = open(&store.repo, 1_000).await;

    // Assert: the open cases in the order of their ids, each with all its records (closed
    // dispatches too), as one case's read gives them.
    let ids: Vec<&str> = open
        .iter()
        .map(|records| records.case_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "c-multi",
            "c-pending",
            "c-redispatched",
            "c-undecided",
            "c-undecided-answered"
        ]
    );
    assert_eq!(pages, [5]);
    for records in &open {
        assert_eq!(*records, supervised(&store.repo, &records.case_id).await);
        assert!(records.case.is_some(), "{records:?}");
    }
    let redispatched = &open[2];
    assert_eq!(redispatched.assignments.len(), 2);
    assert!(redispatched.assignments[0].returned);
    assert_eq!(redispatched.assignments[1].dispatch, 1);
    assert_eq!(open[0].assignments.len(), 2);
    assert_eq!(open[1].assignments.len(), 2);
    assert_eq!(open[1].messages, ["m-2"]);
    assert_eq!(open[3].messages, ["m-1"]);

    // Assert: read in smaller pages, the same cases, each once, every page full but the last.
    for (limit, sizes) in [
        (1, vec![1, 1, 1, 1, 1, 0]),
        (2, vec![2, 2, 1]),
        (3, vec![3, 2]),
        (5, vec![5, 0]),
    ] {
        let (paged, pages) = self::open(&store.repo, limit).await;
        assert_eq!(paged, open, "pages of {limit}");
        assert_eq!(pages, sizes, "pages of {limit}");
    }
}

/// A tally of `received`, `completed`, `on_time` and `overdue` items, with these hours.
fn counted(
    received: usize,
    completed: usize,
    on_time: usize,
    overdue: usize,
    hours: &[f64],
) -> Tally {
    Tally {
        received,
        completed,
        completed_on_time: on_time,
        open_overdue: overdue,
        hours: hours.to_vec(),
    }
}

async fn the_figures_count_a_period_as_by_hand(store: &TestStore) {
    // Arrange: cases and dispatches on days 2 and 3 (the period), and others on days 1 and 4;
    // now is day 10, past every deadline but one.
    let rows = [
        // market, late: decided after its due time (day 6, 09:00).
        SupervisionRow::Case(SupervisedCaseRow {
            rating: Some(2),
            ..decided(case("k-2", "market", 3), at(7, 0), 9.0)
        }),
        // market, on time.
        SupervisionRow::Case(SupervisedCaseRow {
            rating: Some(4),
            ..decided(case("k-1", "market", 2), at(3, 9), 5.0)
        }),
        // market, open and overdue.
        SupervisionRow::Case(case("k-3", "market", 3)),
        // market, open past its due time but suspended: not overdue.
        SupervisionRow::Case(SupervisedCaseRow {
            suspended_since: Some(at(4, 9)),
            ..case("k-4", "market", 3)
        }),
        // market, open and not yet due.
        SupervisionRow::Case(SupervisedCaseRow {
            due_by: at(20, 0),
            ..case("k-5", "market", 2)
        }),
        // fire, on time, not rated.
        SupervisionRow::Case(decided(case("k-6", "fire", 2), at(2, 17), 3.0)),
        // Outside the period.
        SupervisionRow::Case(SupervisedCaseRow {
            rating: Some(5),
            ..decided(case("k-7", "market", 1), at(2, 9), 1.0)
        }),
        SupervisionRow::Case(case("k-8", "fire", 4)),
        // To fire through district-2, answered late, escalated to district-2.
        SupervisionRow::Assignment(AssignmentRow {
            escalated_to: Some("district-2".to_owned()),
            ..answered(
                dispatch("e-3", 0, "k-6", "fire", &["city", "district-2"], 3),
                at(6, 0),
                6.0,
            )
        }),
        // To fire through district-1, answered on time.
        SupervisionRow::Assignment(answered(
            dispatch("e-1", 0, "k-6", "fire", &["city", "district-1"], 2),
            at(3, 10),
            2.0,
        )),
        // To fire through district-1, returned past its deadline: not overdue.
        SupervisionRow::Assignment(returned(dispatch(
            "e-2",
            0,
            "k-6",
            "fire",
            &["city", "district-1"],
            2,
        ))),
        // Dispatched again, to market through district-2: open, overdue, escalated to city.
        SupervisionRow::Assignment(AssignmentRow {
            escalated_to: Some("city".to_owned()),
            ..dispatch("e-2", 1, "k-6", "market", &["city", "district-2"], 3)
        }),
        // Outside the period.
        SupervisionRow::Assignment(AssignmentRow {
            escalated_to: Some("city".to_owned()),
            ..answered(
                dispatch("e-4", 0, "k-7", "fire", &["city", "district-1"], 1),
                at(2, 10),
                1.0,
            )
        }),
    ];
    write(&store.repo, &rows).await;
    let period = FigureScope {
        from: Some(day(2)),
        to: Some(day(3)),
        now: at(10, 0),
    };
    let empty = FigureScope {
        from: Some(day(11)),
        to: Some(day(12)),
        now: at(20, 0),
    };
    let always = FigureScope {
        from: None,
        to: None,
        now: at(10, 0),
    };

    // Act
    let departments = store.repo.department_tallies(&period).await.unwrap();
    let centres = store.repo.centre_tallies(&period).await.unwrap();
    let empty_departments = store.repo.department_tallies(&empty).await.unwrap();
    let empty_centres = store.repo.centre_tallies(&empty).await.unwrap();
    let all_departments = store.repo.department_tallies(&always).await.unwrap();
    let all_centres = store.repo.centre_tallies(&always).await.unwrap();

    // Assert: the counts made by hand from the rows above.
    let market = DepartmentTally {
        cases: counted(5, 2, 1, 1, &[5.0, 9.0]),
        collaborations: counted(1, 0, 0, 1, &[]),
        returns: 0,
        escalations: 1,
        rated: 2,
        rating_sum: 6,
    };
    let fire = DepartmentTally {
        cases: counted(1, 1, 1, 0, &[3.0]),
        collaborations: counted(3, 2, 1, 0, &[2.0, 6.0]),
        returns: 1,
        escalations: 1,
        rated: 0,
        rating_sum: 0,
    };
    let city = CentreTally {
        events: counted(4, 2, 1, 1, &[2.0, 6.0]),
        returns: 0,
        escalations: 1,
    };
    let district_1 = CentreTally {
        events: counted(2, 1, 1, 0, &[2.0]),
        returns: 1,
        escalations: 0,
    };
    let district_2 = CentreTally {
        events: counted(2, 1, 0, 1, &[6.0]),
        returns: 0,
        escalations: 1,
    };
    assert_eq!(
        departments,
        HashMap::from([("market".to_owned(), market), ("fire".to_owned(), fire)])
    );
    assert_eq!(
        centres,
        HashMap::from([
            ("city".to_owned(), city),
            ("district-1".to_owned(), district_1),
            ("district-2".to_owned(), district_2),
        ])
    );
    assert!(empty_departments.is_empty(), "{empty_departments:?}");
    assert!(empty_centres.is_empty(), "{empty_centres:?}");
    // Without bounds, the rows of days 1 and 4 count too.
    assert_eq!(all_departments["market"].cases.received, 6);
    assert_eq!(all_departments["fire"].cases, counted(2, 1, 1, 1, &[3.0]));
    assert_eq!(all_departments["fire"].collaborations.received, 4);
    assert_eq!(all_centres["city"].escalations, 2);
}

suite!(
    a_case_reads_back_as_written,
    a_later_write_replaces_the_record_and_a_repeat_changes_nothing,
    a_case_never_written_reads_back_empty,
    the_writer_writes_the_latest_supervision_rows,
    open_supervision_returns_exactly_the_open_cases_a_page_at_a_time,
    the_figures_count_a_period_as_by_hand,
);
