//! The bridge over a memory bus with a small record limit: a record the bus refuses for good
//! fails its own publish alone, and a drain answers what could not be delivered. And the room a
//! record needs beyond the request body it carries.

use super::*;
use crate::bus::memory::MemoryBus;
use crate::settings::{BusKind, BusSettings};
use bytes::Bytes;

/// The memory bus's record limit in these tests.
const LIMIT: u64 = 2_000;

fn bus() -> MemoryBus {
    MemoryBus::new(&BusSettings {
        kind: BusKind::Memory,
        topic_prefix: "t".into(),
        partitions: 1,
        consumer_max_in_flight: 8,
        redelivery_backoff_ms: 1,
        max_record_bytes: LIMIT,
        flow_retention_hours: 168,
        memory_trim: false,
        memory_unread_bytes: 0,
        brokers: String::new(),
        kafka: Default::default(),
    })
}

fn bridge_over(bus: &MemoryBus) -> Addr<Bridge> {
    let settings = BridgeSettings {
        retry_initial_backoff_ms: 1,
        retry_max_attempts: 2,
        ..BridgeSettings::default()
    };
    Bridge::new(Arc::new(bus.clone()), settings).start()
}

fn record(key: &str, bytes: usize) -> Record {
    Record {
        topic: Topic::Applications,
        key: key.into(),
        headers: vec![(headers::ID.into(), format!("{key}/1"))],
        payload: Bytes::from(vec![b'x'; bytes]),
    }
}

#[actix_rt::test]
async fn a_refused_record_fails_its_publish_alone_and_is_dead_lettered() {
    // Arrange
    let bus = bus();
    let bridge = bridge_over(&bus);

    // Act: three publishes queued together, the middle one too large.
    let first = bridge.send(PublishRecords(vec![record("a", 10)]));
    let second = bridge.send(PublishRecords(vec![record("big", LIMIT as usize)]));
    let third = bridge.send(PublishRecords(vec![record("c", 10)]));
    let (first, second, third) = futures::join!(first, second, third);
    let drained = bridge.send(Drain).await.expect("the bridge runs");

    // Assert
    assert!(first.expect("answered").is_ok());
    assert!(third.expect("answered").is_ok());
    let refused = second.expect("answered").expect_err("too large");
    assert!(refused.permanent, "{refused}");
    let keys: Vec<String> = bus
        .all_records(Topic::Applications)
        .iter()
        .map(|(_, r)| r.key.clone())
        .collect();
    assert_eq!(keys, ["a", "c"]);
    let letters = bus.all_records(Topic::DeadLetters);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0].1;
    assert_eq!(letter.key, "big");
    assert_eq!(letter.header(headers::ID), Some("big/1"));
    assert_eq!(letter.header(headers::DLQ_TOPIC), Some("applications"));
    assert!(letter.payload.is_empty());
    assert_eq!(drained, 0, "nothing was pending when the drain was asked");
}

#[actix_rt::test]
async fn a_drain_answers_the_records_it_could_not_deliver() {
    // Arrange
    let bus = bus();
    let bridge = bridge_over(&bus);
    // Both sends of the next batch fail: it fails for good.
    bus.fail_next_publishes(2);

    // Act: two records pending when the drain is asked, and one queued behind them.
    let away = bridge.send(PublishRecords(vec![record("a", 10), record("b", 10)]));
    let refused = bridge.send(PublishRecords(vec![record("big", LIMIT as usize)]));
    let drained = bridge.send(Drain);
    let (away, refused, drained) = futures::join!(away, refused, drained);

    // Assert
    assert!(!away.expect("answered").expect_err("bus away").permanent);
    assert!(refused.expect("answered").is_err());
    assert_eq!(drained.expect("the bridge runs"), 3);
}

/// The record that publishes an application submitted with `body`, with every code the record
/// names (terminal, department, centre) 64 characters long.
fn published_record(body: &serde_json::Value) -> Record {
    use crate::actors::intake::ApplicationForm;
    use crate::domain::{
        message_ids, Application, CaseId, Channel, EnvelopeHead, MessageType, SystemId,
    };
    let form: ApplicationForm = serde_json::from_value(body.clone()).expect("a valid form");
    let code = "c".repeat(64);
    let case_id = CaseId::generate();
    let application = Application {
        case_id: case_id.clone(),
        matter_code: form.matter_code,
        applicant: form.applicant,
        region: form.region,
        materials: form.materials,
        form: crate::domain::FormFields::of(&form.form).expect("fields"),
        terminal_id: code.as_str().into(),
        channel: Channel::Kiosk,
        submitted_at: chrono::Utc::now(),
        owner: Some("o".repeat(crate::auth::MAX_SUB_CHARS)),
    };
    let head = EnvelopeHead {
        id: message_ids::published(&case_id),
        kind: MessageType::ApplicationPublished,
        case_id,
        source: SystemId::Governance(code.as_str().into()),
        target: SystemId::Department(code.as_str().into()),
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    envelope_record(&crate::domain::Envelope::new(head, &application))
}

#[test]
fn an_applications_record_adds_less_than_the_envelope_overhead() {
    // Arrange: a small application and a large one, sent compact as a client may.
    let small = serde_json::json!({
        "matter_code": "m",
        "applicant": { "name": "张", "id_number": "11010519491231002X", "phone": "13800138000" },
        "region": { "district": "500103", "street": "500103001" },
    });
    let mut large = small.clone();
    large["materials"] = serde_json::json!(vec!["材料".repeat(50); 100]);
    large["form"] = serde_json::json!({ "note": "x".repeat(60_000), "n": [1, 2.5, true] });

    for body in [small, large] {
        // Act
        let sent = serde_json::to_vec(&body).expect("JSON").len() as u64;
        let record = crate::bus::record_size(&published_record(&body));

        // Assert: under half the constant, which leaves the other half for longer codes.
        let added = record.saturating_sub(sent);
        assert!(
            added < crate::settings::ENVELOPE_OVERHEAD_BYTES / 2,
            "the record adds {added} bytes to a body of {sent}"
        );
    }
}

/// A bus that notes every publish handed to it (the keys of its records) and answers each only
/// when the test says so.
#[derive(Clone)]
struct ScriptedBus {
    /// What [`Bus::keeps_order_in_flight`] answers.
    ordered: bool,
    script: Arc<Mutex<Script>>,
}

#[derive(Default)]
struct Script {
    /// The keys of each publish, in the order they were handed.
    handed: Vec<Vec<String>>,
    /// Each publish's answer, until it is given.
    answers: Vec<Option<oneshot::Sender<Result<(), BusError>>>>,
}

impl ScriptedBus {
    fn new(ordered: bool) -> Self {
        Self {
            ordered,
            script: Arc::default(),
        }
    }

    fn handed(&self) -> Vec<Vec<String>> {
        self.script.lock().unwrap().handed.clone()
    }

    /// Waits until `count` publishes were handed over, and answers what they were.
    async fn wait_for(&self, count: usize) -> Vec<Vec<String>> {
        for _ in 0..2_000 {
            if self.handed().len() >= count {
                return self.handed();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{count} publishes expected, got {:?}", self.handed());
    }

    /// Answers publish `index` (counted from 0 in the order handed).
    fn answer(&self, index: usize, result: Result<(), BusError>) {
        let sender = self.script.lock().unwrap().answers[index].take();
        sender.expect("answered once").send(result).unwrap();
    }
}

impl Bus for ScriptedBus {
    fn publish(
        &self,
        records: Vec<Arc<Record>>,
    ) -> futures::future::BoxFuture<'static, Result<(), BusError>> {
        let (answer, answered) = oneshot::channel();
        let mut script = self.script.lock().unwrap();
        script
            .handed
            .push(records.iter().map(|r| r.key.clone()).collect());
        script.answers.push(Some(answer));
        Box::pin(async move {
            answered
                .await
                .unwrap_or_else(|_| Err(BusError::Publish("no answer".into())))
        })
    }

    fn subscribe(
        &self,
        _: super::super::Subscription,
    ) -> Result<super::super::SubscriptionHandle, BusError> {
        Err(BusError::Subscribe(
            "a scripted bus has no consumers".into(),
        ))
    }

    fn end_offsets(
        &self,
        _: Vec<Topic>,
    ) -> futures::future::BoxFuture<'static, Result<super::super::EndOffsets, BusError>> {
        Box::pin(async { Ok(Default::default()) })
    }

    fn keeps_order_in_flight(&self) -> bool {
        self.ordered
    }
}

fn bridge_over_script(bus: &ScriptedBus) -> Addr<Bridge> {
    let settings = BridgeSettings {
        retry_initial_backoff_ms: 1,
        ..BridgeSettings::default()
    };
    Bridge::new(Arc::new(bus.clone()), settings).start()
}

#[actix_rt::test]
async fn batches_go_on_before_earlier_ones_are_answered_and_a_failed_one_goes_again_before_anything_new(
) {
    // Arrange
    let bus = ScriptedBus::new(true);
    let bridge = bridge_over_script(&bus);

    // Act: `b` is handed over while `a` is on its way; then `a` fails and `b` is taken.
    let a = bridge.send(PublishRecords(vec![record("a", 10)]));
    bus.wait_for(1).await;
    let b = bridge.send(PublishRecords(vec![record("b", 10)]));
    let handed = bus.wait_for(2).await;
    bus.answer(0, Err(BusError::Publish("broker away".into())));
    bus.answer(1, Ok(()));
    let b = b.await.expect("answered");
    let resent = bus.wait_for(3).await;
    // `c` comes while `a` is being sent again.
    let c = bridge.send(PublishRecords(vec![record("c", 10)]));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let while_resending = bus.handed();
    bus.answer(2, Ok(()));
    let a = a.await.expect("answered");
    let after = bus.wait_for(4).await;
    bus.answer(3, Ok(()));
    let c = c.await.expect("answered");

    // Assert
    assert_eq!(handed, [["a"], ["b"]], "two batches on their way at once");
    assert!(b.is_ok(), "{b:?}");
    assert_eq!(resent[2], ["a"], "the failed batch alone, again");
    assert_eq!(
        while_resending.len(),
        3,
        "nothing new while `a` is sent again"
    );
    assert!(a.is_ok(), "{a:?}");
    assert_eq!(after[3], ["c"]);
    assert!(c.is_ok(), "{c:?}");
}

#[actix_rt::test]
async fn batches_failed_together_go_again_together_in_the_order_they_were_first_handed() {
    // Arrange
    let bus = ScriptedBus::new(true);
    let bridge = bridge_over_script(&bus);
    let a = bridge.send(PublishRecords(vec![record("a", 10)]));
    bus.wait_for(1).await;
    let b = bridge.send(PublishRecords(vec![record("b", 10)]));
    bus.wait_for(2).await;

    // Act: the later batch fails first.
    bus.answer(1, Err(BusError::Publish("broker away".into())));
    bus.answer(0, Err(BusError::Publish("broker away".into())));
    let handed = bus.wait_for(3).await;
    bus.answer(2, Ok(()));
    let (a, b) = futures::join!(a, b);

    // Assert
    assert_eq!(handed[2], ["a", "b"]);
    assert!(a.expect("answered").is_ok());
    assert!(b.expect("answered").is_ok());
}

#[actix_rt::test]
async fn on_a_bus_that_cannot_keep_order_in_flight_one_batch_is_out_at_a_time() {
    // Arrange
    let bus = ScriptedBus::new(false);
    let bridge = bridge_over_script(&bus);
    let a = bridge.send(PublishRecords(vec![record("a", 10)]));
    bus.wait_for(1).await;

    // Act
    let b = bridge.send(PublishRecords(vec![record("b", 10)]));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let while_a_is_out = bus.handed();
    bus.answer(0, Ok(()));
    let handed = bus.wait_for(2).await;
    bus.answer(1, Ok(()));
    let (a, b) = futures::join!(a, b);

    // Assert
    assert_eq!(while_a_is_out, [["a"]]);
    assert_eq!(handed[1], ["b"]);
    assert!(a.expect("answered").is_ok());
    assert!(b.expect("answered").is_ok());
}
