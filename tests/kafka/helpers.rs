//! The harness: a real service on `127.0.0.1:0` whose bus is Kafka (the embedded mock cluster or
//! the broker of `GOVFUSION_TEST_KAFKA`), and the requests its users make.

use govfusion::app::Application;
use govfusion::bus::embedded::EmbeddedCluster;
use govfusion::bus::kafka::KafkaBus;
use govfusion::bus::Topic;
use govfusion::settings::{BusKind, Settings, DEFAULT_CONFIG};
use govfusion::systems::Systems;
use serde_json::{json, Value};
use std::future::Future;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// The environment variable naming a real broker, e.g. `127.0.0.1:9092`.
pub const KAFKA_ENV: &str = "GOVFUSION_TEST_KAFKA";

/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long a wait looks before the test fails. A bound on waiting, not a performance claim:
/// generous, because a client that lost its broker reconnects with a backoff of up to 10 s.
pub const POLL_FOR: Duration = Duration::from_secs(40);

/// The terminal tests submit from.
pub const TERMINAL: &str = "pc-web";

/// The case statuses, in the only order a case moves through them.
const STATUS_ORDER: [&str; 6] = [
    "submitted",
    "published",
    "accepted",
    "collaborating",
    "decided",
    "completed",
];

/// Which Kafka the service runs on.
#[derive(Debug, Clone)]
pub enum Broker {
    /// librdkafka's mock cluster, started inside the service.
    Embedded,
    /// A real broker at this address.
    Real(String),
}

impl Broker {
    /// The broker of [`KAFKA_ENV`]; when it is unset, prints a visible `SKIPPED` line naming
    /// `test` and gives `None`.
    pub fn real_or_skip(test: &str) -> Option<Self> {
        let broker = Self::real();
        if broker.is_none() {
            // Straight to stderr: the test harness captures `eprintln!` of passing tests, and
            // this line must be seen in a plain `cargo test`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: set {KAFKA_ENV}=host:port to run {test} against a real broker"
            );
        }
        broker
    }

    /// The broker of [`KAFKA_ENV`] if set, else the embedded cluster.
    pub fn real_or_embedded() -> Self {
        Self::real().unwrap_or(Broker::Embedded)
    }

    fn real() -> Option<Self> {
        std::env::var(KAFKA_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(Broker::Real)
    }
}

/// The default configuration on `broker`, with topics of their own and quick recovery.
pub fn settings(broker: &Broker) -> Settings {
    init_tracing();
    let mut settings = Settings::from_toml(DEFAULT_CONFIG, "test", false)
        .expect("Failed to load the default configuration");
    settings.http.bind = "127.0.0.1:0".into();
    match broker {
        Broker::Embedded => settings.bus.kind = BusKind::Embedded,
        Broker::Real(address) => {
            settings.bus.kind = BusKind::Kafka;
            settings.bus.brokers = address.clone();
        }
    }
    // A prefix of its own: tests sharing a broker never see each other's records or groups.
    settings.bus.topic_prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    // Short sessions make group joins (and rejoins after a fault) quick on a real broker.
    settings.bus.kafka.session_timeout_ms = 1000;
    settings.bus.kafka.heartbeat_interval_ms = 100;
    settings.bus.redelivery_backoff_ms = 5;
    settings.bridge.retry_initial_backoff_ms = 5;
    settings
}

/// Logs to the test output when `RUST_LOG` asks for it.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A running service and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The running systems, for fault injection and bus inspection.
    pub systems: Systems,
    /// An HTTP client.
    pub client: reqwest::Client,
}

/// Starts the service with `settings`.
pub async fn spawn_app(settings: Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("Failed to build the application");
    let systems = app.systems().clone();
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    systems
        .ready(std::time::Duration::from_secs(60))
        .await
        .expect("the service did not become ready");
    TestApp {
        address,
        systems,
        client: reqwest::Client::new(),
    }
}

/// Calls `probe` every [`POLL_EVERY`] until it gives `Ok`; panics with `what` and the last
/// `Err` (a description of what was seen) after [`POLL_FOR`].
pub async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + POLL_FOR;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("gave up after {POLL_FOR:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => actix_web::rt::time::sleep(POLL_EVERY).await,
        }
    }
}

/// The body of a response, as JSON; panics with the text when it is not JSON.
pub async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("Failed to read the body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
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

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("Failed to execute request")
    }

    /// `GET path`, asserting 200, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("Failed to execute request");
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    /// Submits an application at [`TERMINAL`], asserting 202; returns the case id.
    pub async fn submit_ok(&self, body: &Value) -> String {
        let path = format!("/api/v1/terminals/{TERMINAL}/applications");
        let response = self.post_json(&path, body).await;
        let status = response.status();
        let answer = json_body(response).await;
        assert_eq!(status, 202, "submission refused: {answer}");
        answer["case_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no case_id in {answer}"))
            .to_owned()
    }

    /// The applicant's view of a case, asserting 200.
    pub async fn get_case(&self, case_id: &str) -> Value {
        self.get_json(&format!("/api/v1/cases/{case_id}")).await
    }

    /// Polls the case until it is `completed`; returns it.
    pub async fn wait_until_completed(&self, case_id: &str) -> Value {
        self.wait_for_status(case_id, "completed").await
    }

    /// Polls the case until its status is `status` or a later one; returns it.
    pub async fn wait_for_status(&self, case_id: &str, status: &str) -> Value {
        let rank = |s: &str| STATUS_ORDER.iter().position(|known| *known == s);
        let wanted = rank(status).unwrap_or_else(|| panic!("`{status}` is not a case status"));
        poll(&format!("case {case_id} to be {status}"), || async {
            let case = self.get_case(case_id).await;
            match case["status"].as_str().and_then(rank) {
                Some(now) if now >= wanted => Ok(case),
                _ => Err(case.to_string()),
            }
        })
        .await
    }

    /// Polls a department's inbox until it lists the case.
    pub async fn wait_for_inbox_case(&self, department: &str, case_id: &str) {
        let path = format!("/api/v1/departments/{department}/inbox");
        poll(
            &format!("case {case_id} in the inbox of {department}"),
            || async {
                let inbox = self.get_json(&path).await;
                let listed = inbox["cases"].as_array().is_some_and(|cases| {
                    cases.iter().any(|c| c["application"]["case_id"] == case_id)
                });
                if listed {
                    Ok(())
                } else {
                    Err(inbox.to_string())
                }
            },
        )
        .await
    }

    /// A complete application for `matter` (every required material) in 渝中区 / 解放碑街道.
    pub fn application_body(&self, matter: &str) -> Value {
        self.application_body_in(matter, "500103", "500103001")
    }

    /// A complete application for `matter` in the given district and street.
    pub fn application_body_in(&self, matter: &str, district: &str, street: &str) -> Value {
        let materials = &self
            .systems
            .catalog
            .matter(matter)
            .unwrap_or_else(|e| panic!("test fixture: {e}"))
            .required_materials;
        json!({
            "matter_code": matter,
            "applicant": { "name": "张三", "id_number": "500103199001011234", "phone": "13800000000" },
            "region": { "district": district, "street": street },
            "materials": materials,
            "form": { "note": "kafka integration test" }
        })
    }
}

/// The `step` names of a case's history (or an approval's steps), in order.
pub fn step_names(steps: &Value) -> Vec<String> {
    steps
        .as_array()
        .unwrap_or_else(|| panic!("not a list of steps: {steps}"))
        .iter()
        .map(|s| s["step"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The reasons of a case's approval outcome, joined into one text.
pub fn reasons(case: &Value) -> String {
    case["approval"]["outcome"]["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("case has no approval reasons: {case}"))
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Asserts that a completed case was delivered once and holds no message twice in its history.
pub fn assert_completed_once(case: &Value) {
    let history = case["history"]
        .as_array()
        .unwrap_or_else(|| panic!("case without history: {case}"));
    let mut ids: Vec<&str> = history
        .iter()
        .map(|h| h["message_id"].as_str().unwrap_or_default())
        .collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        total,
        "a message twice in the history of case {}: {history:?}",
        case["case_id"]
    );
    let steps = step_names(&case["history"]);
    let delivered = steps.iter().filter(|s| *s == "approval.delivered").count();
    assert_eq!(
        delivered, 1,
        "approval.delivered {delivered} times in the history: {steps:?}"
    );
}
