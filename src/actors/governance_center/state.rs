//! What a centre remembers about a case beyond one message, and its `state.snapshot` on the
//! state topic: the city's open collaboration requests and completed cases, every centre's
//! returned events waiting for staff, and the city's intake feed position.

use super::GovernanceCenter;
use crate::actors::{KeepsState, Versions};
use crate::domain::{
    CaseId, CollaborationEvent, CollaborationRequest, CollaborationResult, EventId, TraceId,
};
use crate::maps::{Map, Set};
use serde::{Deserialize, Serialize};

/// A collaboration request the city centre is gathering answers for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OpenRequest {
    /// The request as the department sent it.
    pub(super) request: CollaborationRequest,
    /// The events dispatched, in the order of the request's collaborators.
    pub(super) events: Vec<EventId>,
    /// Answers received so far.
    pub(super) results: Map<EventId, CollaborationResult>,
    /// The case's trace id.
    pub(super) trace_id: TraceId,
}

/// A returned event waiting for staff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Awaiting {
    /// The event, with every return in `returns`.
    pub(super) event: CollaborationEvent,
    /// The case's trace id, for the reassignment's messages.
    pub(super) trace_id: TraceId,
}

/// What a centre remembers about one case (its `state.snapshot`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CentreCaseState {
    /// The open collaboration request (city).
    open: Option<OpenRequest>,
    /// Whether its collaboration is completed (city).
    completed: bool,
    /// Its returned events waiting here for reassignment.
    awaiting: Vec<Awaiting>,
    /// An intake feed's position (the city's snapshot under [`feed_key`]).
    feed_cursor: Option<u64>,
    /// The events it routed down whose answer has not come back through it (absent from
    /// snapshots written before centres closed cases: none then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routed: Vec<EventId>,
}

/// The case id under which the city keeps the position of the only (or the first) intake
/// process's feed on the state topic.
const FEED_KEY: &str = "-intake-feed-";

/// The case id under which the city keeps the feed position of intake instance `instance`:
/// [`FEED_KEY`] for instance 0, `-intake-feed-<instance>-` for the others.
pub(super) fn feed_key(instance: u32) -> CaseId {
    match instance {
        0 => CaseId::from_string(FEED_KEY),
        n => CaseId::from_string(format!("{FEED_KEY}{n}-")),
    }
}

/// The intake instance whose feed position `case_id` keeps, if it is a feed key.
fn feed_of(case_id: &CaseId) -> Option<u32> {
    let key = case_id.as_str();
    if key == FEED_KEY {
        return Some(0);
    }
    key.strip_prefix(FEED_KEY)?.strip_suffix('-')?.parse().ok()
}

impl KeepsState for GovernanceCenter {
    type CaseState = CentreCaseState;

    fn persists(&self) -> bool {
        self.persist_state
    }

    fn versions(&mut self) -> &mut Versions {
        &mut self.versions
    }

    fn closed_states(&self) -> Option<&crate::store::ClosedStates> {
        self.closed_states.as_ref()
    }

    fn case_state(&self, case_id: &CaseId) -> Option<CentreCaseState> {
        if let Some(instance) = feed_of(case_id) {
            return Some(CentreCaseState {
                feed_cursor: Some(self.feed_cursors.get(&instance).copied().unwrap_or(0)),
                ..CentreCaseState::default()
            });
        }
        let state = CentreCaseState {
            open: self.open.get(case_id).map(|open| OpenRequest::clone(open)),
            completed: self.completed.contains(case_id),
            awaiting: self
                .awaiting
                .values()
                .filter(|a| &a.event.case_id == case_id)
                .cloned()
                .collect(),
            feed_cursor: None,
            routed: self.routed_events(case_id),
        };
        let holds = state.open.is_some()
            || state.completed
            || !state.awaiting.is_empty()
            || !state.routed.is_empty();
        holds.then_some(state)
    }

    fn finished(&self, case_id: &CaseId) -> bool {
        feed_of(case_id).is_none()
            && !self.open.contains_key(case_id)
            && !self.completed.contains(case_id)
            && !self.routed.contains_key(case_id)
            && !self.awaiting.values().any(|a| &a.event.case_id == case_id)
    }

    fn forget_case(&mut self, case_id: &CaseId) {
        self.open.remove(case_id);
        self.completed.remove(case_id);
        self.routed.remove(case_id);
        self.awaiting.retain(|_, a| &a.event.case_id != case_id);
    }

    fn forget_closed(&mut self, case_ids: &[CaseId]) {
        self.acts.forget_cases(case_ids);
    }

    fn open_cases(&self) -> usize {
        let mut open: Set<&CaseId> = self.open.keys().collect();
        open.extend(&self.completed);
        open.extend(self.routed.keys());
        open.extend(self.awaiting.values().map(|a| &a.event.case_id));
        open.len()
    }

    fn restore_case(&mut self, case_id: &CaseId, state: CentreCaseState) {
        if let Some(cursor) = state.feed_cursor {
            let instance = feed_of(case_id).unwrap_or(0);
            let kept = self.feed_cursors.entry(instance).or_default();
            *kept = (*kept).max(cursor);
            return;
        }
        match state.open {
            Some(open) => self.open.insert(case_id.clone(), Box::new(open)),
            None => self.open.remove(case_id),
        };
        if state.completed {
            self.completed.insert(case_id.clone());
        }
        self.routed.remove(case_id);
        for event_id in state.routed {
            self.mark_routed(case_id, event_id);
        }
        self.awaiting.retain(|_, a| &a.event.case_id != case_id);
        for awaiting in state.awaiting {
            self.awaiting
                .insert(awaiting.event.event_id.clone(), awaiting);
        }
    }
}

impl GovernanceCenter {
    /// Records `event_id` of `case_id` routed down by this centre.
    pub(super) fn mark_routed(&mut self, case_id: &CaseId, event_id: EventId) {
        self.routed
            .entry(case_id.clone())
            .or_default()
            .insert(event_id);
    }

    /// `event_id` of `case_id` came back through this centre (answered) or left it (returned
    /// past it, or waiting for its staff).
    pub(super) fn mark_back(&mut self, case_id: &CaseId, event_id: &EventId) {
        if let Some(events) = self.routed.get_mut(case_id) {
            events.remove(event_id);
            if events.is_empty() {
                self.routed.remove(case_id);
            }
        }
    }

    /// The events of `case_id` routed down by this centre and not back yet, in order.
    fn routed_events(&self, case_id: &CaseId) -> Vec<EventId> {
        let mut events: Vec<EventId> = self
            .routed
            .get(case_id)
            .map(|events| events.iter().cloned().collect())
            .unwrap_or_default();
        events.sort();
        events
    }
}

#[cfg(test)]
mod feed_key_tests {
    use super::{feed_key, feed_of};
    use crate::domain::CaseId;

    #[test]
    fn each_intake_instance_has_its_own_feed_key_and_the_first_keeps_the_old_one() {
        assert_eq!(feed_key(0).as_str(), "-intake-feed-");
        assert_eq!(feed_key(2).as_str(), "-intake-feed-2-");
        for instance in [0, 1, 7] {
            assert_eq!(feed_of(&feed_key(instance)), Some(instance));
        }
        assert_eq!(feed_of(&CaseId::from_string("c-1")), None);
    }
}
