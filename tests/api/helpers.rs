//! The harness: a real service on `127.0.0.1:0`, and the requests its users make.

use govfusion::app::Application;
use govfusion::bus::memory::MemoryBus;
use govfusion::clock::{SharedClock, SystemClock};
use govfusion::settings::{Settings, DEFAULT_CONFIG};
use govfusion::systems::Systems;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// How long a wait looks before the test fails. A bound on waiting, not a performance claim.
const POLL_FOR: Duration = Duration::from_secs(10);

/// The terminal tests submit from unless they say otherwise.
pub const TERMINAL: &str = "pc-web";
/// The region of an application unless a test says otherwise: 渝中区 / 解放碑街道.
pub const DISTRICT: &str = "500103";
/// See [`DISTRICT`].
pub const STREET: &str = "500103001";

/// The case statuses, in the only order a case moves through them.
const STATUS_ORDER: [&str; 7] = [
    "submitted",
    "published",
    "accepted",
    "suspended",
    "collaborating",
    "decided",
    "completed",
];

/// A running service and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The running systems, for fault injection and bus inspection.
    pub systems: Systems,
    /// An HTTP client.
    pub client: reqwest::Client,
}

/// Starts the service with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Picks the bus from `GOVFUSION_TEST_BUS`: `memory` (the default: the bus-fault tests inject
/// faults into it), `embedded`, or `kafka` at `GOVFUSION_TEST_KAFKA`. CI runs the flow and
/// bad-input tests, unchanged, on all three.
fn use_test_bus(settings: &mut Settings) {
    use govfusion::settings::BusKind;
    settings.bus.kind = match std::env::var("GOVFUSION_TEST_BUS").as_deref() {
        Ok("embedded") => BusKind::Embedded,
        Ok("kafka") => {
            settings.bus.brokers = std::env::var("GOVFUSION_TEST_KAFKA")
                .expect("GOVFUSION_TEST_BUS=kafka needs GOVFUSION_TEST_KAFKA=host:port");
            BusKind::Kafka
        }
        Ok("memory") | Err(_) => BusKind::Memory,
        Ok(other) => panic!("GOVFUSION_TEST_BUS={other}: expected memory, embedded or kafka"),
    };
    // Tests sharing one broker never see each other's records, and groups join fast.
    settings.bus.topic_prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    settings.bus.kafka.session_timeout_ms = 1000;
    settings.bus.kafka.heartbeat_interval_ms = 100;
    settings.bus.kafka.fetch_wait_max_ms = 10;
}

/// Starts the service with the default configuration changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(Arc::new(SystemClock), tweak).await
}

/// Starts the service with every system reading the time from `clock` (a
/// [`ManualClock`](govfusion::clock::ManualClock) lets a test reach deadlines), and the
/// configuration changed by `tweak`. Deadlines are checked every 20 ms.
pub async fn spawn_app_with_clock(
    clock: SharedClock,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::from_toml(DEFAULT_CONFIG, "test", false)
        .expect("Failed to load the default configuration");
    settings.http.bind = "127.0.0.1:0".into();
    use_test_bus(&mut settings);
    // Faults are injected on purpose: recover from them quickly.
    settings.bus.redelivery_backoff_ms = 5;
    settings.bridge.retry_initial_backoff_ms = 1;
    settings.supervision.check_interval_ms = 20;
    tweak(&mut settings);
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("Failed to build the application");
    let systems = app.systems().clone();
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    systems
        .ready(POLL_FOR)
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
    /// The in-memory bus the systems run on.
    pub fn memory_bus(&self) -> &MemoryBus {
        self.systems
            .memory_bus
            .as_ref()
            .expect("the test configuration runs on the memory bus")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("Failed to execute request")
    }

    /// `GET path`, asserting 200, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("Failed to execute request")
    }

    /// `POST path` with `body` sent as is, labelled `application/json`.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("Failed to execute request")
    }

    /// Submits an application at a terminal.
    pub async fn submit(&self, terminal: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/api/v1/terminals/{terminal}/applications"), body)
            .await
    }

    /// Submits an application at [`TERMINAL`], asserting 202; returns the case id.
    pub async fn submit_ok(&self, body: &Value) -> String {
        let response = self.submit(TERMINAL, body).await;
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
        poll(
            &format!("case {case_id} to be {status}"),
            move || async move {
                let case = self.get_case(case_id).await;
                match case["status"].as_str().and_then(rank) {
                    Some(now) if now >= wanted => Ok(case),
                    _ => Err(case.to_string()),
                }
            },
        )
        .await
    }

    /// Polls a department's inbox until it lists the case; returns the inbox.
    pub async fn wait_for_inbox_case(&self, department: &str, case_id: &str) -> Value {
        let path = format!("/api/v1/departments/{department}/inbox");
        poll(
            &format!("case {case_id} in the inbox of {department}"),
            || async {
                let inbox = self.get_json(&path).await;
                if inbox_lists_case(&inbox, case_id) {
                    Ok(inbox)
                } else {
                    Err(inbox.to_string())
                }
            },
        )
        .await
    }

    /// Polls a department's inbox until a collaboration event of the case waits there; returns
    /// the event.
    pub async fn wait_for_collaboration(&self, department: &str, case_id: &str) -> Value {
        let path = format!("/api/v1/departments/{department}/inbox");
        poll(
            &format!("a collaboration event of case {case_id} at {department}"),
            || async {
                let inbox = self.get_json(&path).await;
                let event = inbox["collaborations"]
                    .as_array()
                    .and_then(|events| events.iter().find(|e| e["case_id"] == case_id));
                event.cloned().ok_or_else(|| inbox.to_string())
            },
        )
        .await
    }

    /// A complete application for `matter`: every required material, in [`DISTRICT`] /
    /// [`STREET`].
    pub fn application_body(&self, matter: &str) -> Value {
        self.application_body_in(matter, DISTRICT, STREET)
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
            "form": { "note": "integration test" }
        })
    }
}

/// Whether a department inbox lists the case among those waiting for a decision.
pub fn inbox_lists_case(inbox: &Value, case_id: &str) -> bool {
    inbox["cases"]
        .as_array()
        .is_some_and(|cases| cases.iter().any(|c| c["application"]["case_id"] == case_id))
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

// Deadlines, the event lifecycle and supervision: a service on a clock the test moves.

/// An instant written with its offset, e.g. `at("2026-12-01T09:00:00+08:00")` (Beijing time,
/// the city's local time in the default configuration).
pub fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("test fixture: `{rfc3339}` is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc)
}

/// A timestamp of a response.
pub fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

/// Starts the service on a [`ManualClock`](govfusion::clock::ManualClock) showing `start`
/// (see [`at`]), with the default configuration changed by `tweak`; returns it with the clock.
pub async fn spawn_app_at(
    start: &str,
    tweak: impl FnOnce(&mut Settings),
) -> (TestApp, Arc<govfusion::clock::ManualClock>) {
    let clock = govfusion::clock::ManualClock::new(at(start));
    let app = spawn_app_with_clock(clock.clone(), tweak).await;
    (app, clock)
}

/// Makes `department` decide by hand: its cases and collaboration events wait for staff.
pub fn make_manual(settings: &mut Settings, department: &str) {
    settings
        .departments
        .iter_mut()
        .find(|d| d.code == department)
        .unwrap_or_else(|| panic!("test fixture: no department `{department}`"))
        .mode = govfusion::domain::Mode::Manual;
}

/// The collaboration event `event_id` in a case view.
pub fn event_view<'a>(case: &'a Value, event_id: &str) -> &'a Value {
    case["collaboration_events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event_id"] == event_id))
        .unwrap_or_else(|| panic!("no collaboration event {event_id}: {case}"))
}

/// The warnings of a case view at `level` (`yellow`, `red`): the case's own when `event_id` is
/// none, else those of that event.
pub fn warnings<'a>(case: &'a Value, event_id: Option<&str>, level: &str) -> Vec<&'a Value> {
    case["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings list: {case}"))
        .iter()
        .filter(|w| w["level"] == level && w["event_id"].as_str() == event_id)
        .collect()
}

/// The history entries of a case whose step is `step`.
pub fn history_entries<'a>(case: &'a Value, step: &str) -> Vec<&'a Value> {
    case["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history: {case}"))
        .iter()
        .filter(|h| h["step"] == step)
        .collect()
}

/// Whether some history entry of `step` has a note containing every one of `parts`.
pub fn history_notes(case: &Value, step: &str, parts: &[&str]) -> bool {
    history_entries(case, step).iter().any(|h| {
        h["note"]
            .as_str()
            .is_some_and(|note| parts.iter().all(|p| note.contains(p)))
    })
}

/// Asserts the status and the `error` code of a refusal; returns its body.
pub async fn assert_refused(response: reqwest::Response, status: u16, error: &str) -> Value {
    let actual = response.status();
    let body = json_body(response).await;
    assert_eq!(
        actual, status,
        "expected {status} {error}, got {actual}: {body}"
    );
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a refusal should say what was wrong: {body}"
    );
    body
}

/// Asserts the status of a response; returns its body.
pub async fn assert_status(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status();
    let body = json_body(response).await;
    assert_eq!(actual, status, "expected {status}, got {actual}: {body}");
    body
}

impl TestApp {
    /// Polls the case until `accept` holds for it; returns it. `what` says what is awaited.
    pub async fn wait_for_case(
        &self,
        case_id: &str,
        what: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let accept = &accept;
        poll(&format!("case {case_id}: {what}"), move || async move {
            let case = self.get_case(case_id).await;
            if accept(&case) {
                Ok(case)
            } else {
                Err(case.to_string())
            }
        })
        .await
    }

    /// Polls the case until its collaboration event `event_id` has `status`; returns the case.
    pub async fn wait_for_event_status(
        &self,
        case_id: &str,
        event_id: &str,
        status: &str,
    ) -> Value {
        self.wait_for_case(case_id, &format!("event {event_id} {status}"), |case| {
            case["collaboration_events"]
                .as_array()
                .and_then(|events| events.iter().find(|e| e["event_id"] == event_id))
                .is_some_and(|e| e["status"] == status)
        })
        .await
    }

    /// Waits until the supervision system has handled every record of the case now on the
    /// (memory) bus, so that moving the clock next cannot overtake what it knows — a
    /// suspension, an extension. Its consumer group commits a record only once handled.
    pub async fn wait_until_supervision_has_read(&self, case_id: &str) {
        let bus = self.memory_bus();
        let group = self.systems.supervision_group.clone();
        let partitions = self.systems.settings.bus.partitions;
        poll(
            &format!("supervision to read every record of case {case_id}"),
            || async {
                for topic in govfusion::bus::Topic::ALL {
                    for partition in 0..partitions {
                        let Some(last) = bus
                            .records(topic, partition)
                            .iter()
                            .rposition(|r| r.key == case_id)
                        else {
                            continue;
                        };
                        let committed = bus.committed_offset(&group, topic, partition);
                        if committed <= last as u64 {
                            return Err(format!(
                                "{topic}[{partition}]: committed {committed}, case record at {last}"
                            ));
                        }
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// Lets supervision run several deadline checks at the current time, so that a test can
    /// see that a warning did *not* come, or did not come twice. A pause, not a measurement.
    pub async fn let_supervision_check(&self) {
        let every = self.systems.settings.supervision.check_interval_ms;
        actix_web::rt::time::sleep(Duration::from_millis(every * 10)).await;
    }

    /// Staff of `department` decide a case (`approve`, `reject`), asserting 200.
    pub async fn decide_ok(&self, department: &str, case_id: &str, decision: &str) {
        let response = self
            .post_json(
                &format!("/api/v1/departments/{department}/cases/{case_id}/decision"),
                &json!({ "decision": decision, "opinion": "经审查" }),
            )
            .await;
        assert_status(response, 200).await;
    }

    /// `POST /api/v1/collaborations/{event_id}/{action}` with `body`.
    pub async fn event_action(
        &self,
        event_id: &str,
        action: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.post_json(&format!("/api/v1/collaborations/{event_id}/{action}"), body)
            .await
    }
}
