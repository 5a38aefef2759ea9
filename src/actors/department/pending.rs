//! The collaboration events waiting for a manual department's staff: by id, as staff name
//! them, and by case, so that what the department does about one case — whether it is
//! finished there, its snapshot, letting it go — costs as much as that case's events, not as
//! much as the whole backlog.

use super::state::PendingEvent;
use crate::domain::{CaseId, EventId};
use crate::maps::Map;

/// The events waiting for staff.
#[derive(Default)]
pub(super) struct PendingEvents {
    /// Each event, by id. Boxed: an event is about 250 bytes, and a table keeps room for more
    /// entries than it holds.
    by_id: Map<EventId, Box<PendingEvent>>,
    /// The ids of each case's events, in the order they arrived.
    by_case: Map<CaseId, Vec<EventId>>,
}

impl PendingEvents {
    /// The event `event_id`, if it waits.
    pub(super) fn get(&self, event_id: &EventId) -> Option<&PendingEvent> {
        self.by_id.get(event_id).map(|pending| &**pending)
    }

    /// The event `event_id`, if it waits, to change what staff did with it. An event stays
    /// with its case: its case id is not to be changed.
    pub(super) fn get_mut(&mut self, event_id: &EventId) -> Option<&mut PendingEvent> {
        self.by_id.get_mut(event_id).map(|pending| &mut **pending)
    }

    /// Keeps `pending`, in place of what was kept of its event.
    pub(super) fn insert(&mut self, pending: PendingEvent) {
        let (case_id, event_id) = (&pending.event.case_id, &pending.event.event_id);
        let of_case = self.by_case.entry(case_id.clone()).or_default();
        if !of_case.contains(event_id) {
            of_case.push(event_id.clone());
        }
        self.by_id.insert(event_id.clone(), Box::new(pending));
    }

    /// Keeps `pending` unless its event already waits.
    pub(super) fn insert_new(&mut self, pending: PendingEvent) {
        if !self.by_id.contains_key(&pending.event.event_id) {
            self.insert(pending);
        }
    }

    /// Takes the event `event_id` out, if it waits.
    pub(super) fn remove(&mut self, event_id: &EventId) -> Option<PendingEvent> {
        let pending = self.by_id.remove(event_id)?;
        let case_id = &pending.event.case_id;
        if let Some(of_case) = self.by_case.get_mut(case_id) {
            of_case.retain(|id| id != event_id);
            if of_case.is_empty() {
                self.by_case.remove(case_id);
            }
        }
        Some(*pending)
    }

    /// Every waiting event, in no particular order.
    pub(super) fn values(&self) -> impl Iterator<Item = &PendingEvent> {
        self.by_id.values().map(|pending| &**pending)
    }

    /// `case_id`'s waiting events, in the order they arrived.
    pub(super) fn of_case<'a>(
        &'a self,
        case_id: &CaseId,
    ) -> impl Iterator<Item = &'a PendingEvent> + 'a {
        self.by_case
            .get(case_id)
            .into_iter()
            .flatten()
            .filter_map(|event_id| self.get(event_id))
    }

    /// Whether an event of `case_id` waits.
    pub(super) fn has_case(&self, case_id: &CaseId) -> bool {
        self.by_case.contains_key(case_id)
    }

    /// The cases with an event waiting.
    pub(super) fn cases(&self) -> impl Iterator<Item = &CaseId> {
        self.by_case.keys()
    }

    /// Lets every waiting event of `case_id` go.
    pub(super) fn remove_case(&mut self, case_id: &CaseId) {
        for event_id in self.by_case.remove(case_id).unwrap_or_default() {
            self.by_id.remove(&event_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PendingEvent, PendingEvents};
    use crate::domain::{CaseId, CollaborationEvent, EventId};

    fn pending(case: &str, department: &str) -> PendingEvent {
        let event: CollaborationEvent = serde_json::from_value(serde_json::json!({
            "event_id": format!("{case}-{department}"),
            "case_id": case,
            "requester": "market",
            "department": department,
            "tier": "district",
            "region": { "district": "500103", "street": "500103001" },
            "matter_code": "construction_permit",
            "materials": [],
            "route": [],
            "dispatched_at": "2026-12-01T09:00:00Z",
            "deadline": "2026-12-01T10:00:00Z",
        }))
        .expect("a collaboration event");
        PendingEvent {
            event,
            trace_id: "t".into(),
            signed: false,
            extension_requests: 0,
            extension_pending: false,
        }
    }

    fn ids<'a>(events: impl Iterator<Item = &'a PendingEvent>) -> Vec<String> {
        events.map(|p| p.event.event_id.to_string()).collect()
    }

    #[test]
    fn a_cases_events_are_found_by_case_in_the_order_they_arrived() {
        // Arrange
        let mut events = PendingEvents::default();
        let (a, b) = (CaseId::from("a"), CaseId::from("b"));

        // Act
        events.insert(pending("a", "fire"));
        events.insert(pending("b", "fire"));
        events.insert(pending("a", "police"));
        let mut again = pending("a", "fire");
        again.signed = true;
        events.insert_new(again.clone());
        let unchanged = events.get(&EventId::from("a-fire")).map(|p| p.signed);
        events.insert(again);

        // Assert
        assert_eq!(ids(events.of_case(&a)), ["a-fire", "a-police"]);
        assert_eq!(ids(events.of_case(&b)), ["b-fire"]);
        assert_eq!(unchanged, Some(false), "insert_new keeps what waits");
        assert_eq!(
            events.get(&EventId::from("a-fire")).map(|p| p.signed),
            Some(true)
        );
        assert_eq!(events.values().count(), 3);
        assert!(events.has_case(&a) && !events.has_case(&CaseId::from("c")));
    }

    #[test]
    fn a_case_whose_last_event_leaves_has_none_waiting() {
        // Arrange
        let mut events = PendingEvents::default();
        let (a, b) = (CaseId::from("a"), CaseId::from("b"));
        events.insert(pending("a", "fire"));
        events.insert(pending("a", "police"));
        events.insert(pending("b", "fire"));

        // Act
        let removed = events
            .remove(&EventId::from("a-fire"))
            .map(|p| p.event.event_id);
        let after_one = ids(events.of_case(&a));
        events.remove(&EventId::from("a-police"));
        events.remove_case(&b);

        // Assert
        assert_eq!(removed, Some(EventId::from("a-fire")));
        assert_eq!(after_one, ["a-police"]);
        assert!(!events.has_case(&a) && !events.has_case(&b));
        assert_eq!(events.cases().count(), 0);
        assert_eq!(events.values().count(), 0);
        assert!(events.remove(&EventId::from("a-fire")).is_none());
    }
}
