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

/// Writes a case, replacing the row of the same case id unless that holds a newer revision:
/// the row is the case as it then stood, so the newest write wins whole.
const UPSERT_CASE: &str = "\
    INSERT INTO cases (case_id, owner, terminal_id, matter_code, department, status, \
                       submitted_at_us, updated_at_us, revision, trace_id, view, trail) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
    ON CONFLICT (case_id) DO UPDATE SET \
        owner = excluded.owner, terminal_id = excluded.terminal_id, \
        matter_code = excluded.matter_code, department = excluded.department, \
        status = excluded.status, submitted_at_us = excluded.submitted_at_us, \
        updated_at_us = excluded.updated_at_us, revision = excluded.revision, \
        trace_id = excluded.trace_id, view = excluded.view, trail = excluded.trail \
    WHERE excluded.revision >= cases.revision";

/// Records where a group resumes on a partition.
const STORE_OFFSET: &str = "\
    INSERT INTO consumer_offsets (group_id, topic, partition_id, next_offset) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (group_id, topic, partition_id) DO UPDATE SET next_offset = excluded.next_offset";

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
        on_engine_tx!(&mut self.inner, tx => {
            sqlx::query(UPSERT_CASE)
                .bind(&row.case_id)
                .bind(&row.owner)
                .bind(&row.terminal_id)
                .bind(&row.matter_code)
                .bind(&row.department)
                .bind(&row.status)
                .bind(row.submitted_at_us())
                .bind(row.updated_at_us())
                .bind(row.revision)
                .bind(&row.trace_id)
                .bind(Json(&row.view))
                .bind(row.trail.as_ref().map(Json))
                .execute(&mut **tx)
                .await
                .map(drop)?
        });
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
        on_engine_tx!(&mut self.inner, tx => {
            sqlx::query(STORE_OFFSET)
                .bind(group)
                .bind(topic)
                .bind(partition)
                .bind(next_offset)
                .execute(&mut **tx)
                .await
                .map(drop)?
        });
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
