//! The collaboration events staff finished, kept until their case is forgotten: a repeat of a
//! dispatch is dropped, staff acting on one again are told it is finished, and a repeat of an
//! answer or return answers the same.
//!
//! They are kept by case, so that what the department writes about a case, and what it lets go
//! when it forgets one, costs as much as that case's events, not as much as every event
//! finished within the flow topics' retention; and which case an event belongs to, for staff,
//! who name the event only.

use super::state::{event_of_attempt, ClosedAs};
use crate::domain::{CaseId, EventId};
use crate::maps::Map;

/// The events staff finished, by case.
#[derive(Default)]
pub(super) struct ClosedEvents {
    /// Each case's finished attempts (`<event id>` or `<event id>/r<n>`) and how, in the order
    /// they were finished.
    by_case: Map<CaseId, Vec<(String, ClosedAs)>>,
    /// The case of each event with a finished attempt.
    case_of: Map<EventId, CaseId>,
}

impl ClosedEvents {
    /// Records attempt `key` of an event of `case_id` finished `how`.
    pub(super) fn insert(&mut self, case_id: &CaseId, key: String, how: ClosedAs) {
        self.case_of
            .entry(EventId::from(event_of_attempt(&key)))
            .or_insert_with(|| case_id.clone());
        let attempts = self.by_case.entry(case_id.clone()).or_default();
        match attempts.iter_mut().find(|(kept, _)| *kept == key) {
            Some((_, kept_how)) => *kept_how = how,
            None => attempts.push((key, how)),
        }
    }

    /// Whether attempt `key` of an event of `case_id` is finished.
    pub(super) fn contains(&self, case_id: &CaseId, key: &str) -> bool {
        self.of_case(case_id).iter().any(|(kept, _)| kept == key)
    }

    /// The finished attempts of `case_id`'s events, in the order they were finished.
    pub(super) fn of_case(&self, case_id: &CaseId) -> &[(String, ClosedAs)] {
        self.by_case.get(case_id).map_or(&[], Vec::as_slice)
    }

    /// The latest finished attempt of `event_id` that `how` allows, if any: its key and how.
    pub(super) fn latest(
        &self,
        event_id: &EventId,
        how: impl Fn(ClosedAs) -> bool,
    ) -> Option<(&str, ClosedAs)> {
        let case_id = self.case_of.get(event_id)?;
        self.of_case(case_id)
            .iter()
            .rev()
            .find(|(key, closed)| event_of_attempt(key) == event_id.as_str() && how(*closed))
            .map(|(key, closed)| (key.as_str(), *closed))
    }

    /// Lets `case_id`'s finished events go; the ids of those events.
    pub(super) fn forget(&mut self, case_id: &CaseId) -> Vec<EventId> {
        let mut events: Vec<EventId> = Vec::new();
        for (key, _) in self.by_case.remove(case_id).unwrap_or_default() {
            let event_id = EventId::from(event_of_attempt(&key));
            if !events.contains(&event_id) {
                self.case_of.remove(&event_id);
                events.push(event_id);
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::{ClosedAs, ClosedEvents};
    use crate::domain::{CaseId, EventId};

    fn closed() -> (ClosedEvents, CaseId, CaseId) {
        let (a, b) = (CaseId::from("case-a"), CaseId::from("case-b"));
        let mut closed = ClosedEvents::default();
        closed.insert(&a, "case-a-fire".into(), ClosedAs::Returned);
        closed.insert(&b, "case-b-fire".into(), ClosedAs::Answered);
        closed.insert(&a, "case-a-fire/r1".into(), ClosedAs::Returned);
        closed.insert(&a, "case-a-police".into(), ClosedAs::Answered);
        (closed, a, b)
    }

    #[test]
    fn a_cases_finished_attempts_are_its_own_in_the_order_finished() {
        // Arrange
        let (closed, a, b) = closed();

        // Act
        let of_a = closed.of_case(&a);

        // Assert
        assert_eq!(
            of_a,
            [
                ("case-a-fire".to_owned(), ClosedAs::Returned),
                ("case-a-fire/r1".to_owned(), ClosedAs::Returned),
                ("case-a-police".to_owned(), ClosedAs::Answered),
            ]
        );
        assert!(closed.contains(&a, "case-a-fire/r1"));
        assert!(!closed.contains(&a, "case-b-fire"));
        assert!(closed.contains(&b, "case-b-fire"));
        assert!(closed.of_case(&CaseId::from("case-c")).is_empty());
    }

    #[test]
    fn an_event_named_alone_finds_its_latest_attempt_of_the_kind_asked() {
        // Arrange
        let (mut closed, a, _) = closed();
        let fire = EventId::from("case-a-fire");

        // Act
        let latest = closed
            .latest(&fire, |_| true)
            .map(|(k, h)| (k.to_owned(), h));
        let answered = closed
            .latest(&fire, |how| how == ClosedAs::Answered)
            .map(|(k, h)| (k.to_owned(), h));
        closed.insert(&a, "case-a-fire/r1".into(), ClosedAs::Answered);
        let changed = closed.latest(&fire, |how| how == ClosedAs::Answered);

        // Assert
        assert_eq!(
            latest,
            Some(("case-a-fire/r1".to_owned(), ClosedAs::Returned))
        );
        assert_eq!(answered, None);
        assert_eq!(changed, Some(("case-a-fire/r1", ClosedAs::Answered)));
        assert_eq!(closed.of_case(&a).len(), 3, "the same attempt is kept once");
        assert!(closed
            .latest(&EventId::from("case-x-fire"), |_| true)
            .is_none());
    }

    #[test]
    fn a_forgotten_case_lets_its_events_go_and_names_each_once() {
        // Arrange
        let (mut closed, a, b) = closed();

        // Act
        let forgotten = closed.forget(&a);

        // Assert
        assert_eq!(
            forgotten,
            [EventId::from("case-a-fire"), EventId::from("case-a-police")]
        );
        assert!(closed.of_case(&a).is_empty());
        assert!(closed
            .latest(&EventId::from("case-a-fire"), |_| true)
            .is_none());
        assert!(closed.contains(&b, "case-b-fire"));
        assert!(closed.forget(&a).is_empty());
    }
}
