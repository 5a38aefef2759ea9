//! The supervision figures' counts, by SQL: per department and per centre, over the items
//! received in a period.
//!
//! Every count is an aggregate of the database. The handling times of the finished items come
//! sorted by the database, per group, for the caller to take their mean and nearest-rank
//! percentile: neither engine has one percentile function the other shares, and a mean summed
//! by the database would not be the very `f64` the supervisor's own figures give (SQLite sums
//! with compensation, PostgreSQL in its scan order), while the figures must be the same numbers
//! whichever answers.

use super::super::{on_engine, CaseRepository, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use std::collections::HashMap;

/// Which items the figures cover, and the time that decides what is overdue.
#[derive(Debug, Clone, Copy)]
pub struct FigureScope {
    /// First local date received; none: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last local date received; none: up to now.
    pub to: Option<NaiveDate>,
    /// Now: an open item past its deadline at this time is overdue.
    pub now: DateTime<Utc>,
}

/// The counts and handling times of a set of work items (cases or dispatches).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Items received.
    pub received: usize,
    /// Of those, finished.
    pub completed: usize,
    /// Of those, finished before their deadline.
    pub completed_on_time: usize,
    /// Items neither finished nor paused (suspended, returned) and past their deadline.
    pub open_overdue: usize,
    /// The working hours of the finished items, ascending.
    pub hours: Vec<f64>,
}

/// One department's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepartmentTally {
    /// The cases it accepted.
    pub cases: Tally,
    /// The dispatches of events to it.
    pub collaborations: Tally,
    /// Of those dispatches, how many it returned.
    pub returns: usize,
    /// Of those dispatches, how many were escalated.
    pub escalations: usize,
    /// Of its cases, how many were rated.
    pub rated: usize,
    /// The sum of those ratings.
    pub rating_sum: i64,
}

/// One governance centre's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CentreTally {
    /// The dispatches routed through it.
    pub events: Tally,
    /// Of those, the ones it dispatched that the department returned.
    pub returns: usize,
    /// Dispatches escalated to it.
    pub escalations: usize,
}

/// Counts of each department's cases: received, decided, decided on time, open and overdue
/// (`$3` is now), rated, and the sum of the ratings.
const CASE_COUNTS: &str = "\
    SELECT department, COUNT(*), COUNT(decided_at_us), \
        COALESCE(SUM(CASE WHEN decided_at_us < due_by_us THEN 1 ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN decided_at_us IS NULL AND suspended_since_us IS NULL \
                           AND due_by_us <= $3 THEN 1 ELSE 0 END), 0), \
        COUNT(rating), COALESCE(SUM(rating), 0) \
    FROM supervision_cases \
    WHERE ($1 IS NULL OR accepted_on >= $1) AND ($2 IS NULL OR accepted_on <= $2) \
    GROUP BY department";

/// The handling hours of each department's decided cases, ascending.
const CASE_HOURS: &str = "\
    SELECT department, handling_hours FROM supervision_cases \
    WHERE ($1 IS NULL OR accepted_on >= $1) AND ($2 IS NULL OR accepted_on <= $2) \
        AND handling_hours IS NOT NULL \
    ORDER BY department, handling_hours";

/// Counts of the dispatches to each department: received, answered, answered on time, open
/// and overdue (`$3` is now), returned, escalated.
const ASSIGNMENT_COUNTS: &str = "\
    SELECT department, COUNT(*), COUNT(answered_at_us), \
        COALESCE(SUM(CASE WHEN answered_at_us < deadline_us THEN 1 ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN answered_at_us IS NULL AND NOT returned \
                           AND deadline_us <= $3 THEN 1 ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN returned THEN 1 ELSE 0 END), 0), COUNT(escalated_to) \
    FROM supervision_assignments \
    WHERE ($1 IS NULL OR dispatched_on >= $1) AND ($2 IS NULL OR dispatched_on <= $2) \
    GROUP BY department";

/// The handling hours of the answered dispatches to each department, ascending.
const ASSIGNMENT_HOURS: &str = "\
    SELECT department, handling_hours FROM supervision_assignments \
    WHERE ($1 IS NULL OR dispatched_on >= $1) AND ($2 IS NULL OR dispatched_on <= $2) \
        AND handling_hours IS NOT NULL \
    ORDER BY department, handling_hours";

/// Counts of the dispatches routed through each centre: received, answered, answered on time,
/// open and overdue (`$3` is now), and returned when the centre dispatched them.
const ROUTED_COUNTS: &str = "\
    SELECT r.centre, COUNT(*), COUNT(a.answered_at_us), \
        COALESCE(SUM(CASE WHEN a.answered_at_us < a.deadline_us THEN 1 ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN a.answered_at_us IS NULL AND NOT a.returned \
                           AND a.deadline_us <= $3 THEN 1 ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN a.returned AND a.dispatched_by = r.centre \
                          THEN 1 ELSE 0 END), 0) \
    FROM supervision_routes r \
    JOIN supervision_assignments a ON a.event_id = r.event_id AND a.dispatch = r.dispatch \
    WHERE ($1 IS NULL OR a.dispatched_on >= $1) AND ($2 IS NULL OR a.dispatched_on <= $2) \
    GROUP BY r.centre";

/// The handling hours of the answered dispatches routed through each centre, ascending.
const ROUTED_HOURS: &str = "\
    SELECT r.centre, a.handling_hours FROM supervision_routes r \
    JOIN supervision_assignments a ON a.event_id = r.event_id AND a.dispatch = r.dispatch \
    WHERE ($1 IS NULL OR a.dispatched_on >= $1) AND ($2 IS NULL OR a.dispatched_on <= $2) \
        AND a.handling_hours IS NOT NULL \
    ORDER BY r.centre, a.handling_hours";

/// The escalations each centre received.
const ESCALATIONS: &str = "\
    SELECT escalated_to, COUNT(*) FROM supervision_assignments \
    WHERE ($1 IS NULL OR dispatched_on >= $1) AND ($2 IS NULL OR dispatched_on <= $2) \
        AND escalated_to IS NOT NULL \
    GROUP BY escalated_to";

/// A group's code and its counts, as [`CASE_COUNTS`] and [`ASSIGNMENT_COUNTS`] give them.
type Counts = (String, i64, i64, i64, i64, i64, i64);

/// A centre's code and its counts, as [`ROUTED_COUNTS`] gives them.
type RoutedCounts = (String, i64, i64, i64, i64, i64);

/// A count as the database gives it: `COUNT` and sums of 0 and 1 are never negative.
fn count(value: i64) -> usize {
    usize::try_from(value).unwrap_or(0)
}

/// A tally of the received, completed, on-time and overdue counts, without handling times yet.
fn tally(received: i64, completed: i64, on_time: i64, overdue: i64) -> Tally {
    Tally {
        received: count(received),
        completed: count(completed),
        completed_on_time: count(on_time),
        open_overdue: count(overdue),
        hours: Vec::new(),
    }
}

impl CaseRepository {
    /// The counts of every department with cases or dispatches in `scope`, by department code.
    pub async fn department_tallies(
        &self,
        scope: &FigureScope,
    ) -> Result<HashMap<String, DepartmentTally>, StoreError> {
        let mut tallies: HashMap<String, DepartmentTally> = HashMap::new();
        let cases: Vec<Counts> = self.counts(CASE_COUNTS, scope).await?;
        for (department, received, decided, on_time, overdue, rated, rating_sum) in cases {
            let entry = tallies.entry(department).or_default();
            entry.cases = tally(received, decided, on_time, overdue);
            entry.rated = count(rated);
            entry.rating_sum = rating_sum;
        }
        let assignments: Vec<Counts> = self.counts(ASSIGNMENT_COUNTS, scope).await?;
        for (department, received, answered, on_time, overdue, returned, escalated) in assignments {
            let entry = tallies.entry(department).or_default();
            entry.collaborations = tally(received, answered, on_time, overdue);
            entry.returns = count(returned);
            entry.escalations = count(escalated);
        }
        for (department, hours) in self.hours(CASE_HOURS, scope).await? {
            tallies
                .entry(department)
                .or_default()
                .cases
                .hours
                .push(hours);
        }
        for (department, hours) in self.hours(ASSIGNMENT_HOURS, scope).await? {
            let entry = tallies.entry(department).or_default();
            entry.collaborations.hours.push(hours);
        }
        Ok(tallies)
    }

    /// The counts of every centre with dispatches routed through it or escalated to it in
    /// `scope`, by centre code.
    pub async fn centre_tallies(
        &self,
        scope: &FigureScope,
    ) -> Result<HashMap<String, CentreTally>, StoreError> {
        let mut tallies: HashMap<String, CentreTally> = HashMap::new();
        let routed: Vec<RoutedCounts> = self.counts(ROUTED_COUNTS, scope).await?;
        for (centre, received, answered, on_time, overdue, returned) in routed {
            let entry = tallies.entry(centre).or_default();
            entry.events = tally(received, answered, on_time, overdue);
            entry.returns = count(returned);
        }
        for (centre, hours) in self.hours(ROUTED_HOURS, scope).await? {
            tallies.entry(centre).or_default().events.hours.push(hours);
        }
        let escalations: Vec<(String, i64)> = on_engine!(&self.pool, pool => {
            sqlx::query_as(ESCALATIONS)
                .bind(scope.from)
                .bind(scope.to)
                .fetch_all(pool)
                .await?
        });
        for (centre, escalated) in escalations {
            tallies.entry(centre).or_default().escalations = count(escalated);
        }
        Ok(tallies)
    }

    /// The rows of a counting query: `$1` and `$2` the period, `$3` now.
    async fn counts<R>(&self, sql: &'static str, scope: &FigureScope) -> Result<Vec<R>, StoreError>
    where
        R: Send + Unpin,
        R: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>,
    {
        Ok(on_engine!(&self.pool, pool => {
            sqlx::query_as(sql)
                .bind(scope.from)
                .bind(scope.to)
                .bind(scope.now.timestamp_micros())
                .fetch_all(pool)
                .await?
        }))
    }

    /// The (group, hours) rows of a handling-time query, sorted by group then hours: `$1` and
    /// `$2` the period.
    async fn hours(
        &self,
        sql: &'static str,
        scope: &FigureScope,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        Ok(on_engine!(&self.pool, pool => {
            sqlx::query_as(sql)
                .bind(scope.from)
                .bind(scope.to)
                .fetch_all(pool)
                .await?
        }))
    }
}
