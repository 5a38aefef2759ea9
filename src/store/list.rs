//! [`CaseRepository::list`](super::CaseRepository::list): the cases a filter selects, a page at
//! a time, by keyset.
//!
//! Cases are ordered newest submission first, ties broken by case id (descending), so the order
//! is total. A page's cursor is the (submitted_at, case_id) of its last row, and the next page
//! holds the rows strictly after it in that order: unlike an offset, it neither skips nor
//! repeats a row when cases are added meanwhile, and costs the same on the thousandth page as
//! on the first.

use super::row::{Record, COLUMNS};
use super::{on_engine, CaseRow, Pool, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

/// The most rows one page holds.
pub const MAX_PAGE: u32 = 200;

/// Which cases to list: every field given narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only cases of this responsible department.
    pub department: Option<String>,
    /// Only cases with this status (its JSON name).
    pub status: Option<String>,
    /// Only cases of this matter.
    pub matter: Option<String>,
    /// Only this applicant's cases.
    pub owner: Option<String>,
    /// Only cases submitted at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only cases submitted before this time.
    pub to: Option<DateTime<Utc>>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The rows, newest submission first.
    pub rows: Vec<CaseRow>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

/// A value bound to a query parameter.
enum Arg {
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
}

/// The WHERE clause (with `$n` parameters) and its values, in parameter order.
#[derive(Default)]
struct Conditions {
    /// Each condition, joined with AND.
    sql: Vec<String>,
    /// The values of the parameters.
    args: Vec<Arg>,
}

impl Conditions {
    /// Adds `column = $n` with `value`, when given.
    fn equal(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.args.push(Arg::Text(value.clone()));
            self.sql.push(format!("{column} = ${}", self.args.len()));
        }
    }

    /// The `$n` of a new parameter holding `arg`.
    fn param(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

/// Encodes the position after `row` as an opaque cursor.
fn cursor_after(row: &CaseRow) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", row.submitted_at_us(), row.case_id))
}

/// The (submitted_at in microseconds, case id) a cursor encodes.
fn decode_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    let (micros, case_id) = text.split_once(':').ok_or(StoreError::BadCursor)?;
    let micros = micros.parse().map_err(|_| StoreError::BadCursor)?;
    Ok((micros, case_id.to_owned()))
}

/// The query of one page: the filter's conditions, then the cursor's, then the limit.
fn page_query(filter: &CaseFilter, after: Option<(i64, String)>, fetch: u32) -> (String, Vec<Arg>) {
    let mut conditions = Conditions::default();
    conditions.equal("department", &filter.department);
    conditions.equal("status", &filter.status);
    conditions.equal("matter_code", &filter.matter);
    conditions.equal("owner", &filter.owner);
    if let Some(from) = filter.from {
        let from = conditions.param(Arg::Int(from.timestamp_micros()));
        conditions.sql.push(format!("submitted_at_us >= {from}"));
    }
    if let Some(to) = filter.to {
        let to = conditions.param(Arg::Int(to.timestamp_micros()));
        conditions.sql.push(format!("submitted_at_us < {to}"));
    }
    if let Some((micros, case_id)) = after {
        let at = conditions.param(Arg::Int(micros));
        let id = conditions.param(Arg::Text(case_id));
        conditions.sql.push(format!(
            "(submitted_at_us < {at} OR (submitted_at_us = {at} AND case_id < {id}))"
        ));
    }
    let limit = conditions.param(Arg::Int(i64::from(fetch)));
    let filter = if conditions.sql.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.sql.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM cases {filter} \
         ORDER BY submitted_at_us DESC, case_id DESC LIMIT {limit}"
    );
    (sql, conditions.args)
}

/// The page of `filter`'s cases after `cursor`, at most `limit` rows (clamped).
pub(super) async fn list(
    pool: &Pool,
    filter: &CaseFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let after = cursor.map(decode_cursor).transpose()?;
    // One row more than the page tells whether another page follows.
    let (sql, args) = page_query(filter, after, limit + 1);
    let sql = sqlx::AssertSqlSafe(sql);
    let records: Vec<Record> = on_engine!(pool, pool => {
        let mut query = sqlx::query_as(sql);
        for arg in &args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::Int(int) => query.bind(*int),
            };
        }
        query.fetch_all(pool).await?
    });
    let mut rows = records
        .into_iter()
        .map(CaseRow::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(cursor_after)
    } else {
        None
    };
    Ok(Page { rows, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_a_forged_one_is_refused() {
        let encoded = URL_SAFE_NO_PAD.encode("1700000000000000:c-1:x");

        assert_eq!(
            decode_cursor(&encoded).unwrap(),
            (1_700_000_000_000_000, "c-1:x".to_owned())
        );
        assert!(matches!(
            decode_cursor("not base64!"),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("soon:c-1")),
            Err(StoreError::BadCursor)
        ));
    }
}
