//! Which cases the intake system keeps in memory when it has a case repository.
//!
//! The repository holds every case; memory holds the [`StoreSettings::open_cases_in_memory`]
//! open ones that changed last (taken back from the repository at start, [`TakeBack`]) and the
//! last [`StoreSettings::closed_cases_in_memory`] closed ones, so that what the process keeps
//! does not grow with the city's history nor with its backlog. A message or a person asking
//! about a case that is not in memory waits while the case is read back
//! ([`IntakeSystem::with_case`]); a closed case read back leaves memory again with the next
//! cases that close, an open one when others changed since.
//!
//! An open case that leaves memory leaves behind where it stands ([`Away`]): its last step, for
//! the operator's list of stalled cases, and its feed position, for its closed marker. A case
//! stays while something waits on it: its submission not yet published, an applicant waiting
//! for it to complete, an applicant's act on it, a read of it.
//!
//! [`StoreSettings::closed_cases_in_memory`]: crate::settings::StoreSettings::closed_cases_in_memory
//! [`StoreSettings::open_cases_in_memory`]: crate::settings::StoreSettings::open_cases_in_memory

use super::stalled::Standing;
use super::view::{CaseView, Progress};
use super::{CaseReadError, CaseRecord, Held, Holding, IntakeSystem, OwnCase, TakeBack};
use crate::domain::{CaseId, CaseStatus, MatterCode, TraceId};
use crate::maps::Map;
use crate::store::{CaseFilter, CaseRepository, CaseRow, CaseWriter, StoreError, MAX_PAGE};
use actix::prelude::*;
use futures::future::BoxFuture;
use std::collections::VecDeque;

/// The case repository as the intake system uses it.
pub(super) struct Repository {
    /// Where the row of every changed case goes.
    pub(super) writer: CaseWriter,
    /// Where a case not in memory is read back from.
    cases: CaseRepository,
    /// The closed cases still in memory, oldest closed first.
    closed: VecDeque<CaseId>,
    /// How many closed cases stay in memory.
    keep_closed: usize,
    /// Cases being read back, with how many reads of each are out: none of them leaves memory
    /// meanwhile, so that a read finishing later never takes back a row older than what
    /// memory held.
    reading: Map<CaseId, u32>,
    /// How many open cases stay in memory.
    keep_open: usize,
    /// The cases in memory in the order they last changed, oldest first, each with the number
    /// of that change: an entry of a case that changed again since stands for nothing.
    recent: VecDeque<(CaseId, u64)>,
    /// The number of the last change.
    changes: u64,
    /// The open cases that left memory. Boxed: an entry is 112 bytes, and a table keeps room
    /// for more entries than it holds.
    away: Map<CaseId, Box<Away>>,
}

/// What memory keeps of an open case that left it.
pub(super) struct Away {
    /// Where it stands.
    pub(super) standing: Standing,
    /// Its feed position, when this process knows it: its closed marker names it.
    sequence: Option<u64>,
}

/// Whether nothing but a rating changes the case any more: it may leave memory.
pub(super) fn is_closed(status: CaseStatus) -> bool {
    matches!(status, CaseStatus::Completed | CaseStatus::Failed)
}

impl Repository {
    /// The repository itself.
    pub(super) fn cases(&self) -> &CaseRepository {
        &self.cases
    }

    /// Reads the row of `case_id` (on a task of its own: see [`crate::store::detached`]).
    pub(super) fn read(
        &self,
        case_id: &CaseId,
    ) -> impl std::future::Future<Output = Result<Option<CaseRow>, StoreError>> + 'static {
        let (cases, id) = (self.cases.clone(), case_id.to_string());
        crate::store::detached(async move { cases.get(&id).await })
    }

    /// `case_id` is no longer among the closed cases in memory.
    pub(super) fn forget_closed(&mut self, case_id: &CaseId) {
        self.closed.retain(|id| id != case_id);
    }

    /// The newest of `owner`'s cases in the repository: one page, at most [`MAX_PAGE`]. Read
    /// once every row handed to the writer before the call is written, so that a case which
    /// left memory before the call is in it.
    pub(super) fn list_own(
        &self,
        owner: &str,
    ) -> BoxFuture<'static, Result<Vec<OwnCase>, CaseReadError>> {
        let cases = self.cases.clone();
        let writer = self.writer.clone();
        let filter = CaseFilter {
            owner: Some(owner.to_owned()),
            ..CaseFilter::default()
        };
        let page = crate::store::detached(async move {
            // A batch that failed is written again later; the list shows what is there now.
            writer.written().await;
            cases.list(&filter, None, MAX_PAGE).await
        });
        Box::pin(async move {
            let page = page.await?;
            let own = page.rows.into_iter().map(OwnCase::from_row);
            Ok(own.collect::<Result<_, StoreError>>()?)
        })
    }
}

impl OwnCase {
    /// The case of `view`, as its applicant's list shows it.
    pub(super) fn of(view: &CaseView) -> Self {
        OwnCase {
            case_id: view.case_id.clone(),
            matter_code: view.application.matter_code.clone(),
            status: view.status,
            submitted_at: view.application.submitted_at,
        }
    }

    /// The case of `row`, as its applicant's list shows it.
    fn from_row(row: CaseRow) -> Result<Self, StoreError> {
        let status = serde_json::from_value(serde_json::Value::String(row.status.clone()))
            .map_err(|_| StoreError::Corrupt {
                case_id: row.case_id.clone(),
                what: format!("the status `{}`", row.status),
            })?;
        Ok(OwnCase {
            case_id: CaseId::from_string(row.case_id),
            matter_code: MatterCode::from_string(row.matter_code),
            status,
            submitted_at: row.submitted_at,
        })
    }
}

impl CaseRecord {
    /// A case as the repository holds it. The progress of its events, which the view's JSON
    /// does not carry, is read from where each event stands; the messages in its history are
    /// the ones it has seen.
    pub(super) fn from_row(row: CaseRow) -> Result<Self, serde_json::Error> {
        let mut view: CaseView = row.view.read()?;
        for event in &mut view.collaboration_events {
            event.progress = Progress::of(event);
        }
        let seen = view.history.iter().map(|e| e.message_id.clone()).collect();
        Ok(CaseRecord {
            view,
            seen,
            watchers: Vec::new(),
            supplement_sent: None,
            trace_id: TraceId::from(row.trace_id.as_str()),
            sequence: None,
            touched: 0,
        })
    }
}

impl IntakeSystem {
    /// The same intake system, handing the row of every case whose view changes to `writer`,
    /// reading cases not in memory from `cases`, and keeping `keep_open` open cases and
    /// `keep_closed` closed ones in memory (at least one of each).
    pub fn keeping_cases_in(
        mut self,
        writer: CaseWriter,
        cases: CaseRepository,
        keep_open: usize,
        keep_closed: usize,
    ) -> Self {
        self.repository = Some(Repository {
            writer,
            cases,
            closed: VecDeque::new(),
            keep_closed,
            reading: Map::default(),
            keep_open: keep_open.max(1),
            recent: VecDeque::new(),
            changes: 0,
            away: Map::default(),
        });
        self
    }

    /// Where each open case that left memory stands.
    pub(super) fn away_standings(&self) -> impl Iterator<Item = (&CaseId, &Standing)> {
        let away = self.repository.as_ref().map(|r| &r.away);
        away.into_iter()
            .flat_map(|away| away.iter().map(|(case_id, away)| (case_id, &away.standing)))
    }

    /// `case_id`, in memory, changed: it is the last to leave memory of the open cases.
    pub(super) fn touch(&mut self, case_id: &CaseId) {
        let (Some(repository), Some(record)) = (&mut self.repository, self.cases.get_mut(case_id))
        else {
            return;
        };
        repository.changes += 1;
        record.touched = repository.changes;
        repository
            .recent
            .push_back((case_id.clone(), repository.changes));
        // The entries of cases that changed again or left stand for nothing: dropped once
        // they outnumber the cases.
        if repository.recent.len() > 2 * self.cases.len() + 1024 {
            let cases = &self.cases;
            repository
                .recent
                .retain(|(id, change)| cases.get(id).is_some_and(|r| r.touched == *change));
        }
    }

    /// Lets the open cases that changed longest ago leave memory while more than
    /// `keep_open` are in it. Called where no case is being handled: once a delivered
    /// message's handling ends, after a snapshot is restored, after a submission (its case
    /// waits for the city, and stays), as each case is taken back at start.
    pub(super) fn make_room(&mut self) {
        let Some(repository) = &self.repository else {
            return;
        };
        let open = self.cases.len().saturating_sub(repository.closed.len());
        let mut excess = open.saturating_sub(repository.keep_open);
        while excess > 0 {
            let Some((case_id, change)) = self
                .repository
                .as_mut()
                .and_then(|repository| repository.recent.pop_front())
            else {
                break;
            };
            let Some(record) = self.cases.get(&case_id) else {
                continue;
            };
            // Changed since (a later entry stands for it), closed (closed cases leave with the
            // next ones that close), or waited on: such a case stays until it changes again,
            // which gives it a new entry.
            if record.touched != change
                || is_closed(record.view.status)
                || self.held_in_memory(&case_id, record)
            {
                continue;
            }
            if self.leave(&case_id) {
                excess -= 1;
            }
        }
    }

    /// Whether something waits on the open case `case_id`, so that it stays in memory: its
    /// submission is not published yet (the feed hands it out from memory), an applicant
    /// waits for it, an applicant's act on it is recorded, or it is being read back.
    fn held_in_memory(&self, case_id: &CaseId, record: &CaseRecord) -> bool {
        record.view.status == CaseStatus::Submitted
            || !record.watchers.is_empty()
            || self.acts.on_case(case_id)
            || self.is_foreign(case_id)
            || self
                .repository
                .as_ref()
                .is_some_and(|r| r.reading.contains_key(case_id))
    }

    /// The open case `case_id` leaves memory: its row goes to the writer if due, and what
    /// stays is where it stands ([`Away`]). Its snapshot version stays too, so that its next
    /// snapshot (its closed marker) takes the next version. A case with no step to stand at
    /// (which cannot be: the submission is the first) stays; whether it left.
    fn leave(&mut self, case_id: &CaseId) -> bool {
        let standing = self.cases.get(case_id).and_then(|r| Standing::of(&r.view));
        let (Some(standing), true) = (standing, self.repository.is_some()) else {
            return false;
        };
        self.write_due_row(case_id);
        let Some(record) = self.cases.remove(case_id) else {
            return false;
        };
        self.trails.forget(case_id);
        // Published: the city has it, and the feed no longer needs to hand it out.
        if let Some(sequence) = record.sequence {
            self.feed.remove(&sequence);
        }
        let away = Away {
            standing,
            sequence: record.sequence,
        };
        if let Some(repository) = &mut self.repository {
            repository.away.insert(case_id.clone(), Box::new(away));
        }
        true
    }

    /// Takes the case of `row` into memory, unless it is there already: what memory holds is
    /// at least as new as the repository's row.
    pub(super) fn admit(&mut self, mut row: CaseRow) {
        let case_id = CaseId::from_string(row.case_id.clone());
        if self.cases.contains_key(&case_id) {
            return;
        }
        let trail = row.trail.take();
        match CaseRecord::from_row(row) {
            Ok(mut record) => {
                if let Some(trail) = trail.filter(|_| !is_closed(record.view.status)) {
                    if let Err(error) = self.trails.restore(&case_id, &trail) {
                        tracing::warn!(%case_id, %error, "the case's current step cannot be read back; a re-drive of it has nothing to send");
                    }
                }
                let away = self
                    .repository
                    .as_mut()
                    .and_then(|r| r.away.remove(&case_id));
                if let Some(away) = away {
                    record.sequence = away.sequence;
                }
                let closed = is_closed(record.view.status);
                self.cases.insert(case_id.clone(), Box::new(record));
                if closed {
                    self.closed(&case_id);
                } else {
                    // Last to leave: it is read back to be handled now.
                    self.touch(&case_id);
                }
            }
            Err(error) => {
                tracing::error!(%case_id, %error, "the case repository holds a case this version cannot read; left out")
            }
        }
    }

    /// Runs `then` once `case_id` is in memory, if the repository holds it: at once when it is
    /// in memory already or there is no repository; else after reading it back. When the
    /// repository cannot be read, answers `unavailable` of the error instead.
    pub(super) fn with_case<R: 'static>(
        &mut self,
        case_id: &CaseId,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) -> ResponseActFuture<Self, R> + 'static,
        unavailable: impl FnOnce(StoreError) -> R + 'static,
    ) -> ResponseActFuture<Self, R> {
        if self.is_foreign(case_id) {
            return self.with_foreign_case(case_id, ctx, then, unavailable);
        }
        let repository = match &self.repository {
            Some(repository) if !self.cases.contains_key(case_id) => repository,
            _ => return then(self, ctx),
        };
        // A row handed on and not yet committed is newer than the repository's.
        if let Some(row) = repository.writer.unwritten(case_id.as_str()) {
            self.admit(row);
            return then(self, ctx);
        }
        let read = repository.read(case_id);
        if let Some(repository) = &mut self.repository {
            *repository.reading.entry(case_id.clone()).or_default() += 1;
        }
        let case_id = case_id.clone();
        Box::pin(read.into_actor(self).then(move |read, intake, ctx| {
            intake.read_back(&case_id);
            match read {
                Ok(row) => {
                    if let Some(row) = row {
                        intake.admit(row);
                    }
                    then(intake, ctx)
                }
                Err(error) => Box::pin(fut::ready(unavailable(error))),
            }
        }))
    }

    /// A read back of `case_id` finished.
    fn read_back(&mut self, case_id: &CaseId) {
        let Some(repository) = &mut self.repository else {
            return;
        };
        let reading = &mut repository.reading;
        if let Some(count) = reading.get_mut(case_id) {
            *count -= 1;
            if *count == 0 {
                reading.remove(case_id);
            }
        }
    }

    /// `case_id` closed: it stays in memory among the last closed cases, and the oldest of
    /// those leave it and the feed (the repository has their rows; the city centre published
    /// them long before).
    pub(super) fn closed(&mut self, case_id: &CaseId) {
        let Some(repository) = &mut self.repository else {
            return;
        };
        repository.closed.push_back(case_id.clone());
        // The case just closed stays, whatever the setting: it may be acted on right now.
        let excess = repository
            .closed
            .len()
            .saturating_sub(repository.keep_closed.max(1));
        // A case being read back leaves with the next cases that close.
        let (reading, leaving): (Vec<CaseId>, Vec<CaseId>) = repository
            .closed
            .drain(..excess)
            .partition(|id| repository.reading.contains_key(id));
        repository.closed.extend(reading);
        for case_id in leaving {
            // Read back since, it may be waited for again: it stays until it closes anew.
            let idle = self
                .cases
                .get(&case_id)
                .is_some_and(|r| is_closed(r.view.status) && r.watchers.is_empty());
            if idle {
                self.write_due_row(&case_id);
                if let Some(sequence) = self.cases.remove(&case_id).and_then(|r| r.sequence) {
                    self.feed.remove(&sequence);
                }
                self.versions.forget(&case_id);
                self.trails.forget(&case_id);
                // A repeated act on it is then checked against the case read back, as after a
                // restart.
                self.acts.forget_cases(std::slice::from_ref(&case_id));
            }
        }
    }
}

impl Handler<TakeBack> for IntakeSystem {
    type Result = ();

    fn handle(&mut self, msg: TakeBack, _: &mut Self::Context) {
        let count = msg.0.len();
        // Another intake process's cases are its own to follow.
        let share = self.share;
        let own = msg
            .0
            .into_iter()
            .filter(|row| share.owns(&CaseId::from_string(row.case_id.clone())));
        // Taken back oldest change first, so that those that changed last stay; room is made
        // as they come, so that no more than the limit are in memory at once.
        for row in own {
            self.admit(row);
            self.make_room();
        }
        tracing::debug!(cases = count, "a page of open cases taken back");
    }
}

impl Handler<Holding> for IntakeSystem {
    type Result = MessageResult<Holding>;

    fn handle(&mut self, _: Holding, _: &mut Self::Context) -> Self::Result {
        MessageResult(Held {
            cases: self.cases.len(),
            away: self.repository.as_ref().map_or(0, |r| r.away.len()),
            feed: self.feed.len(),
            acts: self.acts.len(),
        })
    }
}
