//! The case repository (办件库): cases kept in a SQL database — SQLite in a file by default,
//! PostgreSQL for a deployment — with the consumer offsets of the groups that write them.
//!
//! A consumer applies what one record says and stores the offset after it in one transaction
//! ([`CaseTx`]): after a crash either both are in the database or neither is, so a restart
//! resumes from [`CaseRepository::offsets`] and applies each record exactly once, without
//! reading a topic from its start.
//!
//! The intake system writes every case's row through [`CaseWriter`] and the HTTP API lists
//! cases from it; the supervision system writes its records' rows through the same writer and
//! the HTTP API computes the supervision figures from them. On a bus that outlives the process,
//! both systems' view groups store their offsets here with their rows and resume from them,
//! and both take back only their open records at start.
//!
//! # Layout
//!
//! * [`row`] — [`CaseRow`]: the columns a query filters and orders on, and the whole view.
//! * [`tx`] — [`CaseTx`]: rows and consumer offsets written in one transaction.
//! * [`list`] — [`CaseFilter`], [`Page`] and the keyset cursor of [`CaseRepository::list`].
//! * [`writer`] — [`CaseWriter`]: the latest row of every changed case, written in batches.
//! * [`state`] — the state topic's store: the latest snapshot of every system and case, written
//!   by a process's state group with its offsets, so that a restart reads the topic only after
//!   them and takes back only open cases.
//! * [`supervision`] — what the supervision system keeps: a row per supervised case
//!   (`supervision_cases`), per dispatch of an event to a department
//!   (`supervision_assignments`) and per centre on a dispatch's route (`supervision_routes`),
//!   written by the same [`CaseWriter`], and the supervision figures' counts by SQL.
//!
//! The schema is versioned in `migrations/sqlite/` and `migrations/postgres/` (the same tables;
//! the engines differ only in column types) and brought up to date by [`CaseRepository::open`].

pub mod list;
pub mod row;
pub mod state;
pub mod supervision;
pub mod tx;
pub mod writer;

pub use list::{CaseFilter, Page, MAX_PAGE};
pub use row::{CaseRow, JsonText, CLOSED_STATUSES};
pub use state::{ClosedStates, StateRow, StoredSnapshot};
pub use supervision::{FigureScope, SupervisionRow};
pub use tx::CaseTx;
pub use writer::{CaseWriter, StoredOffset};

use crate::settings::StoreSettings;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::collections::HashMap;
use std::str::FromStr;

/// The SQLite schema's migrations, compiled into the binary.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL schema's migrations, compiled into the binary.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Why the case repository cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the SQLite file cannot be created.
    #[error("cannot create the case repository's directory {path} (store.data_dir): {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The database cannot be reached or opened.
    #[error(
        "cannot open the case repository's database (store.url; check that it is running and \
         that the user may connect): {0}"
    )]
    Connect(#[source] sqlx::Error),
    /// The schema cannot be brought up to date.
    #[error("cannot bring the case repository's schema up to date: {0}")]
    Migrate(#[from] MigrateError),
    /// A query failed.
    #[error("case repository: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not hold what the schema promises.
    #[error("case repository: case {case_id} holds {what}")]
    Corrupt {
        /// The case.
        case_id: String,
        /// What is wrong with it.
        what: String,
    },
    /// A page cursor that [`CaseRepository::list`] did not give.
    #[error("the cursor is not one this service gave: list again from the first page")]
    BadCursor,
    /// The request was dropped before it was answered: the process is stopping.
    #[error("case repository: the request was dropped, the process is stopping")]
    Stopped,
}

/// Runs a request to the repository on a task of its own: an actor that awaits it holds only
/// the task's handle, so that a request still out when the process stops is dropped by the
/// runtime, never outside it with the actor (sqlx's pool needs the runtime to take back a
/// connection).
pub fn detached<T: Send + 'static>(
    request: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, StoreError>> + 'static {
    let request = tokio::spawn(request);
    async move { request.await.map_err(|_| StoreError::Stopped)? }
}

/// A connection pool to one of the two engines.
///
/// An enum over the engines' own pools rather than sqlx's `Any` driver: `Any` carries neither
/// JSON nor 64-bit-exact types on every engine and hides which engine runs, while each arm here
/// is the engine's own driver and the SQL text is shared (both engines take `$1` parameters).
#[derive(Debug, Clone)]
enum Pool {
    /// SQLite, one file.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$conn` bound to the engine's own pool or connection: the body is written
/// once and type-checked for each engine.
macro_rules! on_engine {
    ($pool:expr, $conn:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($conn) => $body,
            $crate::store::Pool::Postgres($conn) => $body,
        }
    };
}
pub(crate) use on_engine;

/// The case repository: a pool of connections to its database.
#[derive(Debug, Clone)]
pub struct CaseRepository {
    /// The engine's pool.
    pool: Pool,
}

/// Prepared statements a connection keeps: the batch writes' shapes (up to nine per table, see
/// `tx::statements`) and every query, with room to spare.
const STATEMENT_CACHE: usize = 256;

impl CaseRepository {
    /// Connects to `settings`' database (creating the SQLite file and its directory when
    /// missing) and brings its schema up to date.
    pub async fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let url = settings.database_url();
        let pool = if settings.is_sqlite() {
            if settings.url.trim().is_empty() {
                std::fs::create_dir_all(&settings.data_dir).map_err(|source| {
                    StoreError::DataDir {
                        path: settings.data_dir.clone(),
                        source,
                    }
                })?;
            }
            // The default file is named as a path, not parsed from `database_url()`, so that a
            // data_dir holding `?` or `#` is still a directory name.
            let options = if settings.url.trim().is_empty() {
                SqliteConnectOptions::new().filename(settings.default_sqlite_file())
            } else {
                SqliteConnectOptions::from_str(&url).map_err(StoreError::Connect)?
            };
            // WAL lets readers go on while a consumer writes; the busy timeout makes a writer
            // wait for another's commit instead of failing at once. Temporary files in memory:
            // a statement of many rows that may fail halfway keeps a journal of the pages it
            // changed, to undo the statement alone, and past 64 KiB SQLite spills that journal
            // to a temporary file — a system call for each page of each batch, which on Kafka
            // (state snapshots and offsets in every batch) cost about a twentieth of the
            // process's CPU.
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10))
                .pragma("temp_store", "memory")
                .statement_cache_capacity(STATEMENT_CACHE);
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Pool::Sqlite(pool)
        } else {
            let options = PgConnectOptions::from_str(&url)
                .map_err(StoreError::Connect)?
                .statement_cache_capacity(STATEMENT_CACHE);
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Pool::Postgres(pool)
        };
        Ok(Self { pool })
    }

    /// Starts a transaction: nothing written through it is seen by others, or kept, until
    /// [`CaseTx::commit`].
    pub async fn begin(&self) -> Result<CaseTx, StoreError> {
        CaseTx::begin(&self.pool).await
    }

    /// The case `case_id`, if the repository holds it.
    pub async fn get(&self, case_id: &str) -> Result<Option<CaseRow>, StoreError> {
        let sql = format!("SELECT {} FROM cases WHERE case_id = $1", row::COLUMNS);
        let sql = sqlx::AssertSqlSafe(sql);
        let record: Option<row::Record> = on_engine!(&self.pool, pool => {
            sqlx::query_as(sql).bind(case_id).fetch_optional(pool).await?
        });
        record.map(CaseRow::try_from).transpose()
    }

    /// The cases that are not closed (see [`row::CLOSED_STATUSES`]), the one that changed
    /// longest ago first: at most `limit` of them after `after` (the last row of the page
    /// before; `None` for the first page). What an intake process takes back when it starts,
    /// a page at a time.
    pub async fn open_cases(
        &self,
        after: Option<&CaseRow>,
        limit: u32,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let [first, second] = row::CLOSED_STATUSES;
        // The same condition as the partial index `cases_open`, so that both engines use it.
        let sql = format!(
            "SELECT {} FROM cases WHERE status NOT IN ('{first}', '{second}') \
             AND (updated_at_us > $1 OR (updated_at_us = $1 AND case_id > $2)) \
             ORDER BY updated_at_us, case_id LIMIT $3",
            row::COLUMNS
        );
        let sql = sqlx::AssertSqlSafe(sql);
        let (changed, case_id) = match after {
            Some(row) => (row.updated_at_us(), row.case_id.as_str()),
            None => (i64::MIN, ""),
        };
        let records: Vec<row::Record> = on_engine!(&self.pool, pool => {
            sqlx::query_as(sql)
                .bind(changed)
                .bind(case_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        records.into_iter().map(CaseRow::try_from).collect()
    }

    /// The cases `filter` selects, newest submission first, one page after `cursor` (the
    /// first page when `None`), at most `limit` rows (clamped to 1..=[`MAX_PAGE`]).
    pub async fn list(
        &self,
        filter: &CaseFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        list::list(&self.pool, filter, cursor, limit).await
    }

    /// Where consumer group `group` resumes: the next offset to read of each (topic,
    /// partition) it stored one for.
    pub async fn offsets(&self, group: &str) -> Result<HashMap<(String, i32), i64>, StoreError> {
        let sql = "SELECT topic, partition_id, next_offset FROM consumer_offsets \
                   WHERE group_id = $1";
        let rows: Vec<(String, i32, i64)> = on_engine!(&self.pool, pool => {
            sqlx::query_as(sql).bind(group).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(topic, partition, next)| ((topic, partition), next))
            .collect())
    }

    /// Closes every connection, waiting for those in use to be given back.
    pub async fn close(&self) {
        on_engine!(&self.pool, pool => pool.close().await);
    }
}
