//! How each message about a collaboration event updates the event as the applicant sees it.
//!
//! An event is routed down the tiers, signed for, maybe returned and routed again, extended or
//! escalated, and answered; its messages come from several topics in any order, so each step
//! moves the event's [`Progress`] forward only.

use super::Observed;
use crate::actors::intake::view::{CaseView, EventResultView, EventView, Progress, Stage};
use crate::domain::{
    CaseStatus, CollaborationEvent, CollaborationResult, Escalation, EventReturned, EventSigned,
    EventStatus, ExtensionDecision, ExtensionRequest, SystemId, Tier,
};

/// `collaboration.dispatched`: a centre routed an event one tier down, or to its department
/// (the message's `target`).
pub(super) fn dispatched(
    view: &mut CaseView,
    event: CollaborationEvent,
    target: &SystemId,
) -> Observed {
    let at_department = matches!(target, SystemId::Department(_));
    let entry = event_view(view, &event);
    // The longest route yet, or the first of a newer attempt, is the one to show.
    if event.route.len() >= entry.tier_path.len()
        || entry.progress.behind_attempt(event.returns.len())
    {
        entry.tier_path = event.route.iter().map(|h| h.name.clone()).collect();
    }
    let (stage, status) = if at_department {
        (Stage::AtDepartment, EventStatus::Dispatched)
    } else {
        (Stage::Routing, EventStatus::Routing)
    };
    if entry.advance(Progress::at(event.returns.len(), stage)) {
        entry.status = status;
        entry.department = event.department;
        entry.tier = event.tier;
        entry.deadline = Some(event.deadline);
        entry.extensions = event.extensions;
        entry.returns = event.returns;
        entry.escalated_to = None;
    }
    Observed::status(CaseStatus::Collaborating)
}

/// `collaboration.signed`: the collaborating department took the event on.
pub(super) fn signed(view: &mut CaseView, signed: EventSigned) -> Observed {
    let entry = event_view(view, &signed.event);
    if entry.advance(Progress::at(signed.event.returns.len(), Stage::Signed)) {
        entry.status = EventStatus::Signed;
    }
    Observed::noted(
        CaseStatus::Collaborating,
        format!("signed by {}", signed.signed_by),
    )
}

/// `collaboration.returned`: the department returned the event (退单), or a centre (the
/// message's `source`) passes the return up to be reassigned.
pub(super) fn returned(
    view: &mut CaseView,
    returned: EventReturned,
    source: &SystemId,
) -> Observed {
    let event = returned.event;
    let note = event.returns.last().map(|last| match source {
        SystemId::Department(_) => format!(
            "returned by department {}: {}",
            last.department, last.reason
        ),
        _ => format!(
            "passed up for reassignment (returned by department {}: {})",
            last.department, last.reason
        ),
    });
    let entry = event_view(view, &event);
    // The return starts the next attempt.
    if entry.advance(Progress::at(event.returns.len(), Stage::Unrouted)) {
        entry.status = EventStatus::Returned;
        entry.returns = event.returns;
    }
    Observed {
        status: CaseStatus::Collaborating,
        note,
    }
}

/// `collaboration.extension_requested`: history only; the deadline moves when it is decided.
pub(super) fn extension_requested(request: ExtensionRequest) -> Observed {
    Observed::noted(
        CaseStatus::Collaborating,
        format!(
            "{} asks for {} more working days: {}",
            request.event.department, request.days, request.reason
        ),
    )
}

/// `collaboration.extension_decided`: an approved extension moves the event's deadline.
pub(super) fn extension_decided(view: &mut CaseView, decision: ExtensionDecision) -> Observed {
    let verdict = if decision.approved {
        "approved"
    } else {
        "refused"
    };
    let note = format!("extension {verdict}: {}", decision.reason);
    if decision.approved {
        if let Some(entry) = view.known_event_mut(decision.event_id.as_str()) {
            entry.deadline = Some(decision.deadline);
            entry.extensions = decision.extensions;
        }
    }
    Observed::noted(CaseStatus::Collaborating, note)
}

/// `collaboration.escalated`: supervision escalated an unanswered event (督办).
pub(super) fn escalated(view: &mut CaseView, escalation: Escalation) -> Observed {
    let note = format!(
        "{} did not answer by {}; escalated to {}",
        escalation.department, escalation.deadline, escalation.escalated_to
    );
    if let Some(entry) = view.known_event_mut(escalation.event_id.as_str()) {
        entry.escalated_to = Some(escalation.escalated_to);
    }
    Observed::noted(CaseStatus::Collaborating, note)
}

/// `collaboration.answered`: the collaborating department's answer, final for its event.
pub(super) fn answered(view: &mut CaseView, result: CollaborationResult) -> Observed {
    // The last centre of the route sits at the department's tier.
    let tier = result.route.last().map_or(Tier::City, |hop| hop.tier);
    let entry = view.event_mut(result.event_id.as_str(), &result.department, tier);
    entry.progress = Progress::Answered;
    entry.status = EventStatus::Answered;
    entry.department = result.department;
    if entry.tier_path.is_empty() {
        entry.tier_path = result.route.iter().map(|h| h.name.clone()).collect();
    }
    entry.result = Some(EventResultView {
        outcome: result.outcome,
        opinion: result.opinion,
        answered_at: result.answered_at,
    });
    Observed::status(CaseStatus::Collaborating)
}

/// The view of an event, created on first sight.
fn event_view<'a>(view: &'a mut CaseView, event: &CollaborationEvent) -> &'a mut EventView {
    view.event_mut(event.event_id.as_str(), &event.department, event.tier)
}
