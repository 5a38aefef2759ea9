//! What the supervisor keeps: per case its deadline, per event every dispatch to a department,
//! and per case the ids of the messages applied and the events that help it. The records are
//! learnt from timestamps the messages carry, so reading the topics again rebuilds the same
//! records.

use crate::domain::{
    CaseId, CentreCode, DepartmentCode, EventId, MessageId, TraceId, WarningLevel,
};
use crate::maps::FewIds;
use chrono::{DateTime, Utc};

/// What the supervisor holds of a case besides its records: a case is in memory while it
/// holds this, and leaves memory with it.
#[derive(Default)]
pub(super) struct Held {
    /// The ids of the messages applied to the case's records: a repeat changes nothing.
    pub(super) seen: FewIds<MessageId>,
    /// The events that help the case.
    pub(super) events: FewIds<EventId>,
    /// Answers read before the dispatch they answer (the topics are read independently, so a
    /// rebuilding view can meet `collaboration.answered` before `collaboration.dispatched`):
    /// each is applied when its dispatch is learnt.
    pub(super) early_answers: Vec<EarlyAnswer>,
}

/// A department's answer to an event whose dispatch was not seen yet.
pub(super) struct EarlyAnswer {
    /// The event answered.
    pub(super) event_id: EventId,
    /// The department that answered.
    pub(super) department: DepartmentCode,
    /// When it answered.
    pub(super) answered_at: DateTime<Utc>,
}

/// A case's deadline as supervision follows it.
pub(super) struct CaseWatch {
    /// The department that accepted the case: it gets the case's warnings.
    pub(super) department: DepartmentCode,
    /// The case's trace id, carried by the warnings.
    pub(super) trace_id: TraceId,
    /// When the department accepted it: the clock starts here.
    pub(super) accepted_at: DateTime<Utc>,
    /// The promised deadline, moved on by every resumption.
    pub(super) due_by: DateTime<Utc>,
    /// Set while the case is suspended: its clock is stopped.
    pub(super) suspended_since: Option<DateTime<Utc>>,
    /// Working hours of the suspensions that ended: neither used nor allowed time.
    pub(super) paused_hours: f64,
    /// When the department decided it; a decided case raises no more warnings.
    pub(super) decided_at: Option<DateTime<Utc>>,
    /// Warnings already raised, so each is raised once.
    pub(super) warned: Warned,
    /// The applicant's score (好差评), 1–5, once rated.
    pub(super) rating: Option<u8>,
}

/// One dispatch of an event to one department: the first, and one more per return.
pub(super) struct Assignment {
    /// The department it was dispatched to.
    pub(super) department: DepartmentCode,
    /// The centre that dispatched it to the department (the last of the route).
    pub(super) dispatched_by: CentreCode,
    /// Every centre on the route.
    pub(super) route: Vec<CentreCode>,
    /// When it was dispatched: the clock starts here.
    pub(super) dispatched_at: DateTime<Utc>,
    /// Its deadline, moved by approved extensions.
    pub(super) deadline: DateTime<Utc>,
    /// Extensions granted: each new deadline gets warnings of its own, with their own ids.
    pub(super) extensions: u32,
    /// When the department answered.
    pub(super) answered_at: Option<DateTime<Utc>>,
    /// The department returned it (退单); the next dispatch is a new assignment.
    pub(super) returned: bool,
    /// Warnings already raised for the current deadline, so each is raised once.
    pub(super) warned: Warned,
    /// The centre it was escalated to (督办), once it was.
    pub(super) escalated_to: Option<CentreCode>,
}

impl Assignment {
    /// Neither answered nor returned: its deadline still runs.
    pub(super) fn is_open(&self) -> bool {
        self.answered_at.is_none() && !self.returned
    }
}

/// The warnings raised for one deadline: a yellow and a red one, each at most once. Two flags
/// rather than a set of levels: a record of every open case and dispatch holds one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Warned {
    /// The yellow warning was raised.
    yellow: bool,
    /// The red warning was raised.
    red: bool,
}

impl Warned {
    /// Warnings as a row holds them.
    pub(super) fn from_flags(yellow: bool, red: bool) -> Self {
        Self { yellow, red }
    }

    /// The flag of `level`.
    fn flag(&mut self, level: WarningLevel) -> &mut bool {
        match level {
            WarningLevel::Yellow => &mut self.yellow,
            WarningLevel::Red => &mut self.red,
        }
    }

    /// Whether the warning of `level` was raised.
    pub(super) fn contains(self, level: WarningLevel) -> bool {
        match level {
            WarningLevel::Yellow => self.yellow,
            WarningLevel::Red => self.red,
        }
    }

    /// Notes the warning of `level` raised.
    pub(super) fn insert(&mut self, level: WarningLevel) {
        *self.flag(level) = true;
    }

    /// Forgets the warning of `level`: its publish failed.
    pub(super) fn remove(&mut self, level: WarningLevel) {
        *self.flag(level) = false;
    }
}

/// An event as supervision follows it.
pub(super) struct EventWatch {
    /// The case the event helps.
    pub(super) case_id: CaseId,
    /// The case's trace id, carried by the warnings and escalations.
    pub(super) trace_id: TraceId,
    /// By attempt: index = returns before it. A slot stays empty until a message about that
    /// attempt is seen.
    pub(super) assignments: Vec<Option<Assignment>>,
}

impl EventWatch {
    /// The slot of dispatch `number`, made (empty) when there is none yet. The slots grow one
    /// at a time: most events are dispatched once, and a vector's first growth would make room
    /// for four.
    pub(super) fn slot(&mut self, number: usize) -> &mut Option<Assignment> {
        if self.assignments.len() <= number {
            self.assignments
                .reserve_exact(number + 1 - self.assignments.len());
            self.assignments.resize_with(number + 1, || None);
        }
        &mut self.assignments[number]
    }
}
