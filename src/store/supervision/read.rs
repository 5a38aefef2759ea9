//! The supervision records read back: one case's ([`CaseRepository::supervised`]), when a
//! message comes for a case that left the supervisor's memory, and the open cases', a page at a
//! time ([`CaseRepository::open_supervision`]), which the supervisor takes back at start.
//!
//! A case's records are read whole: its row, every dispatch of its events (closed ones too:
//! a dispatch's number is its place among the event's dispatches) with their routes, and the
//! ids of the messages already applied to them.

use super::super::row::time;
use super::super::{on_engine, CaseRepository, StoreError};
use super::{AssignmentRow, SupervisedCaseRow};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// One case's supervision records as the repository holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SupervisedRecords {
    /// The case.
    pub case_id: String,
    /// The case's row, once its acceptance was seen.
    pub case: Option<SupervisedCaseRow>,
    /// The dispatches of its events, by event id and dispatch number.
    pub assignments: Vec<AssignmentRow>,
    /// The ids of the messages applied to its records.
    pub messages: Vec<String>,
}

/// One page of the cases whose supervision is open — not decided, or with a dispatch neither
/// answered nor returned — by case id: at most `$2` ids above `$1`. Each side takes its own
/// first `$2` from the partial indexes `supervision_cases_open` and
/// `supervision_assignments_open` (whose conditions these are), so a page reads about `$2`
/// index entries a side however many cases are open; the page's ids are among them.
const OPEN_PAGE: &str = "\
    SELECT case_id FROM ( \
        SELECT case_id FROM supervision_cases \
        WHERE decided_at_us IS NULL AND case_id > $1 ORDER BY case_id LIMIT $2) undecided \
    UNION SELECT case_id FROM ( \
        SELECT DISTINCT case_id FROM supervision_assignments \
        WHERE answered_at_us IS NULL AND NOT returned AND case_id > $1 \
        ORDER BY case_id LIMIT $2) dispatched \
    ORDER BY case_id LIMIT $2";

/// Which cases a read covers.
#[derive(Clone, Copy)]
enum Cases<'a> {
    /// The one with this id (`$1`).
    One(&'a str),
    /// A page of the open ones ([`OPEN_PAGE`]): at most `limit` ids above `after`.
    Open {
        /// The greatest id of the page before; `""` for the first.
        after: &'a str,
        /// The most cases on the page.
        limit: u32,
    },
}

impl Cases<'_> {
    /// The condition on `column` (a case id) that selects these cases.
    fn condition(self, column: &str) -> String {
        match self {
            Self::One(_) => format!("{column} = $1"),
            Self::Open { .. } => format!("{column} IN ({OPEN_PAGE})"),
        }
    }
}

/// A supervised case's row as the database gives it.
#[derive(sqlx::FromRow)]
struct CaseRecord {
    /// Case id.
    case_id: String,
    /// Trace id.
    trace_id: String,
    /// Department.
    department: String,
    /// Accepted, in microseconds since the epoch.
    accepted_at_us: i64,
    /// The local date of acceptance.
    accepted_on: NaiveDate,
    /// Due, in microseconds since the epoch.
    due_by_us: i64,
    /// Suspended since, in microseconds since the epoch.
    suspended_since_us: Option<i64>,
    /// Working hours of ended suspensions.
    paused_hours: f64,
    /// Decided, in microseconds since the epoch.
    decided_at_us: Option<i64>,
    /// Handling hours, once decided.
    handling_hours: Option<f64>,
    /// The applicant's score.
    rating: Option<i16>,
    /// A yellow warning was raised.
    warned_yellow: bool,
    /// A red warning was raised.
    warned_red: bool,
}

/// A dispatch's row as the database gives it, without its route.
#[derive(sqlx::FromRow)]
struct AssignmentRecord {
    /// Event id.
    event_id: String,
    /// Returns before the dispatch.
    dispatch: i64,
    /// Case id.
    case_id: String,
    /// Trace id.
    trace_id: String,
    /// Department.
    department: String,
    /// The dispatching centre.
    dispatched_by: String,
    /// Dispatched, in microseconds since the epoch.
    dispatched_at_us: i64,
    /// The local date of the dispatch.
    dispatched_on: NaiveDate,
    /// Deadline, in microseconds since the epoch.
    deadline_us: i64,
    /// Extensions granted.
    extensions: i64,
    /// Answered, in microseconds since the epoch.
    answered_at_us: Option<i64>,
    /// Handling hours, once answered.
    handling_hours: Option<f64>,
    /// Returned.
    returned: bool,
    /// A yellow warning was raised for the current deadline.
    warned_yellow: bool,
    /// A red warning was raised for the current deadline.
    warned_red: bool,
    /// Escalated to this centre.
    escalated_to: Option<String>,
}

/// Runs `sql` selecting `cases`, binding the case id or the page's bounds, into rows of `T`.
macro_rules! select {
    ($pool:expr, $cases:expr, $sql:expr, $row:ty) => {{
        let sql = sqlx::AssertSqlSafe($sql);
        on_engine!($pool, pool => {
            let query = sqlx::query_as::<_, $row>(sql);
            let query = match $cases {
                Cases::One(case_id) => query.bind(case_id.to_owned()),
                Cases::Open { after, limit } => {
                    query.bind(after.to_owned()).bind(i64::from(limit))
                }
            };
            query.fetch_all(pool).await?
        })
    }};
}

impl CaseRepository {
    /// The supervision records of `case_id`; empty when the repository holds none.
    pub async fn supervised(&self, case_id: &str) -> Result<SupervisedRecords, StoreError> {
        let mut records = self.read_supervised(Cases::One(case_id)).await?;
        Ok(records
            .remove(case_id)
            .unwrap_or_else(|| SupervisedRecords {
                case_id: case_id.to_owned(),
                ..SupervisedRecords::default()
            }))
    }

    /// The supervision records of the cases whose supervision is open, at most `limit` of
    /// them, by case id, from the first case above `after` (`None`: from the first): what the
    /// supervisor takes back into memory when it starts, a page at a time. A page shorter than
    /// `limit` is the last.
    pub async fn open_supervision(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SupervisedRecords>, StoreError> {
        let cases = Cases::Open {
            after: after.unwrap_or(""),
            limit,
        };
        let records = self.read_supervised(cases).await?;
        Ok(records.into_values().collect())
    }

    /// The records of `cases`, by case id.
    async fn read_supervised(
        &self,
        cases: Cases<'_>,
    ) -> Result<BTreeMap<String, SupervisedRecords>, StoreError> {
        let mut by_case: BTreeMap<String, SupervisedRecords> = BTreeMap::new();
        let sql = format!(
            "SELECT case_id, trace_id, department, accepted_at_us, accepted_on, due_by_us, \
                 suspended_since_us, paused_hours, decided_at_us, handling_hours, rating, \
                 warned_yellow, warned_red \
             FROM supervision_cases WHERE {}",
            cases.condition("case_id")
        );
        for record in select!(&self.pool, cases, sql, CaseRecord) {
            let row = case_row(record)?;
            let case_id = row.case_id.clone();
            by_case.entry(case_id).or_default().case = Some(row);
        }
        for row in self.assignments(cases).await? {
            let records = by_case.entry(row.case_id.clone()).or_default();
            records.assignments.push(row);
        }
        let sql = format!(
            "SELECT case_id, message_id FROM supervision_messages WHERE {}",
            cases.condition("case_id")
        );
        for (case_id, message_id) in select!(&self.pool, cases, sql, (String, String)) {
            by_case
                .entry(case_id)
                .or_default()
                .messages
                .push(message_id);
        }
        for (case_id, records) in &mut by_case {
            records.case_id.clone_from(case_id);
        }
        Ok(by_case)
    }

    /// The dispatches of `cases` with their routes, by event id and dispatch number.
    async fn assignments(&self, cases: Cases<'_>) -> Result<Vec<AssignmentRow>, StoreError> {
        let sql = format!(
            "SELECT event_id, dispatch, case_id, trace_id, department, dispatched_by, \
                 dispatched_at_us, dispatched_on, deadline_us, extensions, answered_at_us, \
                 handling_hours, returned, warned_yellow, warned_red, escalated_to \
             FROM supervision_assignments WHERE {} ORDER BY event_id, dispatch",
            cases.condition("case_id")
        );
        let records = select!(&self.pool, cases, sql, AssignmentRecord);
        let sql = format!(
            "SELECT r.event_id, r.dispatch, r.centre FROM supervision_routes r \
             JOIN supervision_assignments a ON a.event_id = r.event_id AND a.dispatch = r.dispatch \
             WHERE {} ORDER BY r.event_id, r.dispatch, r.hop",
            cases.condition("a.case_id")
        );
        let mut routes: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
        for (event_id, dispatch, centre) in select!(&self.pool, cases, sql, (String, i64, String)) {
            routes.entry((event_id, dispatch)).or_default().push(centre);
        }
        records
            .into_iter()
            .map(|record| {
                let route = routes
                    .remove(&(record.event_id.clone(), record.dispatch))
                    .unwrap_or_default();
                assignment_row(record, route)
            })
            .collect()
    }
}

/// A supervised case's row from what the database gave.
fn case_row(record: CaseRecord) -> Result<SupervisedCaseRow, StoreError> {
    let id = record.case_id.as_str();
    let at = |column: &str, micros: i64| time(id, column, micros);
    let rating = record
        .rating
        .map(|score| {
            u8::try_from(score).map_err(|_| StoreError::Corrupt {
                case_id: id.to_owned(),
                what: format!("the supervision rating {score}"),
            })
        })
        .transpose()?;
    Ok(SupervisedCaseRow {
        accepted_at: at("accepted_at_us", record.accepted_at_us)?,
        due_by: at("due_by_us", record.due_by_us)?,
        suspended_since: record
            .suspended_since_us
            .map(|us| at("suspended_since_us", us))
            .transpose()?,
        decided_at: record
            .decided_at_us
            .map(|us| at("decided_at_us", us))
            .transpose()?,
        trace_id: record.trace_id,
        department: record.department,
        accepted_on: record.accepted_on,
        paused_hours: record.paused_hours,
        handling_hours: record.handling_hours,
        rating,
        warned_yellow: record.warned_yellow,
        warned_red: record.warned_red,
        case_id: record.case_id,
    })
}

/// A dispatch's row from what the database gave and its route.
fn assignment_row(
    record: AssignmentRecord,
    route: Vec<String>,
) -> Result<AssignmentRow, StoreError> {
    let id = record.case_id.as_str();
    let at = |column: &str, micros: i64| time(id, column, micros);
    let extensions = u32::try_from(record.extensions).map_err(|_| StoreError::Corrupt {
        case_id: id.to_owned(),
        what: format!(
            "{} extensions of event {}",
            record.extensions, record.event_id
        ),
    })?;
    Ok(AssignmentRow {
        dispatched_at: at("dispatched_at_us", record.dispatched_at_us)?,
        deadline: at("deadline_us", record.deadline_us)?,
        answered_at: record
            .answered_at_us
            .map(|us| at("answered_at_us", us))
            .transpose()?,
        extensions,
        route,
        event_id: record.event_id,
        dispatch: record.dispatch,
        case_id: record.case_id,
        trace_id: record.trace_id,
        department: record.department,
        dispatched_by: record.dispatched_by,
        dispatched_on: record.dispatched_on,
        handling_hours: record.handling_hours,
        returned: record.returned,
        warned_yellow: record.warned_yellow,
        warned_red: record.warned_red,
        escalated_to: record.escalated_to,
    })
}
