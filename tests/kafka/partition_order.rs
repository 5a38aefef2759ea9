//! The partition strategy as a reader of the topics sees it: one case's records sit on one
//! partition of each topic, in causal order.

use crate::helpers::{settings, spawn_app, Broker};
use crate::raw::{read_topics, RawRecord};
use govfusion::bus::Topic;
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[actix_web::test]
async fn a_case_keeps_to_one_partition_per_topic_in_causal_order() {
    // Arrange: two collaborators, one at the district tier and one at the street tier.
    let app = spawn_app(settings(&Broker::Embedded)).await;
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;

    // Act: once the case is complete, every record it caused is on the bus.
    app.wait_until_completed(&case_id).await;
    let topics: Vec<String> = Topic::flow().into_iter().map(|t| app.topic(t)).collect();
    let records: Vec<RawRecord> = read_topics(app.kafka().brokers(), &topics)
        .await
        .into_iter()
        .filter(|r| r.key == case_id)
        .collect();

    // Assert: one partition per topic the case used (records come sorted by topic, partition,
    // offset); a plain case never touches `case.updates` or `supervision`.
    for topic in topics
        .iter()
        .filter(|t| records.iter().any(|r| &r.topic == *t))
    {
        let partitions: BTreeSet<i32> = records
            .iter()
            .filter(|r| &r.topic == topic)
            .map(|r| r.partition)
            .collect();
        assert_eq!(
            partitions.len(),
            1,
            "the case's records on {topic} should share one partition: {partitions:?}"
        );
    }
    // Assert: the approval is published before it is delivered.
    let approvals: Vec<&str> = of_topic(&records, &app.topic(Topic::Approvals))
        .into_iter()
        .map(|r| r.header("type").unwrap_or("<no type>"))
        .collect();
    assert_eq!(
        approvals,
        ["approval.published", "approval.delivered"],
        "approvals out of causal order"
    );
    // Assert: each event is dispatched down its route one centre after the other.
    let mut routes: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for record in of_topic(&records, &app.topic(Topic::CollaborationEvents)) {
        let event = record.json();
        let route = event["data"]["route"]
            .as_array()
            .unwrap_or_else(|| panic!("a dispatch without a route: {event}"))
            .iter()
            .map(|hop| hop["code"].as_str().unwrap_or_default().to_owned())
            .collect();
        let event_id = event["data"]["event_id"].as_str().unwrap_or_default();
        routes.entry(event_id.to_owned()).or_default().push(route);
    }
    assert_eq!(routes.len(), 2, "one event per collaborator: {routes:?}");
    for (event_id, dispatches) in &routes {
        let full = dispatches.last().cloned().unwrap_or_default();
        let prefixes: Vec<Vec<String>> = (1..=full.len()).map(|n| full[..n].to_vec()).collect();
        assert_eq!(
            dispatches, &prefixes,
            "event {event_id} should pass its centres in route order, top first"
        );
        assert_eq!(
            full.first().map(String::as_str),
            Some("500000"),
            "{event_id}"
        );
    }
    app.shutdown().await;
}

/// The records of one topic in offset order, each message once: at least once delivery allows a
/// resent record (same `id`), which consumers drop.
fn of_topic<'a>(records: &'a [RawRecord], topic: &str) -> Vec<&'a RawRecord> {
    let mut ids = HashSet::new();
    records
        .iter()
        .filter(|r| r.topic == topic && ids.insert(r.header("id").unwrap_or_default()))
        .collect()
}
