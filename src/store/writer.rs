//! [`CaseWriter`]: the latest row of every changed case, written to the repository in batches,
//! with the offsets of the consumer group whose records changed them.
//!
//! The intake system hands it a case's row after every change to the case's view (once per
//! case for the messages one pass of its mailbox handled, before their handling ends); the
//! consumer that delivered the records hands it the group's offsets once they are handled
//! ([`CaseWriter::offset`]). Rows wait at most [`BATCH_EVERY`], coalesced by case id (only the
//! latest row of a case is written), offsets coalesced by partition, and all are then written
//! in one transaction: a case that changes ten times in a batch costs one write. A batch that
//! fails is logged and kept; it is written with the next one, so nothing is lost while the
//! process lives.
//!
//! The supervision system hands it the rows of the records it changed ([`SupervisionRow`]) the
//! same way, coalesced by record and written in the same transactions as the cases' rows.
//!
//! Why a crash loses nothing: a record's rows are handed on before its handler finishes, and
//! its offset only after, through the same channel, so an offset is never written before the
//! rows of the records below it. A crash loses the last batch whole — rows and offsets — and
//! the group, resuming from the offsets written, reads those records again; a row written
//! ahead of its offset is met again by records it already holds, which the intake system
//! recognises by their message ids.
//!
//! A process's state group hands it the snapshots it read ([`StateRow`], see [`super::state`])
//! the same way, coalesced by system and case, with its offsets.
//!
//! A tokio task fed by an unbounded channel rather than an actor: the intake system must hand
//! rows on without waiting and without losing one to a full mailbox (`do_send` drops a message
//! when the mailbox is full), and the task turns the channel's backlog into one batch per
//! transaction; what the channel holds is bounded by what the intake system changes between two
//! batches.

use super::supervision::SupervisionBatch;
use super::tx::OffsetRow;
use super::{CaseRepository, CaseRow, StateRow, SupervisionRow};
use crate::maps::Map;
use crate::maps::SharedMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// How long a changed row waits for others before its batch is written.
pub const BATCH_EVERY: Duration = Duration::from_millis(5);
/// How long a failed batch waits before it is written again.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// How many times [`CaseWriter::flush`] tries a last batch before giving it up.
const FLUSH_ATTEMPTS: u32 = 5;
/// How many rows and offsets may wait for the writer task before [`CaseWriter::room`] makes
/// the systems that hand them on wait: a consumer reading a long history faster than the
/// database takes its rows slows down to the database's pace instead of piling them up.
pub const BACKLOG_LIMIT: usize = 4_096;

/// What the writer task is told.
enum Command {
    /// A case's row as it now stands.
    Row(Arc<CaseRow>),
    /// Where a consumer group resumes a partition.
    Offset(StoredOffset),
    /// A supervision record's row as it now stands.
    Supervision(SupervisionRow),
    /// A snapshot read from the state topic.
    State(StateRow),
    /// Write everything received now, answer whether it was, and go on.
    Sync(oneshot::Sender<bool>),
    /// Write everything received, answer how many rows could not be, and stop.
    Flush(oneshot::Sender<usize>),
}

/// Where a consumer group resumes one partition: the next offset to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    /// The group, as the repository names it.
    pub group: String,
    /// The topic's full name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to read.
    pub next: i64,
}

/// What waits for the next transaction.
#[derive(Default)]
struct Batch {
    /// The latest row of every changed case.
    rows: Map<String, Arc<CaseRow>>,
    /// The latest offset of every (group, topic, partition).
    offsets: Map<(String, String, i32), i64>,
    /// The latest row of every changed supervision record.
    supervised: SupervisionBatch,
    /// The latest snapshot read of every system and case.
    states: Map<(String, String, String), StateRow>,
}

impl Batch {
    /// Holds nothing to write.
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.offsets.is_empty()
            && self.supervised.is_empty()
            && self.states.is_empty()
    }

    /// Rows and offsets held, for the logs.
    fn len(&self) -> usize {
        self.rows.len() + self.offsets.len() + self.supervised.len() + self.states.len()
    }

    /// Keeps `row` unless the batch holds a snapshot of its system and case that it does not
    /// replace (see [`StateRow::replaces`]).
    fn add_state(&mut self, row: StateRow) {
        match self.states.entry(row.key()) {
            std::collections::hash_map::Entry::Occupied(mut kept) => {
                if row.replaces(kept.get()) {
                    kept.insert(row);
                }
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert(row);
            }
        }
    }
}

/// Where the intake system hands the rows of the cases it changed; cloning gives another
/// handle on the same writer.
#[derive(Debug, Clone)]
pub struct CaseWriter {
    /// The writer task's channel.
    commands: mpsc::UnboundedSender<Command>,
    /// The rows handed on and not yet committed, by case id: what a reader of this process
    /// must see rather than the repository's older row.
    unwritten: Unwritten,
    /// Commands handed on and not yet taken by the writer task, and a signal each time it
    /// takes some.
    backlog: Arc<Backlog>,
}

/// Commands waiting in the writer task's channel.
#[derive(Debug, Default)]
struct Backlog {
    /// How many.
    queued: AtomicUsize,
    /// Told whenever the task took commands.
    taken: Notify,
}

/// Rows handed on and not yet committed, by case id.
type Unwritten = Arc<SharedMap<String, Arc<CaseRow>>>;

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Row(row) => write!(f, "Row({})", row.case_id),
            Command::Offset(offset) => write!(f, "Offset({offset:?})"),
            Command::Supervision(row) => write!(f, "Supervision({})", row.key()),
            Command::State(row) => write!(f, "State({}, {})", row.system_id, row.case_id),
            Command::Sync(_) => f.write_str("Sync"),
            Command::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl CaseWriter {
    /// Starts the writer task on the current tokio runtime, writing to `repository`.
    pub fn start(repository: CaseRepository) -> Self {
        let (commands, received) = mpsc::unbounded_channel();
        let unwritten = Unwritten::default();
        let backlog = Arc::new(Backlog::default());
        tokio::spawn(run(
            repository,
            received,
            unwritten.clone(),
            backlog.clone(),
        ));
        Self {
            commands,
            unwritten,
            backlog,
        }
    }

    /// Hands `command` to the writer task; gives it back when the task stopped.
    fn send(&self, command: Command) -> Result<(), Box<Command>> {
        self.backlog.queued.fetch_add(1, Ordering::Relaxed);
        self.commands.send(command).map_err(|unsent| {
            self.backlog.queued.fetch_sub(1, Ordering::Relaxed);
            Box::new(unsent.0)
        })
    }

    /// Resolves once fewer than [`BACKLOG_LIMIT`] rows and offsets wait for the writer task:
    /// what a system that hands rows on awaits before it takes its next record.
    pub fn room(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let backlog = self.backlog.clone();
        let stopped = self.commands.clone();
        async move {
            loop {
                let taken = backlog.taken.notified();
                if backlog.queued.load(Ordering::Relaxed) < BACKLOG_LIMIT || stopped.is_closed() {
                    return;
                }
                taken.await;
            }
        }
    }

    /// Hands on the row of a case whose view changed. After [`flush`](Self::flush) the row
    /// is not written (it is rewritten when the next process rebuilds its views).
    pub fn write(&self, row: CaseRow) {
        let row = Arc::new(row);
        self.unwritten.insert(row.case_id.clone(), row.clone());
        if let Err(unsent) = self.send(Command::Row(row)) {
            tracing::debug!(command = ?unsent, "case writer stopped; row left to the next start");
        }
    }

    /// The row of `case_id` handed on and not yet committed, if any: newer than what the
    /// repository holds.
    pub fn unwritten(&self, case_id: &str) -> Option<CaseRow> {
        self.unwritten.get(case_id).map(|row| CaseRow::clone(&row))
    }

    /// Hands on where a consumer group resumes a partition, to be written with the rows
    /// handed on before it (or after them). After [`flush`](Self::flush) it is not written:
    /// the group reads again from the offset written before.
    pub fn offset(&self, offset: StoredOffset) {
        if let Err(unsent) = self.send(Command::Offset(offset)) {
            tracing::debug!(command = ?unsent, "case writer stopped; offset not stored");
        }
    }

    /// Hands on the row of a supervision record that changed; like [`write`](Self::write).
    pub fn write_supervision(&self, row: SupervisionRow) {
        if let Err(unsent) = self.send(Command::Supervision(row)) {
            tracing::debug!(command = ?unsent, "case writer stopped; row left to the next start");
        }
    }

    /// Hands on a snapshot the state group read, to be written with the rows handed on before
    /// it and before the group's next offset; like [`write`](Self::write).
    pub fn write_state(&self, row: StateRow) {
        if let Err(unsent) = self.send(Command::State(row)) {
            tracing::debug!(command = ?unsent, "case writer stopped; snapshot left to the next start");
        }
    }

    /// Waits until every row handed on so far was written, or its batch failed (and waits for
    /// the next): a read that follows sees them. Answers whether they were written.
    pub async fn written(&self) -> bool {
        let (done, answered) = oneshot::channel();
        if self.send(Command::Sync(done)).is_err() {
            return false;
        }
        // No answer means the writer stopped: nothing more will be written.
        answered.await.unwrap_or(false)
    }

    /// Writes every row handed on so far, then stops the writer. Answers how many rows could
    /// not be written (logged; the next start rewrites them).
    pub async fn flush(&self) -> usize {
        let (done, written) = oneshot::channel();
        if self.send(Command::Flush(done)).is_err() {
            return 0;
        }
        // The task answers before it ends; no answer means it ended with nothing to write.
        written.await.unwrap_or(0)
    }
}

/// The writer task: gathers rows until a batch is due, writes it, and on a flush writes what
/// is left and stops.
async fn run(
    repository: CaseRepository,
    mut received: mpsc::UnboundedReceiver<Command>,
    unwritten: Unwritten,
    backlog: Arc<Backlog>,
) {
    let mut pending = Batch::default();
    let repository = Target {
        repository,
        unwritten,
    };
    let mut due: Option<Instant> = None;
    loop {
        let command = match due {
            None => received.recv().await,
            Some(at) => match tokio::time::timeout_at(at, received.recv()).await {
                Ok(command) => command,
                Err(_) => {
                    let written = write(&repository, &mut pending).await;
                    due = (!written).then(|| Instant::now() + RETRY_AFTER);
                    continue;
                }
            },
        };
        if command.is_some() {
            backlog.queued.fetch_sub(1, Ordering::Relaxed);
            backlog.taken.notify_waiters();
        }
        match command {
            Some(Command::Row(row)) => {
                pending.rows.insert(row.case_id.clone(), row);
                due.get_or_insert_with(|| Instant::now() + BATCH_EVERY);
            }
            Some(Command::Offset(offset)) => {
                let key = (offset.group, offset.topic, offset.partition);
                pending.offsets.insert(key, offset.next);
                due.get_or_insert_with(|| Instant::now() + BATCH_EVERY);
            }
            Some(Command::Supervision(row)) => {
                pending.supervised.add(row);
                due.get_or_insert_with(|| Instant::now() + BATCH_EVERY);
            }
            Some(Command::State(row)) => {
                pending.add_state(row);
                due.get_or_insert_with(|| Instant::now() + BATCH_EVERY);
            }
            Some(Command::Sync(done)) => {
                let written = write(&repository, &mut pending).await;
                due = (!written).then(|| Instant::now() + RETRY_AFTER);
                let _ = done.send(written);
            }
            Some(Command::Flush(done)) => {
                // A flush ends the task: nothing is sent after the last one.
                let _ = done.send(flush(&repository, &mut pending).await);
                return;
            }
            None => {
                flush(&repository, &mut pending).await;
                return;
            }
        }
    }
}

/// Where batches go: the repository, and the rows readers see until they are committed.
struct Target {
    /// The repository.
    repository: CaseRepository,
    /// Rows handed on and not yet committed.
    unwritten: Unwritten,
}

/// Writes `pending` in a few attempts; answers how many rows and offsets are left unwritten.
async fn flush(repository: &Target, pending: &mut Batch) -> usize {
    for attempt in 1..=FLUSH_ATTEMPTS {
        if write(repository, pending).await {
            return 0;
        }
        if attempt < FLUSH_ATTEMPTS {
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
    tracing::error!(
        rows = pending.len(),
        "the case repository could not be written before stopping; the next start rewrites \
         these cases from the topics"
    );
    pending.len()
}

/// Writes `pending` in one transaction, rows and offsets together; on success empties it and
/// answers true. A failure is
/// logged and leaves `pending` as it was, for the next batch.
async fn write(target: &Target, pending: &mut Batch) -> bool {
    if pending.is_empty() {
        return true;
    }
    let written = async {
        let mut tx = target.repository.begin().await?;
        let rows: Vec<&CaseRow> = pending.rows.values().map(Arc::as_ref).collect();
        tx.upsert_cases(&rows).await?;
        let offsets: Vec<OffsetRow<'_>> = pending
            .offsets
            .iter()
            .map(|((group, topic, partition), next)| {
                (group.as_str(), topic.as_str(), *partition, *next)
            })
            .collect();
        tx.store_offsets(&offsets).await?;
        pending.supervised.write_in(&mut tx).await?;
        tx.upsert_states(&pending.states.values().collect::<Vec<_>>())
            .await?;
        tx.commit().await
    }
    .await;
    match written {
        Ok(()) => {
            for (case_id, row) in std::mem::take(&mut pending.rows) {
                // A row handed on since stays: it is newer, and in the next batch.
                target
                    .unwritten
                    .remove_if(&case_id, |_, unwritten| Arc::ptr_eq(unwritten, &row));
            }
            *pending = Batch::default();
            true
        }
        Err(error) => {
            tracing::warn!(%error, rows = pending.len(), "writing cases to the repository failed; retrying");
            false
        }
    }
}
