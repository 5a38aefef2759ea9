//! The Kafka suite's own part of the harness (the rest is in `tests/common`): a service whose
//! bus is Kafka — the embedded mock cluster or the broker of `GOVFUSION_TEST_KAFKA` — and what
//! the topics show of it.

pub use crate::common::app::{json_body, step_names, TestApp};
use crate::common::env::{self, KAFKA_ENV};
use crate::common::once::assert_one_message_per_cause;
pub use crate::common::poll;
use crate::raw::read_topics;
use govfusion::bus::embedded::EmbeddedCluster;
use govfusion::bus::kafka::KafkaBus;
use govfusion::bus::Topic;
use govfusion::clock::SystemClock;
use govfusion::settings::{BusKind, Settings};
use serde_json::Value;
use std::sync::Arc;

/// Which Kafka the service runs on.
#[derive(Debug, Clone)]
pub enum Broker {
    /// librdkafka's mock cluster, started inside the service.
    Embedded,
    /// A real broker at this address.
    Real(String),
}

impl Broker {
    /// The broker of [`KAFKA_ENV`]; panics, saying what to set, when it is unset. For tests
    /// marked `#[ignore = "needs GOVFUSION_TEST_KAFKA …"]`.
    pub fn real() -> Self {
        Broker::Real(env::require(KAFKA_ENV))
    }

    /// The broker of [`KAFKA_ENV`] if set, else the embedded cluster.
    pub fn real_or_embedded() -> Self {
        env::optional(KAFKA_ENV).map_or(Broker::Embedded, Broker::Real)
    }
}

/// The default configuration on `broker`, with topics of their own and quick recovery.
pub fn settings(broker: &Broker) -> Settings {
    let mut settings = crate::common::app::test_settings();
    match broker {
        Broker::Embedded => settings.bus.kind = BusKind::Embedded,
        Broker::Real(address) => {
            settings.bus.kind = BusKind::Kafka;
            settings.bus.brokers = address.clone();
        }
    }
    settings
}

/// Starts the service with `settings`; waits up to a minute for its groups to join.
pub async fn spawn_app(settings: Settings) -> TestApp {
    let ready_within = std::time::Duration::from_secs(60);
    TestApp::start(settings, Arc::new(SystemClock), ready_within).await
}

impl TestApp {
    /// Stops the service the way it stops itself: consumers finish, commit and close, and the
    /// producer flushes — while the Kafka cluster is still up. Without it, the test's runtime
    /// would drop the consumers in arbitrary order with the cluster, and librdkafka's close
    /// blocks the thread.
    pub async fn shutdown(self) {
        self.systems.shutdown().await;
    }

    /// The Kafka bus the systems run on.
    pub fn kafka(&self) -> &KafkaBus {
        self.systems
            .kafka_bus
            .as_ref()
            .expect("the test configuration runs on Kafka")
    }

    /// The embedded mock cluster, for fault injection.
    pub fn embedded(&self) -> &EmbeddedCluster {
        self.kafka()
            .embedded()
            .expect("the test configuration runs on the embedded cluster")
    }

    /// The full name of `topic`.
    pub fn topic(&self, topic: Topic) -> String {
        self.kafka().topic_name(topic).to_owned()
    }

    /// Asserts what "exactly once" means for completed cases: the applicant saw each approval
    /// delivered once, and on the bus each case has one acceptance, one approval and one
    /// delivery — one message id each, however often a record was resent.
    pub async fn assert_completed_once(&self, cases: &[Value]) {
        for case in cases {
            let steps = step_names(&case["history"]);
            let delivered = steps.iter().filter(|s| *s == "approval.delivered").count();
            assert_eq!(
                delivered, 1,
                "approval.delivered {delivered} times in the history: {steps:?}"
            );
        }
        let topics = [self.topic(Topic::Acceptances), self.topic(Topic::Approvals)];
        let records = read_topics(self.kafka().brokers(), &topics).await;
        let case_ids: Vec<String> = cases
            .iter()
            .map(|c| c["case_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_one_message_per_cause(
            &case_ids,
            &[
                "application.accepted",
                "approval.published",
                "approval.delivered",
            ],
            records.iter().map(|r| r.sent()),
        );
    }
}
