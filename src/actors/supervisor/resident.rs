//! Which cases the supervisor keeps in memory when it writes to the case repository (unless
//! `store.supervision_keeps_closed`).
//!
//! The repository holds every record; memory holds the cases whose supervision is open (taken
//! back at start, [`TakeBackRecords`], on a bus that outlives the process): a case leaves
//! memory, with the ids of the messages applied to it, once it is decided and none of its
//! events' dispatches is open, or when none of its messages made a record of it — and only
//! once its rows are written, so that a read of the repository finds it as memory held it. A
//! message for a case not in memory waits while the case is read back
//! ([`Supervisor::with_case`]); a case the repository does not hold either is new. On a bus
//! that ends with the process nothing is taken back, and the supervisor has read every record
//! of every case since it started: it then remembers the greatest id of a case that left
//! memory, and reads back only cases whose id is not above it. Case ids are issued in time
//! order (UUIDv7), so a new case's id is above those of the cases that left before it came,
//! and it costs no read. That order only saves reads: a case whose id is above every id that
//! left cannot have left, whatever the order (ids of several intake processes, whose clocks
//! differ, cost some reads that find nothing). What is remembered stays one id however many
//! cases leave.
//!
//! The supervisor's own figures ([`GetDepartmentFigures`](super::GetDepartmentFigures)) then
//! cover only the cases in memory; the HTTP API computes them by SQL from the repository.

use super::messages::{Holding, TakeBackRecords, Watched};
use super::observe::concerns_records;
use super::records::Held;
use super::rows::{applied_ids, case_watch, event_watches};
use super::Supervisor;
use crate::domain::{CaseId, Envelope};
use crate::maps::Map;
use crate::port::HandleError;
use crate::store::supervision::SupervisedRecords;
use crate::store::CaseRepository;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often handling messages lets the cases whose supervision is over leave memory (a
/// deadline check does too).
const LEAVE_EVERY: Duration = Duration::from_secs(1);

/// What the supervisor needs to keep only open cases in memory.
pub(super) struct Resident {
    /// Where a case not in memory is read back from.
    cases: CaseRepository,
    /// The cases whose supervision is over, by the number of the last change handed on for
    /// them: they leave memory once the rows handed on by then are written.
    over: Map<CaseId, u64>,
    /// Changes handed on so far, counted.
    changes: u64,
    /// A wait for the writer is running: a second one would write nothing sooner.
    waiting: bool,
    /// Which cases not in memory the repository may hold records of.
    left: Left,
    /// When a message may next start a wait for the writer.
    next_leave: Instant,
}

/// Which cases not in memory the repository may hold records of.
#[derive(Debug, PartialEq)]
enum Left {
    /// Any: records were taken back at start, or may have been written by an earlier process.
    Any,
    /// The supervisor has read every record since the process started: only the cases that
    /// left memory, whose ids are at most this one (none has left yet: `None`).
    UpTo(Option<CaseId>),
}

impl Left {
    /// Whether the repository may hold records of `case_id`, a case not in memory.
    fn may_hold(&self, case_id: &CaseId) -> bool {
        match self {
            Left::Any => true,
            Left::UpTo(greatest) => greatest
                .as_ref()
                .is_some_and(|greatest| case_id <= greatest),
        }
    }

    /// Notes that `case_id` left memory.
    fn note(&mut self, case_id: &CaseId) {
        if let Left::UpTo(greatest) = self {
            if greatest.as_ref().is_none_or(|greatest| case_id > greatest) {
                *greatest = Some(case_id.clone());
            }
        }
    }
}

impl Supervisor {
    /// The same supervisor, keeping in memory only the cases whose supervision is open and
    /// reading the others back from `cases` when a message comes for one. With `seen_all`
    /// (the bus ends with the process, so nothing is taken back at start) only a case that left
    /// memory is read back: any other is new.
    pub fn keeping_open_cases_only(mut self, cases: CaseRepository, seen_all: bool) -> Self {
        self.resident = Some(Resident {
            cases,
            over: Map::default(),
            changes: 0,
            waiting: false,
            left: if seen_all {
                Left::UpTo(None)
            } else {
                Left::Any
            },
            next_leave: Instant::now(),
        });
        self
    }

    /// Applies `envelope` once its case is in memory: at once when it is there, when the
    /// message changes no record, or when every case stays in memory; else after reading the
    /// case back. When the repository cannot be read, the message is delivered again later.
    pub(super) fn with_case(
        &mut self,
        envelope: Arc<Envelope>,
    ) -> AtomicResponse<Self, Result<(), HandleError>> {
        let cases = match &self.resident {
            Some(resident)
                if concerns_records(&envelope)
                    && !self.held.contains_key(&envelope.case_id)
                    && resident.left.may_hold(&envelope.case_id) =>
            {
                resident.cases.clone()
            }
            _ => {
                let applied = self.apply(&envelope);
                return AtomicResponse::new(self.after_room(applied));
            }
        };
        let case_id = envelope.case_id.to_string();
        let read = crate::store::detached(async move { cases.supervised(&case_id).await });
        AtomicResponse::new(Box::pin(read.into_actor(self).then(
            move |read, supervisor, _| {
                let applied = match read {
                    Ok(records) => {
                        supervisor.admit(records);
                        supervisor.apply(&envelope)
                    }
                    Err(error) => Err(HandleError::Retry(error.to_string())),
                };
                supervisor.after_room(applied)
            },
        )))
    }

    /// `applied`, once the repository's writer has room for more rows: the next record waits
    /// while the writer is behind.
    fn after_room(
        &self,
        applied: Result<(), HandleError>,
    ) -> ResponseActFuture<Self, Result<(), HandleError>> {
        let room = self.writer_room();
        Box::pin(
            async move {
                room.await;
                applied
            }
            .into_actor(self),
        )
    }

    /// Takes a case's records into memory, unless the case is there already: what memory
    /// holds is at least as new as the repository's rows.
    fn admit(&mut self, records: SupervisedRecords) {
        let case_id = CaseId::from_string(records.case_id);
        if self.held.contains_key(&case_id) {
            return;
        }
        let events = event_watches(&records.assignments);
        let held = Held {
            seen: applied_ids(&records.messages),
            events: events.keys().cloned().collect(),
            early_answers: Vec::new(),
        };
        self.events.extend(events);
        if let Some(row) = &records.case {
            self.cases.insert(case_id.clone(), case_watch(row));
        }
        self.held.insert(case_id, held);
    }

    /// Notes, after a change to `case_id` was handed on, whether the case may leave memory.
    pub(super) fn settle(&mut self, case_id: &CaseId) {
        let over = self.is_over(case_id);
        let Some(resident) = &mut self.resident else {
            return;
        };
        resident.changes += 1;
        if over {
            resident.over.insert(case_id.clone(), resident.changes);
        } else {
            resident.over.remove(case_id);
        }
    }

    /// Whether the supervision of `case_id` is over: decided, with no dispatch of its events
    /// open, or nothing recorded of it at all. Ratings and late messages only change figures,
    /// and the case is read back for them.
    fn is_over(&self, case_id: &CaseId) -> bool {
        let Some(held) = self.held.get(case_id) else {
            return false;
        };
        let case = self.cases.get(case_id);
        let open_dispatch = held
            .events
            .iter()
            .filter_map(|id| self.events.get(id))
            .flat_map(|watch| watch.assignments.iter().flatten())
            .any(|assignment| assignment.is_open());
        match case {
            Some(case) => case.decided_at.is_some() && !open_dispatch,
            None => held.events.is_empty(),
        }
    }

    /// As [`Self::let_over_cases_leave`], at most every [`LEAVE_EVERY`]: a wait makes the
    /// writer write at once, and one for every message would undo its batching.
    pub(super) fn let_over_cases_leave_soon(&mut self, ctx: &mut Context<Self>) {
        let Some(resident) = &mut self.resident else {
            return;
        };
        let now = Instant::now();
        if now < resident.next_leave {
            return;
        }
        resident.next_leave = now + LEAVE_EVERY;
        self.let_over_cases_leave(ctx);
    }

    /// Lets the cases whose supervision is over leave memory once their rows are written:
    /// starts a wait for the writer unless one runs.
    pub(super) fn let_over_cases_leave(&mut self, ctx: &mut Context<Self>) {
        let Some(resident) = &mut self.resident else {
            return;
        };
        if resident.waiting || resident.over.is_empty() {
            return;
        }
        let Some(writer) = self.rows.clone() else {
            return;
        };
        resident.waiting = true;
        let upto = resident.changes;
        let written = async move { writer.written().await };
        ctx.spawn(written.into_actor(self).map(move |written, supervisor, _| {
            if let Some(resident) = &mut supervisor.resident {
                resident.waiting = false;
            }
            if written {
                supervisor.leave_written(upto);
            }
        }));
    }

    /// The cases over whose last change, at most the `upto`th, is written: they leave memory.
    fn leave_written(&mut self, upto: u64) {
        let Some(resident) = &mut self.resident else {
            return;
        };
        let leaving: Vec<CaseId> = resident
            .over
            .iter()
            .filter(|(_, &change)| change <= upto)
            .map(|(case_id, _)| case_id.clone())
            .collect();
        for case_id in &leaving {
            resident.over.remove(case_id);
        }
        for case_id in leaving {
            if self.is_over(&case_id) {
                self.leave(&case_id);
            }
        }
    }

    /// `case_id` leaves memory, with its events and the ids of the messages applied to it.
    fn leave(&mut self, case_id: &CaseId) {
        if let Some(resident) = &mut self.resident {
            resident.left.note(case_id);
        }
        self.cases.remove(case_id);
        if let Some(held) = self.held.remove(case_id) {
            for event_id in held.events {
                self.events.remove(&event_id);
            }
        }
    }
}

impl Handler<TakeBackRecords> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: TakeBackRecords, _: &mut Self::Context) {
        for records in msg.0 {
            self.admit(records);
        }
    }
}

impl Handler<Holding> for Supervisor {
    type Result = MessageResult<Holding>;

    fn handle(&mut self, _: Holding, _: &mut Self::Context) -> Self::Result {
        let over = self.held.keys().filter(|id| self.is_over(id)).count();
        MessageResult(Watched {
            cases: self.held.len(),
            events: self.events.len(),
            over,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Left;
    use crate::domain::CaseId;

    #[test]
    fn only_ids_up_to_the_greatest_that_left_may_be_in_the_repository() {
        let id = |s: &str| CaseId::from_string(s);
        let mut left = Left::UpTo(None);
        assert!(!left.may_hold(&id("01a2")), "nothing has left yet");
        left.note(&id("01b0"));
        left.note(&id("01a5"));
        assert_eq!(left, Left::UpTo(Some(id("01b0"))), "the greatest is kept");
        assert!(left.may_hold(&id("01a5")));
        assert!(left.may_hold(&id("01b0")));
        assert!(
            left.may_hold(&id("01a9")),
            "an id below the greatest is read back: it may have left"
        );
        assert!(!left.may_hold(&id("01b1")), "an id above cannot have left");

        let mut any = Left::Any;
        any.note(&id("01b0"));
        assert!(any.may_hold(&id("ffff")));
    }
}
