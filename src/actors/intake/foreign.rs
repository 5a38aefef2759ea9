//! The cases of another intake process, when the city runs several (see `share.rs`): this
//! process does not follow them on the bus, so it answers for them from the case repository,
//! read afresh each time, and keeps nothing of them once it answered. It never writes their
//! rows (their own process does), and an applicant's act on one is published from here all the
//! same: its own process reads it from the bus and updates the case.

use super::resident::is_closed;
use super::view::CaseView;
use super::{CaseRecord, IntakeSystem};
use crate::domain::CaseId;
use crate::store::{CaseRepository, StoreError};
use actix::prelude::*;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often a wait for another process's case to close reads it again.
const POLL_EVERY: Duration = Duration::from_millis(500);

impl IntakeSystem {
    /// Whether `case_id` belongs to another intake process.
    pub(super) fn is_foreign(&self, case_id: &CaseId) -> bool {
        !self.share.owns(case_id)
    }

    /// [`with_case`](Self::with_case) for a case of another intake process: reads its row,
    /// runs `then` with it in memory, and lets it go.
    pub(super) fn with_foreign_case<R: 'static>(
        &mut self,
        case_id: &CaseId,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) -> ResponseActFuture<Self, R> + 'static,
        unavailable: impl FnOnce(StoreError) -> R + 'static,
    ) -> ResponseActFuture<Self, R> {
        let Some(repository) = &self.repository else {
            // Without a repository there is one intake process, and no case is foreign.
            return then(self, ctx);
        };
        let read = repository.read(case_id);
        let case_id = case_id.clone();
        Box::pin(
            read.into_actor(self)
                .then(move |read, intake, ctx| match read {
                    Ok(row) => {
                        // Taken in for `then` alone: nothing of it is kept, it may be gone
                        // from memory by the time a later request asks.
                        intake.cases.remove(&case_id);
                        if let Some(row) = row {
                            intake.admit(row);
                        }
                        let answer = then(intake, ctx);
                        intake.let_go(&case_id);
                        answer
                    }
                    Err(error) => Box::pin(fut::ready(unavailable(error))),
                }),
        )
    }

    /// Forgets what memory holds of another process's case.
    fn let_go(&mut self, case_id: &CaseId) {
        self.cases.remove(case_id);
        self.versions.forget(case_id);
        self.trails.forget(case_id);
        if let Some(repository) = &mut self.repository {
            repository.forget_closed(case_id);
        }
    }

    /// Waits for another process's case to complete or fail, reading it from the repository
    /// until it does or the waiter gives up; `None` when the repository does not hold it.
    pub(super) fn await_foreign(
        &mut self,
        case_id: CaseId,
    ) -> ResponseActFuture<Self, Option<oneshot::Receiver<CaseView>>> {
        let Some(cases) = self.repository.as_ref().map(|r| r.cases().clone()) else {
            return Box::pin(fut::ready(None));
        };
        Box::pin(
            async move {
                let first = read_view(&cases, &case_id).await.ok().flatten()?;
                let (tx, rx) = oneshot::channel();
                tokio::spawn(watch(cases, case_id, first, tx));
                Some(rx)
            }
            .into_actor(self),
        )
    }
}

/// Sends the view of `case_id` to `tx` once it is closed, reading it every [`POLL_EVERY`];
/// stops when the receiver is gone.
async fn watch(
    cases: CaseRepository,
    case_id: CaseId,
    mut view: CaseView,
    mut tx: oneshot::Sender<CaseView>,
) {
    loop {
        if is_closed(view.status) {
            // A receiver gone has nothing left to hear.
            let _ = tx.send(view);
            return;
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
        match read_view(&cases, &case_id).await {
            Ok(Some(read)) => view = read,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%case_id, %error, "the case repository cannot be read; trying again");
            }
        }
    }
}

/// The view of `case_id` as the repository holds it.
async fn read_view(cases: &CaseRepository, case_id: &CaseId) -> Result<Option<CaseView>, String> {
    let row = cases
        .get(case_id.as_str())
        .await
        .map_err(|e| e.to_string())?;
    row.map(|row| CaseRecord::from_row(row).map(|record| record.view))
        .transpose()
        .map_err(|e| e.to_string())
}
