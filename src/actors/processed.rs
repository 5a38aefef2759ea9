//! What a system knows about the inbound messages it handled: the ids of those of each open
//! case, the outputs of those still being published, and the cases it closed.
//!
//! Handled ids are kept per case and dropped when the case closes at the system, so that they
//! grow with open work, not with history. A closed case leaves a compact record (its id, when
//! it closed and its last snapshot version) so that a late repeat of one of its messages — a
//! redelivery, a duplicate publish, a re-drive — is still recognised and dropped. That record
//! is forgotten after `bus.flow_retention_hours`, the retention of the flow topics: a message
//! of a case closed longer ago than that is older than anything the flow topics still hold, so
//! it cannot be delivered any more.

use crate::domain::{CaseId, Envelope, MessageId};
use crate::maps::{FewIds, Map};
use crate::port::HandleError;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a system knows about an inbound message id.
pub enum Seen {
    /// Handled and its outputs are on the bus: nothing to do.
    Done,
    /// Handled, and its outputs are on their way: wait for how that ends.
    Pending(oneshot::Receiver<Result<(), HandleError>>),
    /// Handled, but sending its outputs failed: send these again.
    Failed(Vec<Arc<Envelope>>),
    /// About a case the system closed.
    Closed,
    /// Never seen.
    New,
}

/// A message whose outputs are not yet confirmed.
struct Started {
    /// The case it is about.
    case_id: CaseId,
    /// The outputs it produced, shared with the publish that sends them.
    outputs: Vec<Arc<Envelope>>,
    /// While the publish is out: who else waits for it. `None` once it failed.
    waiters: Option<Vec<oneshot::Sender<Result<(), HandleError>>>>,
}

/// A case a system closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedCase {
    /// When it closed.
    pub at: DateTime<Utc>,
    /// The version of its closed marker on the state topic, so that a case opened again
    /// numbers its snapshots on from there.
    pub version: u64,
}

/// The cases a system closed, each forgotten `retention` after it closed.
#[derive(Debug)]
pub struct ClosedCases {
    /// How long a closed case is remembered: the retention of the flow topics.
    retention: Duration,
    /// Closed cases by id.
    cases: Map<CaseId, ClosedCase>,
    /// The same cases in the order they closed, for forgetting the oldest first.
    by_time: BTreeSet<(DateTime<Utc>, CaseId)>,
}

impl ClosedCases {
    /// No closed cases; each is remembered for `retention`.
    pub fn new(retention: Duration) -> Self {
        Self {
            retention,
            cases: Map::default(),
            by_time: BTreeSet::new(),
        }
    }

    /// The record of `case_id`, if it is closed and not yet forgotten.
    pub fn get(&self, case_id: &CaseId) -> Option<ClosedCase> {
        self.cases.get(case_id).copied()
    }

    /// Records `case_id` closed, then forgets every case closed longer than the retention
    /// before `now`; the cases forgotten.
    pub fn close(
        &mut self,
        case_id: &CaseId,
        closed: ClosedCase,
        now: DateTime<Utc>,
    ) -> Vec<CaseId> {
        self.reopen(case_id);
        self.by_time.insert((closed.at, case_id.clone()));
        self.cases.insert(case_id.clone(), closed);
        self.forget_expired(now)
    }

    /// Takes `case_id` off the record: the case is open again. Its record, if it had one.
    pub fn reopen(&mut self, case_id: &CaseId) -> Option<ClosedCase> {
        let closed = self.cases.remove(case_id)?;
        self.by_time.remove(&(closed.at, case_id.clone()));
        Some(closed)
    }

    /// Forgets every case closed longer than the retention before `now`; the cases forgotten.
    pub fn forget_expired(&mut self, now: DateTime<Utc>) -> Vec<CaseId> {
        let horizon = now - self.retention;
        let mut forgotten = Vec::new();
        while let Some((at, case_id)) = self.by_time.first().cloned() {
            if at >= horizon {
                break;
            }
            self.by_time.pop_first();
            self.cases.remove(&case_id);
            forgotten.push(case_id);
        }
        forgotten
    }

    /// How many closed cases are remembered.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether no closed case is remembered.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }
}

/// The inbound messages a system has handled.
pub struct Processed {
    /// Messages whose outputs are on the bus, by the open case they are about.
    done: Map<CaseId, FewIds<MessageId>>,
    /// Messages whose outputs were produced but not yet confirmed.
    started: Map<MessageId, Started>,
    /// How many of `started` each case has, so that whether a case is busy costs one look-up,
    /// not a pass over every message in flight.
    started_by_case: Map<CaseId, usize>,
    /// The cases closed at this system.
    closed: ClosedCases,
}

impl Processed {
    /// Nothing handled yet; a closed case is remembered for `retention`.
    pub fn new(retention: Duration) -> Self {
        Self {
            done: Map::default(),
            started: Map::default(),
            started_by_case: Map::default(),
            closed: ClosedCases::new(retention),
        }
    }

    /// Where message `id` about `case_id` stands. A repeat of a message whose publish is still
    /// out waits for it rather than publishing the same outputs again.
    pub fn check(&mut self, case_id: &CaseId, id: &MessageId) -> Seen {
        if self.done.get(case_id).is_some_and(|ids| ids.contains(id)) {
            return Seen::Done;
        }
        let Some(started) = self.started.get_mut(id) else {
            return match self.closed.get(case_id) {
                Some(_) => Seen::Closed,
                None => Seen::New,
            };
        };
        match &mut started.waiters {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Seen::Pending(rx)
            }
            None => {
                started.waiters = Some(Vec::new());
                Seen::Failed(started.outputs.clone())
            }
        }
    }

    /// Records the outputs produced for message `id` about `case_id`, just before they are
    /// sent.
    pub fn start(&mut self, case_id: &CaseId, id: MessageId, outputs: Vec<Arc<Envelope>>) {
        let started = Started {
            case_id: case_id.clone(),
            outputs,
            waiters: Some(Vec::new()),
        };
        *self.started_by_case.entry(case_id.clone()).or_default() += 1;
        if let Some(replaced) = self.started.insert(id, started) {
            self.unstart(&replaced.case_id);
        }
    }

    /// Counts one message of `case_id` out of `started`.
    fn unstart(&mut self, case_id: &CaseId) {
        if let Some(count) = self.started_by_case.get_mut(case_id) {
            *count -= 1;
            if *count == 0 {
                self.started_by_case.remove(case_id);
            }
        }
    }

    /// Records how sending the outputs of `id` ended, and tells whoever waited.
    pub fn settle(&mut self, id: &MessageId, result: &Result<(), HandleError>) {
        let waiters = match result {
            Ok(()) => self.started.remove(id).and_then(|started| {
                self.unstart(&started.case_id);
                self.done
                    .entry(started.case_id)
                    .or_default()
                    .insert(id.clone());
                started.waiters
            }),
            Err(_) => self.started.get_mut(id).and_then(|s| s.waiters.take()),
        };
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(result.clone());
        }
    }

    /// Whether a message about `case_id` still has outputs on their way or to send again.
    pub fn busy(&self, case_id: &CaseId) -> bool {
        self.started_by_case.contains_key(case_id)
    }

    /// The record of `case_id`, if the system closed it and has not forgotten it yet.
    pub fn closed(&self, case_id: &CaseId) -> Option<ClosedCase> {
        self.closed.get(case_id)
    }

    /// Closes `case_id`: forgets the ids of its messages and remembers it closed, and forgets
    /// the cases closed longer than the retention before `now`; those cases.
    pub fn close(
        &mut self,
        case_id: &CaseId,
        closed: ClosedCase,
        now: DateTime<Utc>,
    ) -> Vec<CaseId> {
        self.done.remove(case_id);
        self.closed.close(case_id, closed, now)
    }

    /// Opens `case_id` again (new work came for it); its record, if it was closed.
    pub fn reopen(&mut self, case_id: &CaseId) -> Option<ClosedCase> {
        self.closed.reopen(case_id)
    }

    /// Forgets the cases closed longer than the retention before `now`; those cases.
    pub fn forget_expired(&mut self, now: DateTime<Utc>) -> Vec<CaseId> {
        self.closed.forget_expired(now)
    }

    /// How many handled ids it keeps, and how many closed cases.
    pub fn holding(&self) -> (usize, usize) {
        let ids = self.done.values().map(FewIds::len).sum::<usize>() + self.started.len();
        (ids, self.closed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str) -> CaseId {
        CaseId::from_string(id)
    }

    fn closed_at(at: DateTime<Utc>) -> ClosedCase {
        ClosedCase { at, version: 3 }
    }

    #[test]
    fn a_closed_case_is_remembered_for_the_retention_and_forgotten_after_it() {
        // Arrange
        let start = Utc::now();
        let mut closed = ClosedCases::new(Duration::hours(168));
        closed.close(&case("c1"), closed_at(start), start);
        closed.close(&case("c2"), closed_at(start + Duration::hours(1)), start);

        // Act
        closed.forget_expired(start + Duration::hours(168));
        let within = (closed.get(&case("c1")), closed.len());
        closed.forget_expired(start + Duration::hours(168) + Duration::seconds(1));
        let after_first = (closed.get(&case("c1")), closed.len());
        closed.forget_expired(start + Duration::hours(170));

        // Assert
        assert_eq!(within, (Some(closed_at(start)), 2));
        assert_eq!(after_first, (None, 1));
        assert!(closed.is_empty());
    }

    #[test]
    fn closing_again_moves_the_case_to_its_new_time() {
        // Arrange
        let start = Utc::now();
        let mut closed = ClosedCases::new(Duration::hours(1));
        closed.close(&case("c1"), closed_at(start), start);

        // Act: opened again and closed two hours later.
        let later = start + Duration::hours(2);
        closed.close(&case("c1"), closed_at(later), later);

        // Assert: the first closing's expiry does not take the second away.
        assert_eq!(closed.get(&case("c1")), Some(closed_at(later)));
        assert_eq!(closed.len(), 1);
    }

    #[test]
    fn closing_a_case_drops_its_ids_and_later_repeats_are_recognised_until_forgotten() {
        // Arrange
        let start = Utc::now();
        let mut processed = Processed::new(Duration::hours(168));
        let (c1, c2) = (case("c1"), case("c2"));
        // "c1/a" handled twice (its outputs sent again) is kept once.
        for (case_id, id) in [(&c1, "c1/a"), (&c1, "c1/b"), (&c2, "c2/a"), (&c1, "c1/a")] {
            processed.start(case_id, MessageId::from_string(id), Vec::new());
            processed.settle(&MessageId::from_string(id), &Ok(()));
        }
        let before = processed.holding();

        // Act
        processed.close(&c1, closed_at(start), start);
        let after = processed.holding();
        let repeat = processed.check(&c1, &MessageId::from_string("c1/a"));
        let other = processed.check(&c2, &MessageId::from_string("c2/a"));
        let week_later = start + Duration::hours(169);
        let forgotten = processed.forget_expired(week_later);
        let too_late = processed.check(&c1, &MessageId::from_string("c1/a"));

        // Assert
        assert_eq!(before, (3, 0));
        assert_eq!(after, (1, 1));
        assert!(matches!(repeat, Seen::Closed));
        assert!(matches!(other, Seen::Done));
        assert_eq!(forgotten, std::slice::from_ref(&c1));
        assert_eq!(processed.holding(), (1, 0));
        assert!(matches!(too_late, Seen::New));
    }

    #[test]
    fn a_case_with_a_publish_out_is_busy_until_it_settles() {
        // Arrange
        let mut processed = Processed::new(Duration::hours(1));
        let c1 = case("c1");
        let id = MessageId::from_string("c1/a");
        processed.start(&c1, id.clone(), Vec::new());

        // Act
        let while_out = processed.busy(&c1);
        processed.settle(&id, &Ok(()));

        // Assert
        assert!(while_out);
        assert!(!processed.busy(&c1));
    }

    #[test]
    fn a_case_stays_busy_while_any_of_its_publishes_is_out_or_failed() {
        // Arrange: two messages of c1 out, one of c2.
        let mut processed = Processed::new(Duration::hours(1));
        let (c1, c2) = (case("c1"), case("c2"));
        let (a, b, c) = (
            MessageId::from_string("c1/a"),
            MessageId::from_string("c1/b"),
            MessageId::from_string("c2/a"),
        );
        processed.start(&c1, a.clone(), Vec::new());
        processed.start(&c1, b.clone(), Vec::new());
        processed.start(&c2, c.clone(), Vec::new());
        let failed = Err(HandleError::Retry("the bus refused".into()));

        // Act
        processed.settle(&a, &Ok(()));
        let one_left = (processed.busy(&c1), processed.busy(&c2));
        processed.settle(&b, &failed);
        let after_failure = processed.busy(&c1);
        processed.settle(&c, &Ok(()));
        let resent = processed.check(&c1, &b);
        processed.settle(&b, &Ok(()));

        // Assert
        assert_eq!(one_left, (true, true));
        assert!(after_failure, "a failed publish is still to be sent again");
        assert!(matches!(resent, Seen::Failed(_)));
        assert!(!processed.busy(&c1));
        assert!(!processed.busy(&c2));
    }
}
