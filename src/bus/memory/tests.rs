//! The memory bus: partitions, groups, redelivery, compaction of the state topic.

use super::*;
use crate::bus::{Delivery, Dispatch, HandlerFailed, RecordHandler};
use bytes::Bytes;
use std::sync::atomic::AtomicUsize;

fn settings() -> BusSettings {
    BusSettings {
        kind: crate::settings::BusKind::Memory,
        topic_prefix: "t".into(),
        partitions: 3,
        consumer_max_in_flight: 8,
        redelivery_backoff_ms: 1,
        max_record_bytes: 1_000_000,
        flow_retention_hours: 168,
        memory_trim: false,
        memory_unread_bytes: 0,
        brokers: String::new(),
        kafka: Default::default(),
    }
}

fn record(key: &str, n: u32) -> Arc<Record> {
    Arc::new(Record {
        topic: Topic::Applications,
        key: key.into(),
        headers: vec![],
        payload: Bytes::from(n.to_string()),
    })
}

type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn collecting_handler(seen: Seen, fail_first: Arc<AtomicUsize>) -> RecordHandler {
    Arc::new(move |d: Delivery| {
        let seen = seen.clone();
        let fail_first = fail_first.clone();
        Dispatch::Handle(Box::pin(async move {
            if fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(HandlerFailed("injected".into()));
            }
            let payload = String::from_utf8(d.record.payload.to_vec()).unwrap();
            seen.lock().unwrap().push((d.record.key.clone(), payload));
            Ok(())
        }))
    })
}

async fn wait_for(seen: &Seen, n: usize) {
    for _ in 0..500 {
        if seen.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("only {} deliveries arrived", seen.lock().unwrap().len());
}

#[tokio::test]
async fn one_key_stays_on_one_partition_in_order_and_failed_handlers_redeliver() {
    let bus = MemoryBus::new(&settings());
    let seen: Seen = Arc::default();
    let _sub = bus
        .subscribe(Subscription::new(
            "g",
            vec![Topic::Applications],
            collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(2))),
        ))
        .unwrap();
    let records = (0..20).map(|n| record("case-a", n)).collect();
    bus.publish(records).await.unwrap();
    wait_for(&seen, 20).await;

    let seen = seen.lock().unwrap().clone();
    let order: Vec<_> = seen
        .iter()
        .map(|(_, p)| p.parse::<u32>().unwrap())
        .collect();
    // The first two handlings fail; the partition rewinds to the lowest unfinished record and hands
    // out everything from there again, in order.
    assert_eq!(
        order[order.len() - 20..].to_vec(),
        (0..20).collect::<Vec<_>>(),
        "after the rewind every record comes again in offset order: {order:?}"
    );
    let partition = partition_for("case-a", 3);
    assert_eq!(bus.records(Topic::Applications, partition).len(), 20);
    assert_eq!(
        bus.committed_offset("g", Topic::Applications, partition),
        20
    );
}

#[tokio::test]
async fn a_restarted_group_resumes_from_its_committed_offset() {
    let bus = MemoryBus::new(&settings());
    let seen: Seen = Arc::default();
    let sub = bus
        .subscribe(Subscription::new(
            "g",
            vec![Topic::Applications],
            collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(0))),
        ))
        .unwrap();
    bus.publish(vec![record("k", 1)]).await.unwrap();
    wait_for(&seen, 1).await;
    drop(sub);
    tokio::time::sleep(Duration::from_millis(10)).await;
    bus.publish(vec![record("k", 2)]).await.unwrap();

    let again: Seen = Arc::default();
    let _sub = bus
        .subscribe(Subscription::new(
            "g",
            vec![Topic::Applications],
            collecting_handler(again.clone(), Arc::new(AtomicUsize::new(0))),
        ))
        .unwrap();
    wait_for(&again, 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        *again.lock().unwrap(),
        vec![("k".to_owned(), "2".to_owned())]
    );
}

#[tokio::test]
async fn a_failing_partition_pauses_alone_and_the_others_keep_flowing() {
    // Arrange: a backoff far longer than the test, a handler that always fails case-a's
    // first record, and case-a and case-b on different partitions.
    let bus = MemoryBus::new(&BusSettings {
        redelivery_backoff_ms: 60_000,
        ..settings()
    });
    let (a, b) = (partition_for("case-a", 3), partition_for("case-b", 3));
    assert_ne!(a, b, "the test needs two partitions");
    let attempts_on_a = Arc::new(AtomicUsize::new(0));
    let seen: Seen = Arc::default();
    let handler: RecordHandler = {
        let (seen, attempts_on_a) = (seen.clone(), attempts_on_a.clone());
        Arc::new(move |d: Delivery| {
            let (seen, attempts_on_a) = (seen.clone(), attempts_on_a.clone());
            Dispatch::Handle(Box::pin(async move {
                if d.record.key == "case-a" && d.offset == 0 {
                    attempts_on_a.fetch_add(1, Ordering::SeqCst);
                    return Err(HandlerFailed("injected".into()));
                }
                let payload = String::from_utf8(d.record.payload.to_vec()).unwrap();
                seen.lock().unwrap().push((d.record.key.clone(), payload));
                Ok(())
            }))
        })
    };
    let _sub = bus
        .subscribe(Subscription::new("g", vec![Topic::Applications], handler))
        .unwrap();

    // Act: case-a's record fails first, then case-b's records arrive.
    bus.publish(vec![record("case-a", 0)]).await.unwrap();
    for _ in 0..500 {
        if attempts_on_a.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bus.publish((0..10).map(|n| record("case-b", n)).collect())
        .await
        .unwrap();
    wait_for(&seen, 10).await;

    // Assert: case-b's partition was handled and committed while case-a's waits out its
    // backoff, its failed record not yet tried again and nothing committed past it.
    let of_b: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(of_b, (0..10).map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(bus.committed_offset("g", Topic::Applications, b), 10);
    assert_eq!(bus.committed_offset("g", Topic::Applications, a), 0);
    assert_eq!(attempts_on_a.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_reader_of_the_state_topic_sees_only_the_latest_record_of_each_key() {
    // Arrange: three snapshots, the first superseded by the third; one partition.
    let bus = MemoryBus::durable(&BusSettings {
        partitions: 1,
        ..settings()
    });
    let snapshot = |key: &str, n: u32| {
        Arc::new(Record {
            topic: Topic::State,
            ..(*record(key, n)).clone()
        })
    };
    bus.publish(vec![snapshot("a", 1), snapshot("b", 1), snapshot("a", 2)])
        .await
        .unwrap();

    // Act
    let seen: Seen = Arc::default();
    let _sub = bus
        .subscribe(Subscription::new(
            "g",
            vec![Topic::State],
            collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(0))),
        ))
        .unwrap();
    wait_for(&seen, 2).await;
    for _ in 0..500 {
        if bus.committed_offset("g", Topic::State, 0) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Assert: the superseded record is skipped (and committed past), the log keeps it.
    assert!(bus.outlives_process() && !MemoryBus::new(&settings()).outlives_process());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned())
        ]
    );
    assert_eq!(bus.all_records(Topic::State).len(), 3);
    assert_eq!(bus.committed_offset("g", Topic::State, 0), 3);
}

#[tokio::test]
async fn injected_publish_failures_write_nothing() {
    let bus = MemoryBus::new(&settings());
    bus.fail_next_publishes(1);
    assert!(bus.publish(vec![record("k", 1)]).await.is_err());
    bus.publish(vec![record("k", 2)]).await.unwrap();
    let all = bus.all_records(Topic::Applications);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.payload, Bytes::from("2"));
}

/// Waits until a partition of `topic` holds records from `offset` on.
async fn wait_first_offset(bus: &MemoryBus, topic: Topic, offset: u64) {
    for _ in 0..1_000 {
        if bus.first_offset(topic, 0) == offset {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the partition holds records from {} on, not {offset}",
        bus.first_offset(topic, 0)
    );
}

#[tokio::test]
async fn a_trimming_bus_drops_only_what_every_group_reading_the_topic_committed_past() {
    // Arrange: one partition read by two groups; the second handles records 0 to 4 and holds
    // the rest until released.
    let bus = MemoryBus::new(&BusSettings {
        partitions: 1,
        memory_trim: true,
        ..settings()
    });
    let fast: Seen = Arc::default();
    let _fast = bus
        .subscribe(Subscription::new(
            "fast",
            vec![Topic::Applications],
            collecting_handler(fast.clone(), Arc::new(AtomicUsize::new(0))),
        ))
        .unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow: Seen = Arc::default();
    let held = gate.clone();
    let slow_seen = slow.clone();
    let _slow = bus
        .subscribe(Subscription::new(
            "slow",
            vec![Topic::Applications],
            Arc::new(move |d: Delivery| {
                let (held, seen) = (held.clone(), slow_seen.clone());
                Dispatch::Handle(Box::pin(async move {
                    let n: u32 = String::from_utf8(d.record.payload.to_vec())
                        .unwrap()
                        .parse()
                        .unwrap();
                    if n >= 5 {
                        held.acquire().await.unwrap().forget();
                    }
                    seen.lock()
                        .unwrap()
                        .push((d.record.key.clone(), n.to_string()));
                    Ok(())
                }))
            }),
        ))
        .unwrap();

    // Act: ten records; the slow group stops after five of them.
    bus.publish((0..10).map(|n| record("case-a", n)).collect())
        .await
        .unwrap();
    wait_for(&fast, 10).await;
    wait_for(&slow, 5).await;

    // Assert: the five both groups committed past are dropped, the rest kept.
    wait_first_offset(&bus, Topic::Applications, 5).await;
    assert_eq!(bus.records(Topic::Applications, 0).len(), 5);

    // Act: the slow group handles the rest, and two more records come.
    gate.add_permits(1_000);
    wait_for(&slow, 10).await;
    wait_first_offset(&bus, Topic::Applications, 10).await;
    bus.publish(vec![record("case-a", 10), record("case-a", 11)])
        .await
        .unwrap();

    // Assert: both groups get the new records, at offsets that go on from the dropped ones.
    wait_for(&fast, 12).await;
    wait_for(&slow, 12).await;
    for group in [&fast, &slow] {
        let seen = group.lock().unwrap().clone();
        let last: Vec<&str> = seen[10..].iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(last, vec!["10", "11"]);
    }
    wait_first_offset(&bus, Topic::Applications, 12).await;
    assert_eq!(
        bus.end_offsets(vec![Topic::Applications]).await.unwrap()[&(Topic::Applications, 0)],
        12
    );
}

#[tokio::test]
async fn a_topic_no_group_reads_keeps_only_its_newest_records_up_to_the_byte_limit() {
    // Arrange: a trimming bus whose unread partitions keep 40 bytes; each record takes 10
    // (a 6-byte key and a 4-byte payload). The applications topic has a group that holds
    // every record it is given.
    let bus = MemoryBus::new(&BusSettings {
        partitions: 1,
        memory_trim: true,
        memory_unread_bytes: 40,
        ..settings()
    });
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let _reader = bus
        .subscribe(Subscription::new(
            "holding",
            vec![Topic::Applications],
            Arc::new(move |_: Delivery| {
                let held = held.clone();
                Dispatch::Handle(Box::pin(async move {
                    held.acquire().await.unwrap().forget();
                    Ok(())
                }))
            }),
        ))
        .unwrap();
    let sized = |topic: Topic, n: u32| {
        Arc::new(Record {
            topic,
            key: "writer".into(),
            headers: vec![],
            payload: Bytes::from(format!("{n:04}")),
        })
    };

    // Act: ten records to each topic.
    for topic in [Topic::Audit, Topic::Applications] {
        let records = (0..10).map(|n| sized(topic, n)).collect();
        bus.publish(records).await.unwrap();
    }

    // Assert: the audit topic holds its newest four, at the offsets they were given; the read
    // topic holds all ten until its group commits past them.
    let payloads = |topic| -> Vec<String> {
        let records = bus.records(topic, 0);
        records
            .iter()
            .map(|r| String::from_utf8(r.payload.to_vec()).unwrap())
            .collect()
    };
    assert_eq!(payloads(Topic::Audit), ["0006", "0007", "0008", "0009"]);
    assert_eq!(bus.first_offset(Topic::Audit, 0), 6);
    let ends = bus.end_offsets(vec![Topic::Audit]).await.unwrap();
    assert_eq!(ends[&(Topic::Audit, 0)], 10);
    assert_eq!(payloads(Topic::Applications).len(), 10);
    gate.add_permits(1_000);
}

#[tokio::test]
async fn without_a_byte_limit_a_topic_no_group_reads_keeps_every_record() {
    let bus = MemoryBus::new(&BusSettings {
        partitions: 1,
        memory_trim: true,
        ..settings()
    });
    let letter = || {
        Arc::new(Record {
            topic: Topic::DeadLetters,
            key: "k".into(),
            headers: vec![],
            payload: Bytes::from(vec![b'x'; 1000]),
        })
    };
    let records = (0..100).map(|_| letter()).collect();
    bus.publish(records).await.unwrap();
    assert_eq!(bus.records(Topic::DeadLetters, 0).len(), 100);
}

#[tokio::test]
async fn a_durable_bus_keeps_every_record_even_with_trimming_on() {
    // Arrange
    let bus = MemoryBus::durable(&BusSettings {
        partitions: 1,
        memory_trim: true,
        ..settings()
    });
    let seen: Seen = Arc::default();
    let _sub = bus
        .subscribe(Subscription::new(
            "g",
            vec![Topic::Applications],
            collecting_handler(seen.clone(), Arc::new(AtomicUsize::new(0))),
        ))
        .unwrap();

    // Act
    bus.publish((0..4).map(|n| record("case-a", n)).collect())
        .await
        .unwrap();
    wait_for(&seen, 4).await;
    for _ in 0..200 {
        if bus.committed_offset("g", Topic::Applications, 0) == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two report ticks of the consumer, when a trimming bus would drop them.
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    // Assert
    assert_eq!(bus.committed_offset("g", Topic::Applications, 0), 4);
    assert_eq!(bus.first_offset(Topic::Applications, 0), 0);
    assert_eq!(bus.records(Topic::Applications, 0).len(), 4);
}
