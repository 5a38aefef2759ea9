//! The state topic's store: the latest snapshot each system wrote of each case, as the topic's
//! compaction would keep it, written by the state group of a process with its offsets (in
//! `consumer_offsets`) in the same transactions — a Kafka Streams state store with the state
//! topic as its changelog.
//!
//! A restarted process takes back the open cases of its systems from here
//! ([`CaseRepository::open_snapshots`]) and reads the state topic only after the stored offsets,
//! instead of from its start. A case a system closed is not taken back: its closed marker stays
//! here, and is read ([`ClosedStates::marker`]) only when a message for the case comes again — a
//! late repeat, which the system must still recognise and drop. Markers older than the flow
//! topics' retention are deleted ([`CaseRepository::forget_closed_states`]): no message that old
//! can be delivered any more, so what the store holds follows open work and the retention, not
//! history.

use super::tx::{write_rows, CaseTx};
use super::{on_engine, CaseRepository, StoreError};
use crate::bus::Record;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// One snapshot as a state group read it: what its system keeps of its case, until a later
/// record of the same system and case replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRow {
    /// The state topic's full name.
    pub topic: String,
    /// The system the snapshot belongs to (the record's `target`, e.g. `department/market`).
    pub system_id: String,
    /// The case (the record's key).
    pub case_id: String,
    /// The partition the record was read from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The snapshot's version (`data.version`): a row is replaced only by a snapshot of a
    /// higher version, or of the same version read after it.
    pub version: i64,
    /// When the system closed the case, if the snapshot is its closed marker.
    pub closed_at: Option<DateTime<Utc>>,
    /// The intake system's feed position, when the snapshot names one.
    pub sequence: Option<i64>,
    /// The record's value: the snapshot's envelope, as on the topic (personal data sealed).
    pub payload: Bytes,
}

/// What a row needs from a snapshot's state, read without decoding the rest of it.
#[derive(Deserialize)]
struct Probe {
    case_id: String,
    data: ProbeData,
}

#[derive(Deserialize)]
struct ProbeData {
    #[serde(default)]
    version: i64,
    state: ProbeState,
}

#[derive(Deserialize)]
struct ProbeState {
    #[serde(default)]
    closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    sequence: Option<i64>,
}

impl StateRow {
    /// The row of the snapshot `record` of `system_id`, read from `topic` at `partition` and
    /// `offset`. A snapshot whose state cannot be read as such is kept as open: it is taken
    /// back, and refused, at the next start, as reading the topic would have.
    pub fn of(topic: &str, system_id: &str, record: &Record, partition: i32, offset: i64) -> Self {
        // The record's key is `{system}|{case}`; the envelope names the case alone.
        let (case_id, version, state) = match serde_json::from_slice::<Probe>(&record.payload) {
            Ok(probe) => (probe.case_id, probe.data.version, probe.data.state),
            Err(_) => (
                record.key.clone(),
                0,
                ProbeState {
                    closed_at: None,
                    sequence: None,
                },
            ),
        };
        Self {
            topic: topic.to_owned(),
            system_id: system_id.to_owned(),
            case_id,
            partition,
            offset,
            version,
            closed_at: state.closed_at,
            sequence: state.sequence,
            payload: record.payload.clone(),
        }
    }

    /// Whether it replaces `held`, a row of the same system and case: when its version is
    /// higher, or the same and read after it. The rule of [`INSERT_STATES`], for rows that meet
    /// before they reach the database.
    pub fn replaces(&self, held: &StateRow) -> bool {
        self.version > held.version
            || (self.version == held.version
                && (self.partition != held.partition || self.offset > held.offset))
    }

    /// The key it replaces a row under: one row per topic, system and case.
    pub fn key(&self) -> (String, String, String) {
        (
            self.topic.clone(),
            self.system_id.clone(),
            self.case_id.clone(),
        )
    }
}

/// A snapshot as the store kept it, with where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The record's value: the snapshot's envelope.
    pub payload: Vec<u8>,
}

impl From<(i32, i64, Vec<u8>)> for StoredSnapshot {
    fn from((partition, offset, payload): (i32, i64, Vec<u8>)) -> Self {
        Self {
            partition,
            offset,
            payload,
        }
    }
}

/// Writes snapshots (the rows follow), each as its system's latest of the case, unless the row
/// holds a higher version, or the same version read after it on the same partition. The
/// version decides, not the offset, as for a system restoring from the topic ([`Versions::newer`]): two snapshots a
/// system published one after the other can land on the partition in the other order, and
/// the later offset is then the older state.
///
/// [`Versions::newer`]: crate::actors::Versions::newer
const INSERT_STATES: &str = "\
    INSERT INTO state_snapshots (topic, system_id, case_id, partition_id, record_offset, \
                                 version, closed_at_us, sequence, payload) ";
/// What follows [`INSERT_STATES`]'s rows (each of a distinct topic, system and case).
const ON_STATE_CONFLICT: &str = " \
    ON CONFLICT (topic, system_id, case_id) DO UPDATE SET \
        partition_id = excluded.partition_id, record_offset = excluded.record_offset, \
        version = excluded.version, closed_at_us = excluded.closed_at_us, \
        sequence = excluded.sequence, payload = excluded.payload \
    WHERE excluded.version > state_snapshots.version \
       OR (excluded.version = state_snapshots.version \
           AND (excluded.partition_id <> state_snapshots.partition_id \
                OR excluded.record_offset > state_snapshots.record_offset))";

impl CaseTx {
    /// Writes `row` as its system's latest snapshot of its case (see [`INSERT_STATES`]).
    pub async fn upsert_state(&mut self, row: &StateRow) -> Result<(), StoreError> {
        self.upsert_states(&[row]).await
    }

    /// [`upsert_state`](Self::upsert_state) for each of `rows` (of distinct systems and cases).
    pub async fn upsert_states(&mut self, rows: &[&StateRow]) -> Result<(), StoreError> {
        write_rows!(
            &mut self.inner,
            rows,
            INSERT_STATES,
            ON_STATE_CONFLICT,
            |values, row| {
                values
                    .push_bind(&row.topic)
                    .push_bind(&row.system_id)
                    .push_bind(&row.case_id)
                    .push_bind(row.partition)
                    .push_bind(row.offset)
                    .push_bind(row.version)
                    .push_bind(row.closed_at.map(|at| at.timestamp_micros()))
                    .push_bind(row.sequence)
                    .push_bind(row.payload.as_ref())
            }
        );
        Ok(())
    }
}

impl CaseRepository {
    /// The snapshots of the cases `system_id` holds open, as read from `topic`: what a
    /// restarted process hands back to the system.
    pub async fn open_snapshots(
        &self,
        topic: &str,
        system_id: &str,
    ) -> Result<Vec<StoredSnapshot>, StoreError> {
        let sql = "SELECT partition_id, record_offset, payload FROM state_snapshots \
                   WHERE topic = $1 AND system_id = $2 AND closed_at_us IS NULL";
        let rows: Vec<(i32, i64, Vec<u8>)> = on_engine!(&self.pool, pool => {
            sqlx::query_as(sql).bind(topic).bind(system_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(StoredSnapshot::from).collect())
    }

    /// Of the closed markers of `system_id` that name a feed position, the one with the
    /// highest: all a restarted intake system needs of its closed cases, so that no new
    /// submission takes a position the city has read. Of several intake processes, instance
    /// `instance` of `instances` issues the positions that are `instance` modulo `instances`:
    /// only those are its own.
    pub async fn last_closed_position(
        &self,
        topic: &str,
        system_id: &str,
        instances: u32,
        instance: u32,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let sql = "SELECT partition_id, record_offset, payload FROM state_snapshots \
                   WHERE topic = $1 AND system_id = $2 AND sequence IS NOT NULL \
                     AND closed_at_us IS NOT NULL AND sequence % $3 = $4 \
                   ORDER BY sequence DESC LIMIT 1";
        let (instances, instance) = (i64::from(instances.max(1)), i64::from(instance));
        let row: Option<(i32, i64, Vec<u8>)> = on_engine!(&self.pool, pool => {
            sqlx::query_as(sql)
                .bind(topic)
                .bind(system_id)
                .bind(instances)
                .bind(instance)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(StoredSnapshot::from))
    }

    /// The closed marker `system_id` last wrote of `case_id`, if the case is closed there.
    pub async fn closed_snapshot(
        &self,
        topic: &str,
        system_id: &str,
        case_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = "SELECT payload FROM state_snapshots \
                   WHERE topic = $1 AND system_id = $2 AND case_id = $3 \
                     AND closed_at_us IS NOT NULL";
        let row: Option<(Vec<u8>,)> = on_engine!(&self.pool, pool => {
            sqlx::query_as(sql)
                .bind(topic)
                .bind(system_id)
                .bind(case_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(payload,)| payload))
    }

    /// The greatest case id (bytewise) of the closed markers of `topic`, of any system; none
    /// when it holds none.
    pub async fn newest_closed_case(&self, topic: &str) -> Result<Option<String>, StoreError> {
        // PostgreSQL orders text by the database's collation, which need not be bytewise;
        // SQLite's default is.
        let sql = match &self.pool {
            super::Pool::Sqlite(_) => {
                "SELECT MAX(case_id) FROM state_snapshots \
                 WHERE topic = $1 AND closed_at_us IS NOT NULL"
            }
            super::Pool::Postgres(_) => {
                "SELECT MAX(case_id COLLATE \"C\") FROM state_snapshots \
                 WHERE topic = $1 AND closed_at_us IS NOT NULL"
            }
        };
        let newest: Option<String> = on_engine!(&self.pool, pool => {
            sqlx::query_scalar(sql).bind(topic).fetch_one(pool).await?
        });
        Ok(newest)
    }

    /// Deletes the closed markers of cases closed before `before`; answers how many.
    pub async fn forget_closed_states(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "DELETE FROM state_snapshots WHERE closed_at_us < $1";
        let before = before.timestamp_micros();
        let deleted = on_engine!(&self.pool, pool => {
            sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()
        });
        Ok(deleted)
    }
}

/// Where a system finds the closed marker of a case it does not hold: in the store, as the
/// state group wrote it.
///
/// Only markers the store held before the process read them from the state topic need looking
/// up: every snapshot the state group reads after start-up is handed to its system as well. So
/// the first look-up also reads the greatest case id among the store's closed markers, and a
/// case id above it (every case issued since: ids issued by [`CaseId::generate`] sort by the
/// time they were issued) is known to have none, without asking the store. Clones share what
/// that first look-up read.
///
/// [`CaseId::generate`]: crate::domain::CaseId::generate
#[derive(Debug, Clone)]
pub struct ClosedStates {
    /// The store.
    repository: CaseRepository,
    /// The state topic's full name.
    topic: String,
    /// The greatest case id of a closed marker in the store when it was first asked (none
    /// when there was none), once asked.
    newest: Arc<OnceCell<Option<String>>>,
}

impl ClosedStates {
    /// The closed markers of `topic` in `repository`.
    pub fn new(repository: CaseRepository, topic: String) -> Self {
        Self {
            repository,
            topic,
            newest: Arc::default(),
        }
    }

    /// Whether the store may hold a closed marker of `case_id` that the process did not read
    /// from the state topic: false for a case id above every marker's the store held at the
    /// first look-up; true until that look-up.
    pub fn may_hold(&self, case_id: &str) -> bool {
        self.newest
            .get()
            .is_none_or(|newest| below(newest.as_deref(), case_id))
    }

    /// The closed marker `system_id` wrote of `case_id` (the snapshot's envelope), if any.
    pub async fn marker(
        &self,
        system_id: &str,
        case_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let newest = self
            .newest
            .get_or_try_init(|| self.repository.newest_closed_case(&self.topic))
            .await?;
        if !below(newest.as_deref(), case_id) {
            return Ok(None);
        }
        self.repository
            .closed_snapshot(&self.topic, system_id, case_id)
            .await
    }
}

/// Whether `case_id` is at most `newest` (bytewise), the greatest case id of a stored closed
/// marker; never when there is none.
fn below(newest: Option<&str>, case_id: &str) -> bool {
    newest.is_some_and(|newest| case_id <= newest)
}
