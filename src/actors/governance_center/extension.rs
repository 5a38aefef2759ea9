//! Extension requests (延期申请): a centre approves one that asks for at most
//! `supervision.max_extension_days` for an event that had fewer than
//! `supervision.max_extensions`, and refuses any other with the rule it broke.

use super::GovernanceCenter;
use crate::actors::BusSystem;
use crate::domain::{
    message_ids, CollaborationEvent, Envelope, ExtensionDecision, ExtensionRequest, MessageId,
    MessageType, SystemId,
};

impl GovernanceCenter {
    /// Approves or refuses an extension of an event this centre dispatched.
    pub(super) fn decide_extension(
        &self,
        request: ExtensionRequest,
        request_id: &MessageId,
        trace_id: &str,
    ) -> Envelope {
        let rules = &self.catalog.supervision;
        let event = &request.event;
        let refusal = self.refusal(&request);
        let approved = refusal.is_none();
        let decision = ExtensionDecision {
            event_id: event.event_id.clone(),
            department: event.department.clone(),
            approved,
            days: request.days,
            deadline: if approved {
                self.catalog.calendar.extend(event.deadline, request.days)
            } else {
                event.deadline
            },
            extensions: event.extensions + u32::from(approved),
            reason: refusal.unwrap_or_else(|| {
                format!(
                    "approved: {} working days (at most {} per extension)",
                    request.days, rules.max_extension_days
                )
            }),
            decided_by: self.me().to_string(),
            decided_at: self.catalog.now(),
        };
        self.sender().message(
            message_ids::extension_decided(request_id),
            MessageType::CollaborationExtensionDecided,
            &event.case_id,
            SystemId::Department(event.department.clone()),
            trace_id,
            &decision,
        )
    }

    /// The rule an extension request breaks, said to the department; none when it may be
    /// granted.
    fn refusal(&self, request: &ExtensionRequest) -> Option<String> {
        let rules = &self.catalog.supervision;
        let event: &CollaborationEvent = &request.event;
        if request.days == 0 {
            Some("an extension must ask for at least one working day".to_owned())
        } else if request.days > rules.max_extension_days {
            Some(format!(
                "at most {} working days may be granted at once",
                rules.max_extension_days
            ))
        } else if event.extensions >= rules.max_extensions {
            Some(format!(
                "the event already had {} of the {} extensions allowed",
                event.extensions, rules.max_extensions
            ))
        } else {
            None
        }
    }
}
