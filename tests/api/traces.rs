//! Traces across systems, as the bus shows them: every record govfusion writes about a case
//! carries a W3C `traceparent` naming the case's trace (the intake system's trace id), with a
//! span id of its own for each hop; a record of an outside system without one is handled all
//! the same, and what govfusion writes in answer stays in the case's trace.

use crate::bus_faults::{dispatched_to, outside_answer, publish_raw, records_of};
use crate::common::app::DISTRICT;
use crate::helpers::{spawn_app, spawn_app_with};
use govfusion::bus::trace::TraceParent;
use govfusion::bus::{Record, Topic};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// Every record keyed by `case_id` on the flow topics.
fn flow_records(app: &crate::helpers::TestApp, case_id: &str) -> Vec<Arc<Record>> {
    Topic::flow()
        .into_iter()
        .flat_map(|topic| records_of(app, topic, case_id))
        .map(|(_, record)| record)
        .collect()
}

/// The envelope of a record.
fn envelope(record: &Record) -> Value {
    serde_json::from_slice(&record.payload).expect("a record of the flow is an envelope")
}

/// The `traceparent` of a record govfusion wrote, read as W3C Trace Context.
fn traceparent(record: &Record) -> TraceParent {
    let kind = record.header("type").unwrap_or_default();
    let value = record
        .header("traceparent")
        .unwrap_or_else(|| panic!("a `{kind}` record without traceparent"));
    TraceParent::parse(value).unwrap_or_else(|| panic!("`{value}` on `{kind}` is not W3C"))
}

#[actix_web::test]
async fn every_record_of_a_case_names_the_case_trace_with_a_span_of_its_own() {
    // Arrange
    let app = spawn_app().await;
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;

    // Act: the case goes through intake, the centres, three departments and back
    app.wait_until_completed(&case_id).await;

    // Assert
    let records = flow_records(&app, &case_id);
    let published = records
        .iter()
        .find(|r| r.header("type") == Some("application.published"))
        .expect("the application was published");
    let trace_id = envelope(published)["trace_id"]
        .as_str()
        .expect("an envelope has a trace id")
        .to_owned();
    assert_eq!(trace_id, case_id, "a case's trace is found by its id");
    let kinds: HashSet<&str> = records.iter().filter_map(|r| r.header("type")).collect();
    for kind in [
        "application.published",
        "application.accepted",
        "collaboration.requested",
        "collaboration.dispatched",
        "collaboration.answered",
        "collaboration.completed",
        "approval.published",
        "approval.delivered",
    ] {
        assert!(kinds.contains(kind), "no `{kind}` record among {kinds:?}");
    }
    let mut span_ids = HashSet::new();
    for record in &records {
        let parent = traceparent(record);
        assert_eq!(parent.trace_id, trace_id, "{:?}", record.headers);
        assert_eq!(envelope(record)["trace_id"], trace_id.as_str());
        assert!(parent.sampled);
        assert!(
            span_ids.insert(parent.parent_id.clone()),
            "span id {} on two records",
            parent.parent_id
        );
    }
}

#[actix_web::test]
async fn an_outside_record_without_traceparent_is_handled_and_the_answers_keep_the_case_trace() {
    // Arrange: the fire brigade is an outside system, with an event dispatched to it
    let app = spawn_app_with(|settings| {
        for department in &mut settings.departments {
            department.external |= department.code == "fire";
        }
    })
    .await;
    let case_id = app
        .submit_ok(&app.application_body("food_business_licence"))
        .await;
    let event = dispatched_to(&app, &case_id, "fire").await;
    let answer = outside_answer(&event, DISTRICT);
    assert_eq!(
        answer.header("traceparent"),
        None,
        "the outside answer has none"
    );

    // Act
    publish_raw(&app, vec![answer]).await;

    // Assert: it was read and the case went on to its decision …
    app.wait_until_decided(&case_id, "approved").await;
    // … and what govfusion wrote in answer is in the case's trace
    let trace_id = event["trace_id"].as_str().expect("a trace id");
    let after: Vec<_> = flow_records(&app, &case_id)
        .into_iter()
        .filter(|r| {
            matches!(
                r.header("type"),
                Some("collaboration.completed" | "approval.published")
            )
        })
        .collect();
    assert!(after.len() >= 2, "the answer's consequences are on the bus");
    for record in after {
        assert_eq!(traceparent(&record).trace_id, trace_id);
    }
}
