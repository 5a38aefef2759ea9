use crate::bus::kafka::KafkaBus;
use crate::bus::{Bus, Delivery, Dispatch, HandlerFailed, Record, Subscription, Topic};
use crate::settings::{BusKind, Settings, DEFAULT_CONFIG};
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn record(key: &str, payload: String) -> Arc<Record> {
    Arc::new(Record {
        topic: Topic::Applications,
        key: key.into(),
        headers: vec![],
        payload: Bytes::from(payload),
    })
}

/// The pause, seek and resume of a failed partition on librdkafka itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_partition_is_read_again_from_its_failed_record_on_the_embedded_cluster() {
    // Arrange: the embedded cluster, two cases on its two partitions, and a handler that fails
    // a0 twice. Records after a failed one on its partition may be handled before the failure
    // is seen, and are delivered again with it: only another partition's are sure to come once.
    let mut settings = Settings::from_toml(DEFAULT_CONFIG, "default", false)
        .expect("the default config is valid")
        .bus;
    settings.kind = BusKind::Embedded;
    settings.partitions = 2;
    settings.redelivery_backoff_ms = 20;
    let bus = KafkaBus::connect(&settings).await.unwrap();
    let partition = |key: &str| bus.partitioner().partition(key, settings.partitions);
    let other = ('b'..='z')
        .map(|c| format!("case-{c}"))
        .find(|key| partition(key) != partition("case-a"))
        .expect("some case goes to the other partition");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(AtomicUsize::new(2));
    let handler = {
        let (seen, failures) = (seen.clone(), failures.clone());
        Arc::new(move |d: Delivery| {
            let (seen, failures) = (seen.clone(), failures.clone());
            Dispatch::Handle(Box::pin(async move {
                let payload = String::from_utf8_lossy(&d.record.payload).into_owned();
                let fail = payload == "a0"
                    && failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if fail {
                    return Err(HandlerFailed("injected".into()));
                }
                seen.lock().unwrap().push(payload);
                Ok(())
            }))
        })
    };
    let mut sub = bus
        .subscribe(Subscription::new("g", vec![Topic::Applications], handler))
        .unwrap();

    // Act
    let records = (0..5)
        .map(|n| record("case-a", format!("a{n}")))
        .chain((0..5).map(|n| record(&other, format!("b{n}"))))
        .collect();
    bus.publish(records).await.unwrap();
    let mut all = Vec::new();
    for _ in 0..1500 {
        all = seen.lock().unwrap().clone();
        if all.iter().filter(|p| p.starts_with('a')).count() >= 5
            && all.iter().any(|p| p == "a0")
            && all.iter().filter(|p| p.starts_with('b')).count() >= 5
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sub.stopped().await;
    bus.flush().await;

    // Assert: after the rewind case-a's records all come again, in order from a0; the other
    // partition's all arrive once.
    let of = |prefix: char| -> Vec<String> {
        all.iter()
            .filter(|p| p.starts_with(prefix))
            .cloned()
            .collect()
    };
    let a = of('a');
    let since_a0 = &a[a.iter().position(|p| p == "a0").expect("a0 handled")..];
    assert_eq!(since_a0, ["a0", "a1", "a2", "a3", "a4"], "{all:?}");
    assert_eq!(of('b'), ["b0", "b1", "b2", "b3", "b4"], "{all:?}");
    assert_eq!(failures.load(Ordering::SeqCst), 0);
}
