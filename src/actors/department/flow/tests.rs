use super::*;
use crate::catalog::Catalog;
use crate::clock::ManualClock;
use crate::domain::{Applicant, Channel, EnvelopeHead, Region};
use crate::port::testing::FakeBridge;
use crate::settings::{Settings, DEFAULT_CONFIG};
use std::sync::Arc;

fn envelope<T: serde::Serialize>(kind: MessageType, id: &str, data: &T) -> Arc<Envelope> {
    Arc::new(Envelope::new_at(
        EnvelopeHead {
            id: crate::domain::MessageId::from_string(id),
            kind,
            case_id: CaseId::from_string("c1"),
            source: SystemId::Governance("500000".into()),
            target: SystemId::Department("market".into()),
            trace_id: "t1".into(),
        },
        data,
        Utc::now(),
    ))
}

/// The market department on `clock`, as after a restart that lost its state, and an
/// application of a matter it must ask the fire brigade about.
fn market_and_application(clock: Arc<ManualClock>) -> (Addr<Department>, Application) {
    let settings = Settings::from_toml(DEFAULT_CONFIG, "default", false).unwrap();
    let catalog = Arc::new(Catalog::with_clock(&settings, clock));
    let market = settings
        .departments
        .iter()
        .find(|d| d.code == "market")
        .unwrap();
    let department = Department::new(
        market.clone(),
        catalog.clone(),
        FakeBridge::taking_all().start().recipient(),
        false,
        Arc::default(),
    )
    .start();
    let application = Application {
        case_id: CaseId::from_string("c1"),
        matter_code: "food_business_licence".into(),
        applicant: Applicant {
            name: "张三".into(),
            id_number: "110101199003071233".into(),
            phone: "13800000000".into(),
        },
        region: Region {
            district: "500103".into(),
            street: "500103001".into(),
        },
        materials: vec![
            "business_licence".into(),
            "premises_proof".into(),
            "food_safety_plan".into(),
        ],
        form: crate::domain::FormFields::of(&serde_json::json!({})).expect("fields"),
        terminal_id: "pc-web".into(),
        channel: Channel::Pc,
        submitted_at: Utc::now(),
        owner: None,
    }
    .sealed(&catalog.keyring)
    .unwrap();
    (department, application)
}

fn completion(application: &Application) -> Arc<Envelope> {
    envelope(
        MessageType::CollaborationCompleted,
        "c1/collaboration-completed",
        &CollaborationCompleted {
            requester: "market".into(),
            results: Vec::new(),
            application: application.clone(),
        },
    )
}

#[actix_rt::test]
async fn a_completion_that_comes_before_its_application_waits_for_it() {
    // Arrange
    let (department, application) = market_and_application(ManualClock::new(Utc::now()));
    let completion = completion(&application);

    // Act: the completion is read first, then the application, then the completion again.
    let early = department
        .send(Inbound::new(completion.clone()))
        .await
        .unwrap();
    let published = envelope(
        MessageType::ApplicationPublished,
        "c1/published",
        &application,
    );
    department
        .send(Inbound::new(published))
        .await
        .unwrap()
        .unwrap();
    let again = department.send(Inbound::new(completion)).await.unwrap();

    // Assert: refused for now (to be delivered again), not dropped; taken once the case is known.
    assert!(matches!(early, Err(HandleError::Retry(_))), "{early:?}");
    assert!(again.is_ok(), "{again:?}");
}

#[actix_rt::test]
async fn a_completion_whose_case_never_comes_goes_to_dead_letters_in_the_end() {
    // Arrange
    let clock = ManualClock::new(Utc::now());
    let (department, application) = market_and_application(clock.clone());
    let completion = completion(&application);
    let first = department
        .send(Inbound::new(completion.clone()))
        .await
        .unwrap();

    // Act: `service.stalled_after_secs` (600 s by default) later, still no application.
    clock.advance(chrono::Duration::seconds(600));
    let last = department.send(Inbound::new(completion)).await.unwrap();

    // Assert
    assert!(matches!(first, Err(HandleError::Retry(_))), "{first:?}");
    assert!(matches!(last, Err(HandleError::Poison(_))), "{last:?}");
}
