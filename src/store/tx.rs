//! [`CaseTx`]: what one record says, applied together with the offset after it.

use super::{CaseRow, Pool, StoreError};
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite, Transaction};

/// [`on_engine!`] for an open transaction.
macro_rules! on_engine_tx {
    ($inner:expr, $tx:ident => $body:expr) => {
        match $inner {
            $crate::store::tx::Inner::Sqlite($tx) => $body,
            $crate::store::tx::Inner::Postgres($tx) => $body,
        }
    };
}
pub(super) use on_engine_tx;

/// Writes `$rows` (a slice) through the open transaction `$inner` in as few statements as
/// [`statements`] allows: each is `$insert`, then each row's values as `$bind` pushes them to
/// `$values`, then `$tail`. Answers the first error from the enclosing function.
macro_rules! write_rows {
    ($inner:expr, $rows:expr, $insert:expr, $tail:expr, |$values:ident, $row:pat_param| $bind:expr) => {
        for chunk in $crate::store::tx::statements($rows) {
            $crate::store::tx::on_engine_tx!($inner, tx => {
                let mut query = sqlx::QueryBuilder::new($insert);
                query.push_values(chunk, |mut $values, $row| {
                    $bind;
                });
                query.push($tail);
                query.build().execute(&mut **tx).await.map(drop)?
            });
        }
    };
}
pub(super) use write_rows;

/// A transaction on the case repository. Dropped without [`CaseTx::commit`], everything
/// written through it is rolled back: rows and offsets alike.
#[derive(Debug)]
pub struct CaseTx {
    /// The engine's open transaction.
    pub(super) inner: Inner,
}

/// An open transaction on one of the two engines.
#[derive(Debug)]
pub(super) enum Inner {
    /// On SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

/// Most rows one statement writes: far below either engine's limit on values bound in one
/// statement (SQLite's 32,766, PostgreSQL's 65,535) at the widest row's sixteen columns.
const MOST_ROWS_PER_STATEMENT: usize = 256;

/// `rows` in slices of a power of two each, up to [`MOST_ROWS_PER_STATEMENT`], largest first:
/// one statement each. A batch's rows go in as few statements as that allows (each is a round
/// trip to the database; on SQLite, to its worker thread), while a table's statements come in
/// at most nine shapes, each prepared once and kept in the connection's statement cache.
pub(super) fn statements<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = MOST_ROWS_PER_STATEMENT.min(1 << rest.len().ilog2());
        let (chunk, after) = rest.split_at(take);
        rest = after;
        Some(chunk)
    })
}

/// Writes cases (the rows follow), each replacing the row of the same case id unless that
/// holds a newer revision: the row is the case as it then stood, so the newest write wins
/// whole. The rows of one statement hold distinct case ids.
const INSERT_CASES: &str = "\
    INSERT INTO cases (case_id, owner, terminal_id, matter_code, department, status, \
                       submitted_at_us, updated_at_us, revision, trace_id, view, trail) ";
/// What follows [`INSERT_CASES`]'s rows.
const ON_CASE_CONFLICT: &str = " \
    ON CONFLICT (case_id) DO UPDATE SET \
        owner = excluded.owner, terminal_id = excluded.terminal_id, \
        matter_code = excluded.matter_code, department = excluded.department, \
        status = excluded.status, submitted_at_us = excluded.submitted_at_us, \
        updated_at_us = excluded.updated_at_us, revision = excluded.revision, \
        trace_id = excluded.trace_id, view = excluded.view, trail = excluded.trail \
    WHERE excluded.revision >= cases.revision";

/// Records where groups resume on partitions (the rows follow, each of a distinct group,
/// topic and partition).
const STORE_OFFSETS: &str =
    "INSERT INTO consumer_offsets (group_id, topic, partition_id, next_offset) ";
/// What follows [`STORE_OFFSETS`]'s rows.
const ON_OFFSET_CONFLICT: &str = " \
    ON CONFLICT (group_id, topic, partition_id) DO UPDATE SET next_offset = excluded.next_offset";

/// Where a group resumes a partition, as [`CaseTx::store_offsets`] takes it: group, topic,
/// partition and next offset.
pub type OffsetRow<'a> = (&'a str, &'a str, i32, i64);

impl CaseTx {
    /// Opens a transaction on a connection of `pool`.
    pub(super) async fn begin(pool: &Pool) -> Result<Self, StoreError> {
        let inner = match pool {
            Pool::Sqlite(pool) => Inner::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => Inner::Postgres(pool.begin().await?),
        };
        Ok(Self { inner })
    }

    /// Writes `row`, replacing what the repository held for its case unless that is a newer
    /// revision.
    pub async fn upsert_case(&mut self, row: &CaseRow) -> Result<(), StoreError> {
        self.upsert_cases(&[row]).await
    }

    /// Writes `rows` (of distinct cases), each replacing what the repository held for its case
    /// unless that is a newer revision.
    pub async fn upsert_cases(&mut self, rows: &[&CaseRow]) -> Result<(), StoreError> {
        write_rows!(
            &mut self.inner,
            rows,
            INSERT_CASES,
            ON_CASE_CONFLICT,
            |values, row| {
                values
                    .push_bind(&row.case_id)
                    .push_bind(&row.owner)
                    .push_bind(&row.terminal_id)
                    .push_bind(&row.matter_code)
                    .push_bind(&row.department)
                    .push_bind(&row.status)
                    .push_bind(row.submitted_at_us())
                    .push_bind(row.updated_at_us())
                    .push_bind(row.revision)
                    .push_bind(&row.trace_id)
                    .push_bind(Json(&row.view))
                    .push_bind(row.trail.as_ref().map(Json))
            }
        );
        Ok(())
    }

    /// Records that `group` resumes `topic`'s `partition` at `next_offset`: the offset after
    /// the last record this transaction applied.
    pub async fn store_offset(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        next_offset: i64,
    ) -> Result<(), StoreError> {
        self.store_offsets(&[(group, topic, partition, next_offset)])
            .await
    }

    /// [`store_offset`](Self::store_offset) for each of `rows` (of distinct groups, topics and
    /// partitions).
    pub async fn store_offsets(&mut self, rows: &[OffsetRow<'_>]) -> Result<(), StoreError> {
        write_rows!(
            &mut self.inner,
            rows,
            STORE_OFFSETS,
            ON_OFFSET_CONFLICT,
            |values, (group, topic, partition, next)| {
                values
                    .push_bind(*group)
                    .push_bind(*topic)
                    .push_bind(*partition)
                    .push_bind(*next)
            }
        );
        Ok(())
    }

    /// Makes everything written through this transaction durable and visible, at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Sqlite(tx) => tx.commit().await?,
            Inner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Discards everything written through this transaction. Dropping it does the same,
    /// without waiting for the database to confirm.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            Inner::Sqlite(tx) => tx.rollback().await?,
            Inner::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn rows_go_in_slices_of_powers_of_two_largest_first() {
        // Arrange
        let rows: Vec<u32> = (0..1_201).collect();

        // Act
        let sizes: Vec<usize> = statements(&rows).map(<[u32]>::len).collect();
        let again: Vec<u32> = statements(&rows).flatten().copied().collect();

        // Assert
        assert_eq!(sizes, [256, 256, 256, 256, 128, 32, 16, 1]);
        assert_eq!(again, rows, "every row once, in order");
        assert_eq!(statements::<u32>(&[]).count(), 0);
    }
}
