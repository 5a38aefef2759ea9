//! The intake system when the bus refuses a submission's record for good: the submission is
//! answered refused, the case fails with a reason, the feed moves past it to the submissions
//! behind it, and an operator sees no stalled case to re-drive in it.

use super::*;
use crate::clock::SystemClock;
use crate::domain::{message_ids, CaseStatus, Envelope, EnvelopeHead, MessageType, SystemId};
use crate::port::testing::FakeBridge;
use crate::port::{Delivery, HandleError, Inbound};
use crate::settings::{Settings, DEFAULT_CONFIG};
use serde_json::json;

fn submission() -> Submit {
    let form = json!({
        "matter_code": "individual_business_registration",
        "applicant": { "name": "张三", "id_number": "500103199001011232", "phone": "13800000000" },
        "region": { "district": "500103", "street": "500103001" },
        "materials": [],
    });
    Submit {
        form: serde_json::from_value(form).expect("a valid form"),
        owner: None,
        terminal_id: "pc-web".into(),
        channel: crate::domain::Channel::Pc,
    }
}

/// The catalog of the default city, on the system clock.
fn default_catalog() -> Arc<Catalog> {
    let settings = Settings::from_toml(DEFAULT_CONFIG, "default", false).expect("valid");
    Arc::new(Catalog::with_clock(&settings, Arc::new(SystemClock)))
}

/// Submits `count` applications, each taken; their case ids.
async fn submit(intake: &Addr<IntakeSystem>, count: usize) -> Vec<CaseId> {
    let mut cases = Vec::new();
    for _ in 0..count {
        let taken = intake.send(submission()).await.expect("running");
        cases.push(taken.expect("taken").case_id);
    }
    cases
}

/// What the feed hands out from its start (at most ten), waiting for a first one.
async fn fed_from_the_start(intake: &Addr<IntakeSystem>) -> Vec<FedApplication> {
    intake
        .send(TakeNewApplications {
            after: 0,
            max: 10,
            wait: true,
        })
        .await
        .expect("running")
}

/// An intake system that writes snapshots, over a bus refusing the first publish for good.
async fn intake_refusing_first() -> Addr<IntakeSystem> {
    let catalog = default_catalog();
    let bridge = FakeBridge {
        transient: 0,
        for_good: 1,
        takes_snapshots: false,
        taken: Default::default(),
    };
    let bridge = bridge.start().recipient();
    let intake = IntakeSystem::new(catalog, bridge, true, Duration::from_secs(5)).start();
    intake.send(MarkReady).await.expect("running");
    intake
}

#[actix_rt::test]
async fn a_submission_the_bus_refuses_for_good_fails_its_case_and_the_feed_moves_on() {
    // Arrange
    let intake = intake_refusing_first().await;

    // Act
    let refused = intake.send(submission()).await.expect("running");
    let taken = intake.send(submission()).await.expect("running");

    // Assert: the first is answered refused, as too large, and its case says why it failed …
    let refused = refused.expect("taken before the bus answered");
    let Delivery::Refused(refusal) = &refused.delivery else {
        panic!("refused for good, not {:?}", refused.delivery);
    };
    assert!(refusal.too_large, "{refusal:?}");
    let case = intake.send(GetCase(refused.case_id.clone())).await;
    let case = case
        .expect("running")
        .expect("the case exists")
        .expect("its applicant opens");
    assert_eq!(case.status, CaseStatus::Failed);
    let failure = case.failure.expect("a reason");
    assert!(failure.contains("exceeds the bus's limit"), "{failure}");
    // … and the feed hands out only the next one, behind it.
    let taken = taken.expect("taken");
    assert_eq!(taken.delivery, Delivery::OnBus);
    let fed = fed_from_the_start(&intake).await;
    let fed: Vec<_> = fed.iter().map(|f| f.application.case_id.clone()).collect();
    assert_eq!(fed, [taken.case_id]);
}

#[actix_rt::test]
async fn a_failed_case_is_not_listed_as_stalled_and_a_redrive_names_its_failure() {
    // Arrange: a case failed because the bus refused its application.
    let intake = intake_refusing_first().await;
    let failed = intake.send(submission()).await.expect("running");
    let failed = failed.expect("taken").case_id;

    // Act
    let stalled = intake
        .send(ListStalled {
            idle_secs: 0,
            max: 10,
        })
        .await;
    let redriven = intake.send(RedriveCase(failed.clone())).await;

    // Assert
    let stalled = stalled.expect("running");
    assert_eq!(stalled.total, 0, "{stalled:?}");
    match redriven.expect("running") {
        Err(RedriveError::Failed(message)) => {
            assert!(message.contains(failed.as_str()), "{message}");
            assert!(message.contains("exceeds the bus's limit"), "{message}");
        }
        other => panic!("a failed case cannot be re-driven: {other:?}"),
    }
}

#[actix_rt::test]
async fn a_redrive_the_bus_refuses_for_good_is_not_answered_try_again() {
    // Arrange: a published case, on a bus that refuses every publish for good (no snapshots
    // written: the submission needs no publish).
    let catalog = default_catalog();
    let bridge = FakeBridge {
        transient: 0,
        for_good: u32::MAX,
        takes_snapshots: false,
        taken: Default::default(),
    };
    let bridge = bridge.start().recipient();
    let intake = IntakeSystem::new(catalog, bridge, false, Duration::from_secs(5)).start();
    intake.send(MarkReady).await.expect("running");
    let submitted = intake.send(submission()).await.expect("running");
    let case_id = submitted.expect("taken").case_id;
    let head = EnvelopeHead {
        id: message_ids::published(&case_id),
        kind: MessageType::ApplicationPublished,
        case_id: case_id.clone(),
        source: SystemId::Intake,
        target: SystemId::Intake,
        trace_id: String::new(),
    };
    let published = Envelope::new_at(head, &(), chrono::Utc::now());
    let observed = intake.send(Inbound::new(Arc::new(published))).await;
    observed.expect("running").expect("observed");

    // Act
    let redriven = intake.send(RedriveCase(case_id.clone())).await;

    // Assert
    match redriven.expect("running") {
        Err(RedriveError::Refused(message)) => {
            assert!(message.contains("exceeds the bus's limit"), "{message}");
            assert!(!message.contains("try again"), "{message}");
        }
        other => panic!("refused for good: {other:?}"),
    }
}

#[actix_rt::test]
async fn one_of_several_intake_systems_issues_its_own_cases_at_its_own_feed_positions() {
    // Arrange: instance 1 of 3 over 8 partitions, every record taken.
    let catalog = default_catalog();
    let bridge = FakeBridge::taking_all().start().recipient();
    let share = crate::bus::Share {
        instance: 1,
        instances: 3,
    };
    let share = IntakeShare::new(share, 8, crate::bus::Partitioner::Murmur2);
    let intake = IntakeSystem::new(catalog, bridge, true, Duration::from_secs(5))
        .sharing(share)
        .start();
    intake.send(MarkReady).await.expect("running");

    // Act
    let submitted = submit(&intake, 3).await;
    let fed = fed_from_the_start(&intake).await;

    // Assert: its own case ids, fed in order at positions 4, 7 and 10 (1 modulo 3).
    assert!(submitted.iter().all(|case_id| share.owns(case_id)));
    let fed: Vec<(u64, CaseId)> = fed
        .iter()
        .map(|f| (f.sequence, f.application.case_id.clone()))
        .collect();
    let expected: Vec<(u64, CaseId)> = [4, 7, 10].into_iter().zip(submitted).collect();
    assert_eq!(fed, expected);
}

#[actix_rt::test]
async fn a_snapshot_that_cannot_be_read_keeps_its_feed_position_taken() {
    // Arrange: an intake system restoring, given a snapshot of its own at feed position 5
    // whose application is not one.
    let catalog = default_catalog();
    let bridge = FakeBridge::taking_all().start().recipient();
    let intake = IntakeSystem::new(catalog, bridge, true, Duration::from_secs(5)).start();
    let case_id = CaseId::generate();
    let state = json!({
        "sequence": 5,
        "application": "not an application",
        "trace_id": "t",
        "terminal_id": "pc-web",
    });
    let snapshot =
        crate::actors::snapshot_envelope(SystemId::Intake, &case_id, 1, &state, chrono::Utc::now());

    // Act
    let restored = intake
        .send(Inbound::new(Arc::new(snapshot)))
        .await
        .expect("running");
    intake.send(MarkReady).await.expect("running");
    let taken = intake.send(submission()).await.expect("running");
    let fed = fed_from_the_start(&intake).await;

    // Assert: the snapshot is refused as poison, and the next submission is fed after it.
    assert!(
        matches!(restored, Err(HandleError::Poison(_))),
        "{restored:?}"
    );
    let case_id = taken.expect("taken").case_id;
    let fed: Vec<(u64, CaseId)> = fed
        .iter()
        .map(|f| (f.sequence, f.application.case_id.clone()))
        .collect();
    assert_eq!(fed, vec![(6, case_id)]);
}

/// The message that tells the intake system the city centre published `case_id`.
fn published(case_id: &CaseId) -> Inbound {
    published_as(case_id, message_ids::published(case_id))
}

/// An `application.published` of `case_id` under the message id `id`.
fn published_as(case_id: &CaseId, id: crate::domain::MessageId) -> Inbound {
    let head = EnvelopeHead {
        id,
        kind: MessageType::ApplicationPublished,
        case_id: case_id.clone(),
        source: SystemId::Intake,
        target: SystemId::Intake,
        trace_id: String::new(),
    };
    Inbound::new(Arc::new(Envelope::new_at(head, &(), chrono::Utc::now())))
}

/// An intake system keeping at most `keep_open` open cases in memory, over a case repository
/// on a fresh SQLite file in `dir`, and ready.
async fn intake_over_a_repository(
    dir: &std::path::Path,
    keep_open: usize,
) -> (
    Addr<IntakeSystem>,
    crate::store::CaseWriter,
    crate::store::CaseRepository,
) {
    let store = crate::settings::StoreSettings {
        data_dir: dir.display().to_string(),
        ..Default::default()
    };
    let repository = crate::store::CaseRepository::open(&store)
        .await
        .expect("a fresh SQLite file opens");
    let writer = crate::store::CaseWriter::start(repository.clone());
    let bridge = FakeBridge::taking_all().start().recipient();
    let intake = IntakeSystem::new(default_catalog(), bridge, false, Duration::from_secs(5))
        .keeping_cases_in(writer.clone(), repository.clone(), keep_open, 1000)
        .start();
    intake.send(MarkReady).await.expect("running");
    (intake, writer, repository)
}

/// The row of `case_id` handed to `writer`: waiting for it, or written already.
async fn handed_on(
    writer: &crate::store::CaseWriter,
    repository: &crate::store::CaseRepository,
    case_id: &CaseId,
) -> Option<crate::store::CaseRow> {
    match writer.unwritten(case_id.as_str()) {
        Some(row) => Some(row),
        // A row leaves the writer's list once committed.
        None => repository.get(case_id.as_str()).await.expect("readable"),
    }
}

#[actix_rt::test]
async fn the_rows_of_cases_a_mailbox_pass_changed_are_handed_on_before_each_handling_ends() {
    // Arrange: an intake system keeping its cases in a repository on a fresh SQLite file, with
    // two submitted cases.
    let dir = std::env::temp_dir().join(format!("govfusion-rows-{}", uuid::Uuid::new_v4()));
    let (intake, writer, repository) = intake_over_a_repository(&dir, 1000).await;
    let cases = submit(&intake, 2).await;

    // Act: both publications queued at once, and each one's handling awaited in turn.
    let first = intake.send(published(&cases[0]));
    let second = intake.send(published(&cases[1]));
    first.await.expect("running").expect("observed");
    let after_first = handed_on(&writer, &repository, &cases[0]).await;
    second.await.expect("running").expect("observed");
    let after_second = handed_on(&writer, &repository, &cases[1]).await;
    let unwritten = writer.flush().await;
    let stored = repository.get(cases[1].as_str()).await.expect("readable");

    // Assert: once a message's handling ended, its case's row showing it was on its way to
    // the repository — before the consumer hands the record's offset on — and it is written.
    let after_first = after_first.expect("the first case's row is handed on");
    assert_eq!(after_first.status, "published");
    let after_second = after_second.expect("the second case's row is handed on");
    assert_eq!(after_second.status, "published");
    assert_eq!(unwritten, 0);
    assert_eq!(stored.expect("written").status, "published");
    repository.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[actix_rt::test]
async fn a_case_read_back_for_a_message_is_not_let_go_before_the_message_is_observed() {
    // Arrange: one open case kept in memory; two submitted, which stay (the city has not
    // published them); the first is published and leaves memory, the second still waits.
    let dir = std::env::temp_dir().join(format!("govfusion-away-{}", uuid::Uuid::new_v4()));
    let (intake, _writer, repository) = intake_over_a_repository(&dir, 1).await;
    let cases = submit(&intake, 2).await;
    let observed = intake.send(published(&cases[0])).await.expect("running");
    observed.expect("observed");
    let away = intake.send(Holding).await.expect("running");

    // Act: another message of the first case, out of memory while more cases than it may
    // keep wait on it.
    let again = published_as(&cases[0], crate::domain::MessageId::from_string("again"));
    let observed = intake.send(again).await.expect("running");
    let case = intake
        .send(GetCase(cases[0].clone()))
        .await
        .expect("running");

    // Assert: it was read back and the message is in its history, not dropped as a case of
    // another intake system.
    assert_eq!((away.cases, away.away), (1, 1), "{away:?}");
    observed.expect("observed");
    let case = case.expect("readable").expect("the case is known");
    let ids: Vec<&str> = case.history.iter().map(|e| e.message_id.as_str()).collect();
    assert!(ids.contains(&"again"), "{ids:?}");
    repository.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
