//! Bus records a test writes itself, as an outside system would.

use govfusion::bus::{Record, Topic};
use govfusion::domain::{message_ids, CaseId, Envelope, EnvelopeHead, MessageType, SystemId};
use serde::Serialize;

/// An `application.published` of `case_id` from the city centre to the market department,
/// carrying `data` as its payload, with the routing headers govfusion writes.
pub fn published_to_market(case_id: &CaseId, data: &impl Serialize) -> Record {
    let envelope = Envelope::new(
        EnvelopeHead {
            id: message_ids::published(case_id),
            kind: MessageType::ApplicationPublished,
            case_id: case_id.clone(),
            source: SystemId::Governance("500000".into()),
            target: SystemId::Department("market".into()),
            trace_id: "t".into(),
        },
        data,
    );
    Record {
        topic: Topic::Applications,
        key: case_id.to_string(),
        headers: vec![
            ("id".into(), envelope.id.to_string()),
            ("type".into(), "application.published".into()),
            ("target".into(), "department/market".into()),
        ],
        payload: envelope.to_vec().into(),
    }
}
