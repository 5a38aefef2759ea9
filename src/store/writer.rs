//! [`CaseWriter`]: the latest row of every changed case, written to the repository in batches.
//!
//! The intake system hands it a case's row after every change to the case's view. Rows wait
//! at most [`BATCH_EVERY`], coalesced by case id (only the latest row of a case is written),
//! and are then written in one transaction: a case that changes ten times in a batch costs one
//! write. A batch that fails is logged and kept; it is written with the next one, so nothing is
//! lost while the process lives. What a crash loses is rewritten at the next start, when the
//! intake system rebuilds its views from the topics and hands every row again (an upsert, so
//! idempotent).
//!
//! The supervision system hands it the rows of the records it changed ([`SupervisionRow`]) the
//! same way, coalesced by record and written in the same transactions as the cases' rows.
//!
//! A tokio task fed by an unbounded channel rather than an actor: the intake system must hand
//! rows on without waiting and without losing one to a full mailbox (`do_send` drops a message
//! when the mailbox is full), and the task turns the channel's backlog into one batch per
//! transaction; what the channel holds is bounded by what the intake system changes between two
//! batches.

use super::supervision::SupervisionBatch;
use super::{CaseRepository, CaseRow, SupervisionRow};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long a changed row waits for others before its batch is written.
pub const BATCH_EVERY: Duration = Duration::from_millis(5);
/// How long a failed batch waits before it is written again.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// How many times [`CaseWriter::flush`] tries a last batch before giving it up.
const FLUSH_ATTEMPTS: u32 = 5;

/// What the writer task is told.
enum Command {
    /// A case's row as it now stands.
    Row(CaseRow),
    /// A supervision record's row as it now stands.
    Supervision(SupervisionRow),
    /// Write everything received now, answer, and go on.
    Sync(oneshot::Sender<()>),
    /// Write everything received, answer how many rows could not be, and stop.
    Flush(oneshot::Sender<usize>),
}

/// Where the intake system hands the rows of the cases it changed; cloning gives another
/// handle on the same writer.
#[derive(Debug, Clone)]
pub struct CaseWriter {
    /// The writer task's channel.
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Row(row) => write!(f, "Row({})", row.case_id),
            Command::Supervision(row) => write!(f, "Supervision({})", row.key()),
            Command::Sync(_) => f.write_str("Sync"),
            Command::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl CaseWriter {
    /// Starts the writer task on the current tokio runtime, writing to `repository`.
    pub fn start(repository: CaseRepository) -> Self {
        let (commands, received) = mpsc::unbounded_channel();
        tokio::spawn(run(repository, received));
        Self { commands }
    }

    /// Hands on the row of a case whose view changed. After [`flush`](Self::flush) the row
    /// is not written (it is rewritten when the next process rebuilds its views).
    pub fn write(&self, row: CaseRow) {
        if let Err(unsent) = self.commands.send(Command::Row(row)) {
            tracing::debug!(command = ?unsent.0, "case writer stopped; row left to the next start");
        }
    }

    /// Hands on the row of a supervision record that changed; like [`write`](Self::write).
    pub fn write_supervision(&self, row: SupervisionRow) {
        if let Err(unsent) = self.commands.send(Command::Supervision(row)) {
            tracing::debug!(command = ?unsent.0, "case writer stopped; row left to the next start");
        }
    }

    /// Waits until every row handed on so far was written, or its batch failed (and waits for
    /// the next): a read that follows sees them.
    pub async fn written(&self) {
        let (done, answered) = oneshot::channel();
        if self.commands.send(Command::Sync(done)).is_ok() {
            // No answer means the writer stopped: nothing more will be written.
            let _ = answered.await;
        }
    }

    /// Writes every row handed on so far, then stops the writer. Answers how many rows could
    /// not be written (logged; the next start rewrites them).
    pub async fn flush(&self) -> usize {
        let (done, written) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_err() {
            return 0;
        }
        // The task answers before it ends; no answer means it ended with nothing to write.
        written.await.unwrap_or(0)
    }
}

/// The writer task: gathers rows until a batch is due, writes it, and on a flush writes what
/// is left and stops.
async fn run(repository: CaseRepository, mut received: mpsc::UnboundedReceiver<Command>) {
    let mut pending: HashMap<String, CaseRow> = HashMap::new();
    let mut supervised = SupervisionBatch::default();
    let mut due: Option<Instant> = None;
    loop {
        let command = match due {
            None => received.recv().await,
            Some(at) => match tokio::time::timeout_at(at, received.recv()).await {
                Ok(command) => command,
                Err(_) => {
                    let written = write(&repository, &mut pending, &mut supervised).await;
                    due = (!written).then(|| Instant::now() + RETRY_AFTER);
                    continue;
                }
            },
        };
        match command {
            Some(Command::Row(row)) => {
                pending.insert(row.case_id.clone(), row);
                due.get_or_insert_with(|| Instant::now() + BATCH_EVERY);
            }
            Some(Command::Supervision(row)) => {
                supervised.add(row);
                due.get_or_insert_with(|| Instant::now() + BATCH_EVERY);
            }
            Some(Command::Sync(done)) => {
                let written = write(&repository, &mut pending, &mut supervised).await;
                due = (!written).then(|| Instant::now() + RETRY_AFTER);
                let _ = done.send(());
            }
            Some(Command::Flush(done)) => {
                // A flush ends the task: nothing is sent after the last one.
                let _ = done.send(flush(&repository, &mut pending, &mut supervised).await);
                return;
            }
            None => {
                flush(&repository, &mut pending, &mut supervised).await;
                return;
            }
        }
    }
}

/// Writes `pending` and `supervised` in a few attempts; answers how many rows are left
/// unwritten.
async fn flush(
    repository: &CaseRepository,
    pending: &mut HashMap<String, CaseRow>,
    supervised: &mut SupervisionBatch,
) -> usize {
    for attempt in 1..=FLUSH_ATTEMPTS {
        if write(repository, pending, supervised).await {
            return 0;
        }
        if attempt < FLUSH_ATTEMPTS {
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
    tracing::error!(
        rows = pending.len() + supervised.len(),
        "the case repository could not be written before stopping; the next start rewrites \
         these cases from the topics"
    );
    pending.len() + supervised.len()
}

/// Writes `pending` and `supervised` in one transaction; on success empties them and answers
/// true. A failure is logged and leaves them as they were, for the next batch.
async fn write(
    repository: &CaseRepository,
    pending: &mut HashMap<String, CaseRow>,
    supervised: &mut SupervisionBatch,
) -> bool {
    if pending.is_empty() && supervised.is_empty() {
        return true;
    }
    let written = async {
        let mut tx = repository.begin().await?;
        for row in pending.values() {
            tx.upsert_case(row).await?;
        }
        supervised.write_in(&mut tx).await?;
        tx.commit().await
    }
    .await;
    match written {
        Ok(()) => {
            pending.clear();
            supervised.clear();
            true
        }
        Err(error) => {
            tracing::warn!(%error, rows = pending.len() + supervised.len(), "writing cases to the repository failed; retrying");
            false
        }
    }
}
