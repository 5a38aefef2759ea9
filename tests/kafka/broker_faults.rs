//! Faults of the embedded cluster's broker: produce requests failing for a while, and every
//! broker going down and coming back. Cases still complete, each exactly once in effect.

use crate::helpers::{settings, spawn_app, Broker, TestApp};
use govfusion::bus::embedded::MockFault;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::time::Duration;

/// Matters of the cases each test submits: plain, one collaborator, two collaborators.
const MATTERS: [&str; 4] = [
    "individual_business_registration",
    "residence_permit",
    "restaurant_opening",
    "restaurant_opening",
];

/// Submits one case per matter of [`MATTERS`]; returns the case ids.
async fn submit_cases(app: &TestApp) -> Vec<String> {
    let mut cases = Vec::new();
    for matter in MATTERS {
        cases.push(app.submit_ok(&app.application_body(matter)).await);
    }
    cases
}

#[actix_web::test]
async fn failing_produce_requests_are_retried_without_losing_or_repeating_a_case() {
    // Arrange: the next produce requests fail with an error a broker gives while replicas lag.
    let app = spawn_app(settings(&Broker::Embedded)).await;
    let errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 5];
    app.embedded()
        .inject(MockFault::RequestErrors(RDKafkaApiKey::Produce, errors))
        .expect("the mock cluster takes the fault");

    // Act
    let cases = submit_cases(&app).await;
    let mut completed = Vec::new();
    for case_id in &cases {
        completed.push(app.wait_until_completed(case_id).await);
    }

    // Assert: the applicant saw each case delivered once; on the bus, one acceptance and one
    // approval per case (a resent record has the same `id`).
    app.assert_completed_once(&completed).await;
    app.shutdown().await;
}

#[actix_web::test]
async fn cases_submitted_while_the_brokers_are_down_complete_once_they_are_back() {
    // Arrange
    let app = spawn_app(settings(&Broker::Embedded)).await;
    app.embedded()
        .inject(MockFault::BrokersDown)
        .expect("the mock cluster takes the fault");

    // Act: the intake system keeps taking applications while the bus is unreachable.
    let cases = submit_cases(&app).await;
    // The outage itself is the scenario, not a wait for something: the brokers stay down
    // longer than the consumers' session timeout, so the groups must rejoin after it.
    let session = app.systems.settings.bus.kafka.session_timeout_ms;
    actix_web::rt::time::sleep(Duration::from_millis(2 * session)).await;
    for case_id in &cases {
        let case = app.get_case(case_id).await;
        assert_eq!(
            case["status"], "submitted",
            "nothing can reach the bus while the brokers are down: {case}"
        );
    }
    app.embedded()
        .inject(MockFault::BrokersUp)
        .expect("the mock cluster takes the fault");

    // Assert
    let mut completed = Vec::new();
    for case_id in &cases {
        completed.push(app.wait_until_completed(case_id).await);
    }
    app.assert_completed_once(&completed).await;
    app.shutdown().await;
}
