//! The supervisor's records, built from messages in the order a rebuilding view may meet them.

use super::*;
use crate::domain::{Envelope, EnvelopeHead, MessageId, MessageType, SystemId};
use crate::port::testing::FakeBridge;
use crate::port::Inbound;
use crate::settings::{Settings, DEFAULT_CONFIG};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

/// A message of case `c1` from `source` to `target`.
fn message(
    id: &str,
    kind: MessageType,
    source: SystemId,
    target: SystemId,
    data: serde_json::Value,
    at: DateTime<Utc>,
) -> Inbound {
    Inbound::new(Arc::new(Envelope::new_at(
        EnvelopeHead {
            id: MessageId::from_string(id),
            kind,
            case_id: CaseId::from_string("c1"),
            source,
            target,
            trace_id: "t1".into(),
        },
        &data,
        at,
    )))
}

#[actix_rt::test]
async fn an_answer_read_before_its_dispatch_finishes_the_dispatch() {
    // Arrange: market accepted case c1 and asked fire, at the district, for help.
    let settings = Settings::from_toml(DEFAULT_CONFIG, "default", false).unwrap();
    let catalog = Arc::new(Catalog::new(&settings));
    let supervisor = Supervisor::new(catalog, FakeBridge::taking_all().start().recipient()).start();
    let accepted = Utc::now() - Duration::hours(2);
    let (dispatched, answered) = (accepted + Duration::minutes(10), Utc::now());
    let (city, district) = (
        SystemId::Governance("500000".into()),
        SystemId::Governance("500103".into()),
    );
    let (market, fire) = (
        SystemId::Department("market".into()),
        SystemId::Department("fire".into()),
    );
    let route = json!([
        { "code": "500000", "name": "重庆市", "tier": "city" },
        { "code": "500103", "name": "渝中区", "tier": "district" },
    ]);
    let receipt = json!({
        "receipt_no": "MARKET-c1", "department": "market", "matter_code": "restaurant_opening",
        "accepted_at": accepted, "promised_days": 15, "due_date": "2099-12-31",
        "due_by": accepted + Duration::days(20),
    });
    let event = json!({
        "event_id": "c1-fire", "case_id": "c1", "requester": "market", "department": "fire",
        "tier": "district", "region": { "district": "500103", "street": "500103001" },
        "matter_code": "restaurant_opening", "materials": [], "route": route,
        "dispatched_at": dispatched, "deadline": dispatched + Duration::days(3),
    });
    let result = json!({
        "event_id": "c1-fire", "case_id": "c1", "department": "fire", "outcome": "agree",
        "opinion": "合格", "route": route, "answered_at": answered,
    });

    // Act: the acceptance, then fire's answer, and only then the dispatch it answers, as a
    // view reading the topics from their start may meet them.
    for inbound in [
        message(
            "c1/accepted",
            MessageType::ApplicationAccepted,
            market.clone(),
            city.clone(),
            receipt,
            accepted,
        ),
        message(
            "c1-fire/answered",
            MessageType::CollaborationAnswered,
            fire.clone(),
            district.clone(),
            result,
            answered,
        ),
        message(
            "c1-fire/dispatched/500103",
            MessageType::CollaborationDispatched,
            district,
            fire,
            event,
            dispatched,
        ),
    ] {
        supervisor.send(inbound).await.unwrap().unwrap();
    }

    // Assert: fire's dispatch counts as answered.
    let all = Period {
        from: None,
        to: None,
    };
    let figures = supervisor.send(GetDepartmentFigures(all)).await.unwrap();
    let fire = figures
        .iter()
        .find(|f| f.department.as_str() == "fire")
        .expect("fire's figures");
    assert_eq!(
        (fire.collaborations.received, fire.collaborations.completed),
        (1, 1),
        "{fire:?}"
    );
}
