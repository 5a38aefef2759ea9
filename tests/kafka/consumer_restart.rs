//! A consumer group that stops and starts again resumes after the offsets it committed: nothing
//! it finished is handed out again, nothing published meanwhile is lost. Runs on the real broker
//! when `GOVFUSION_TEST_KAFKA` names one, else on the embedded cluster.

use crate::helpers::{poll, settings, Broker};
use bytes::Bytes;
use govfusion::bus::kafka::KafkaBus;
use govfusion::bus::{
    Bus, Delivery, Dispatch, Record, RecordHandler, Subscription, SubscriptionHandle, Topic,
};
use std::sync::{Arc, Mutex};

/// Payloads a subscriber has handled, in the order it handled them.
type Seen = Arc<Mutex<Vec<String>>>;

/// Subscribes `group` to the applications topic with a handler that records every payload.
fn subscribe(bus: &KafkaBus, group: &str) -> (SubscriptionHandle, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let handler: RecordHandler = Arc::new(move |delivery: Delivery| {
        let payload = String::from_utf8_lossy(&delivery.record.payload).into_owned();
        record.lock().unwrap().push(payload);
        Dispatch::Handle(Box::pin(async { Ok(()) }))
    });
    let handle = bus
        .subscribe(Subscription {
            group: group.to_owned(),
            topics: vec![Topic::Applications],
            handler,
            arbiter: None,
            membership: govfusion::bus::Membership::Dynamic,
            after: None,
            resume: None,
        })
        .expect("Failed to subscribe");
    (handle, seen)
}

/// Publishes records `payload-<n>` for every `n` of `range`; returns the payloads.
async fn publish(bus: &KafkaBus, range: std::ops::Range<u32>) -> Vec<String> {
    let payloads: Vec<String> = range.map(|n| format!("payload-{n}")).collect();
    let records = payloads
        .iter()
        .map(|payload| {
            Arc::new(Record {
                topic: Topic::Applications,
                key: payload.clone(),
                headers: Vec::new(),
                payload: Bytes::from(payload.clone()),
            })
        })
        .collect();
    bus.publish(records).await.expect("Failed to publish");
    payloads
}

/// Waits until `seen` holds at least `count` payloads; returns them.
async fn wait_for(seen: &Seen, count: usize) -> Vec<String> {
    poll(&format!("{count} records handled"), || async {
        let now = seen.lock().unwrap().clone();
        if now.len() >= count {
            Ok(now)
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await
}

#[actix_web::test]
async fn a_restarted_consumer_group_gets_exactly_the_records_published_while_it_was_gone() {
    // Arrange: one partition, so that every record comes in publish order — a record handed out
    // again would arrive before the new ones, and seeing the new ones proves none was.
    let mut settings = settings(&Broker::real_or_embedded());
    settings.bus.partitions = 1;
    let bus = KafkaBus::connect(&settings.bus)
        .await
        .expect("Failed to connect to Kafka");
    let group = format!("{}.restart", settings.bus.topic_prefix);
    let (mut first, first_seen) = subscribe(&bus, &group);
    let before = publish(&bus, 0..5).await;
    let handled = wait_for(&first_seen, before.len()).await;
    assert_eq!(handled, before, "the first consumer's records");

    // Act
    first.stopped().await;
    let meanwhile = publish(&bus, 5..8).await;
    let (mut second, second_seen) = subscribe(&bus, &group);

    // Assert
    let handled = wait_for(&second_seen, meanwhile.len()).await;
    assert_eq!(
        handled, meanwhile,
        "the restarted group should get exactly the records published while it was gone"
    );
    assert_eq!(
        first_seen.lock().unwrap().len(),
        before.len(),
        "a stopped consumer must hand out nothing more"
    );
    second.stopped().await;
}
