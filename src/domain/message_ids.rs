//! Every bus message id, built from what caused the message.
//!
//! A message published again after a failure or a restart must keep its id, so that its
//! receivers drop the repeat; and a system that learns of a message indirectly (the intake
//! system reads a receipt repeated in a later message) must name the original by the same id.
//! Both hold only if every id is built here, from its cause, and nowhere else.
//!
//! The ids are part of the wire contract (`docs/asyncapi.yaml`): an outside department builds
//! its own the same way.

use super::{CaseId, CentreCode, DepartmentCode, EventId, MessageId, SystemId, WarningLevel};

fn id(text: String) -> MessageId {
    MessageId::from_string(text)
}

/// `<case>/submitted`: the intake system took the application (history only, never on the bus).
pub fn submitted(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/submitted"))
}

/// `<case>/published`: the city centre published the application to its department.
pub fn published(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/published"))
}

/// `<case>/accepted`: the department accepted the case and issued its receipt.
pub fn accepted(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/accepted"))
}

/// `<case>/collaboration-requested`: the department asked for collaboration.
pub fn collaboration_requested(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/collaboration-requested"))
}

/// `<case>/collaboration-completed`: the city centre handed every answer back.
pub fn collaboration_completed(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/collaboration-completed"))
}

/// `<case>/approval`: the department published its approval.
pub fn approval(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/approval"))
}

/// `<case>/delivered`: the city centre handed the approval to the intake system.
pub fn delivered(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/delivered"))
}

/// `<case>/suspended/<n>`: the department's n-th request for supplementary materials.
pub fn suspended(case_id: &CaseId, sequence: u32) -> MessageId {
    id(format!("{case_id}/suspended/{sequence}"))
}

/// `<case>/supplemented/<n>`: the applicant's answer to the n-th suspension.
pub fn supplemented(case_id: &CaseId, sequence: u32) -> MessageId {
    id(format!("{case_id}/supplemented/{sequence}"))
}

/// `<case>/resumed/<n>`: the department resumed the case after the n-th suspension.
pub fn resumed(case_id: &CaseId, sequence: u32) -> MessageId {
    id(format!("{case_id}/resumed/{sequence}"))
}

/// `<case>/rated`: the applicant rated the completed case.
pub fn rated(case_id: &CaseId) -> MessageId {
    id(format!("{case_id}/rated"))
}

/// The id of the collaboration event a centre makes for one collaborating department:
/// `<case>-<department>`.
pub fn event_id(case_id: &CaseId, department: &DepartmentCode) -> EventId {
    EventId::from_string(format!("{case_id}-{department}"))
}

/// An event's attempt key: `<event>` at first, `<event>/r<n>` after its n-th return. Ids of an
/// event's messages start with it, so that a re-routed event's messages are new messages.
pub fn attempt_key(event_id: &EventId, returns: usize) -> String {
    match returns {
        0 => event_id.to_string(),
        n => format!("{event_id}/r{n}"),
    }
}

/// `<attempt>/dispatched/<centre>`: a centre routed an event one tier down or to its department.
pub fn dispatched(attempt: &str, centre: &CentreCode) -> MessageId {
    id(format!("{attempt}/dispatched/{centre}"))
}

/// `<attempt>/answered`: the collaborating department answered the event.
pub fn answered(attempt: &str) -> MessageId {
    id(format!("{attempt}/answered"))
}

/// `<event>/answered/<centre>`: a centre passed an answer one tier up.
pub fn answer_passed_up(event_id: &EventId, centre: &CentreCode) -> MessageId {
    id(format!("{event_id}/answered/{centre}"))
}

/// `<attempt>/signed`: the collaborating department signed for the event.
pub fn signed(attempt: &str) -> MessageId {
    id(format!("{attempt}/signed"))
}

/// `<attempt>/returned`: the collaborating department returned the event.
pub fn returned(attempt: &str) -> MessageId {
    id(format!("{attempt}/returned"))
}

/// `<attempt>/returned/<centre>`: a centre passed a return one tier up.
pub fn return_passed_up(attempt: &str, centre: &CentreCode) -> MessageId {
    id(format!("{attempt}/returned/{centre}"))
}

/// `<attempt>/extension-requested/<n>`: the department's n-th request for more time.
pub fn extension_requested(attempt: &str, number: u32) -> MessageId {
    id(format!("{attempt}/extension-requested/{number}"))
}

/// `<request>/decided`: the dispatching centre decided an extension request.
pub fn extension_decided(request: &MessageId) -> MessageId {
    id(format!("{request}/decided"))
}

/// `<case>/warning/<level>`: supervision warned that a case is nearly due or overdue.
pub fn case_warning(case_id: &CaseId, level: WarningLevel) -> MessageId {
    id(format!("{case_id}/warning/{level}"))
}

/// An event attempt's deadline key: the attempt key, then `/x<n>` after its n-th extension.
pub fn deadline_key(attempt: &str, extensions: u32) -> String {
    match extensions {
        0 => attempt.to_owned(),
        n => format!("{attempt}/x{n}"),
    }
}

/// `<deadline>/warning/<level>`: supervision warned that an event is nearly due or overdue.
pub fn event_warning(deadline_key: &str, level: WarningLevel) -> MessageId {
    id(format!("{deadline_key}/warning/{level}"))
}

/// `<attempt>/escalated`: supervision escalated an unanswered event one tier up.
pub fn escalated(attempt: &str) -> MessageId {
    id(format!("{attempt}/escalated"))
}

/// `<system>|<case>#<version>`: a system's `version`-th snapshot of what it remembers about a
/// case. The version is in the id so that a reader can skip a snapshot it already has without
/// decoding it ([`snapshot_version`]).
pub fn snapshot(system: &SystemId, case_id: &CaseId, version: u64) -> MessageId {
    id(format!("{system}|{case_id}#{version}"))
}

/// The version a [`snapshot`] id carries.
pub fn snapshot_version(id: &MessageId) -> Option<u64> {
    let (_, version) = id.as_str().rsplit_once('#')?;
    version.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_attempt_after_returns_and_extensions_has_its_own_ids() {
        let event = EventId::from_string("c1-fire");
        let attempt = attempt_key(&event, 2);
        assert_eq!(attempt, "c1-fire/r2");
        assert_eq!(
            dispatched(&attempt, &CentreCode::from_string("500103")).as_str(),
            "c1-fire/r2/dispatched/500103"
        );
        let deadline = deadline_key(&attempt, 1);
        assert_eq!(
            event_warning(&deadline, WarningLevel::Red).as_str(),
            "c1-fire/r2/x1/warning/red"
        );
        assert_eq!(attempt_key(&event, 0), "c1-fire");
        assert_eq!(deadline_key("c1-fire", 0), "c1-fire");
    }

    #[test]
    fn case_ids_follow_the_wire_contract() {
        let case = CaseId::from_string("c1");
        assert_eq!(accepted(&case).as_str(), "c1/accepted");
        assert_eq!(resumed(&case, 2).as_str(), "c1/resumed/2");
        assert_eq!(
            case_warning(&case, WarningLevel::Yellow).as_str(),
            "c1/warning/yellow"
        );
        assert_eq!(
            extension_decided(&extension_requested("c1-fire", 1)).as_str(),
            "c1-fire/extension-requested/1/decided"
        );
        assert_eq!(
            event_id(&case, &DepartmentCode::from_string("fire")).as_str(),
            "c1-fire"
        );
        let snapshot = snapshot(&SystemId::Intake, &case, 12);
        assert_eq!(snapshot.as_str(), "intake|c1#12");
        assert_eq!(snapshot_version(&snapshot), Some(12));
    }
}
