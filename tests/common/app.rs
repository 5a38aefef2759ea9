//! A real service on `127.0.0.1:0`, and the requests its users make. Each suite chooses the bus
//! and adds what is its own (`impl TestApp` in its `helpers`).

use super::callers::{self, with_token, Caller};
use super::{poll, status_rank};
use actix_web::rt::task::JoinHandle;
use govfusion::app::Application;
use govfusion::bus::memory::MemoryBus;
use govfusion::clock::SharedClock;
use govfusion::settings::{Settings, DEFAULT_CONFIG};
use govfusion::systems::Systems;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::oneshot;

/// The terminal tests submit from unless they say otherwise.
pub const TERMINAL: &str = "pc-web";
/// The region of an application unless a test says otherwise: 渝中区 / 解放碑街道.
pub const DISTRICT: &str = "500103";
/// See [`DISTRICT`].
pub const STREET: &str = "500103001";

/// The default configuration, listening on a free port, with topics and consumer groups of its
/// own (tests sharing one broker never see each other's records) and quick recovery from the
/// faults tests inject. The bus is the caller's choice.
pub fn test_settings() -> Settings {
    super::init_tracing();
    let mut settings = Settings::from_toml(DEFAULT_CONFIG, "test", false)
        .expect("Failed to load the default configuration");
    settings.http.bind = "127.0.0.1:0".into();
    settings.bus.topic_prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    settings.auth.development_key_file = callers::key_file();
    // A case repository of its own: tests never share a database file. A restarted app keeps
    // its settings, so the same file.
    settings.store.data_dir = std::env::temp_dir()
        .join("govfusion-tests")
        .join(uuid::Uuid::new_v4().simple().to_string())
        .to_string_lossy()
        .into_owned();
    // Short sessions make group joins (and rejoins after a fault) quick on a real broker.
    settings.bus.kafka.session_timeout_ms = 1000;
    settings.bus.kafka.heartbeat_interval_ms = 100;
    settings.bus.kafka.fetch_wait_max_ms = 10;
    settings.bus.redelivery_backoff_ms = 5;
    // Tests read every record a memory bus was given.
    settings.bus.memory_trim = false;
    settings.bridge.retry_initial_backoff_ms = 1;
    // Tests poll every 10 ms from one caller, often several loops at once, for as long as a
    // case takes: far past a real client's budget. The limiter still runs, with room to spare.
    settings.http.rate_limit.per_second = 1_000_000.0;
    settings.http.rate_limit.burst = 1_000_000;
    settings
}

/// A running service and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The running systems, for fault injection and bus inspection.
    pub systems: Systems,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The clock the systems read, for the service that replaces this one on a restart.
    clock: SharedClock,
    /// How long the service may take to become ready, likewise.
    ready_within: Duration,
    /// Tells the service to shut down (see [`stop`](Self::stop)).
    stop: oneshot::Sender<()>,
    /// The service, serving until told to stop; resolves once it has shut down.
    serving: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// Starts the service with `settings`, every system reading the time from `clock`; returns
    /// once it is ready (every consumer group has its partitions), or panics after `ready_within`.
    pub async fn start(settings: Settings, clock: SharedClock, ready_within: Duration) -> Self {
        let app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("Failed to build the application");
        Self::serve(app, clock, ready_within).await
    }

    /// Like [`start`](Self::start), on an in-memory bus that may have carried another service
    /// before: on a [`MemoryBus::durable`] the new service rebuilds its state from what the
    /// other wrote, and its consumer groups resume where the other's committed.
    pub async fn start_on(
        settings: Settings,
        clock: SharedClock,
        bus: MemoryBus,
        ready_within: Duration,
    ) -> Self {
        let app = Application::build_on(settings, clock.clone(), bus)
            .await
            .expect("Failed to build the application");
        Self::serve(app, clock, ready_within).await
    }

    async fn serve(app: Application, clock: SharedClock, ready_within: Duration) -> Self {
        let systems = app.systems().clone();
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel();
        let serving = actix_web::rt::spawn(app.run_until(async {
            // A test that drops its app without stopping it leaves it serving, as before.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        }));
        systems
            .ready(ready_within)
            .await
            .expect("the service did not become ready");
        Self {
            address,
            systems,
            client: reqwest::Client::new(),
            clock,
            ready_within,
            stop,
            serving,
        }
    }

    /// Shuts the service down as SIGTERM would (stop taking requests, stop consuming and commit
    /// what was handled, drain the publishes) and waits until it has.
    pub async fn stop(self) {
        // Fails only when the service has already gone, which is what is wanted.
        let _ = self.stop.send(());
        self.serving
            .await
            .expect("the service task panicked")
            .expect("the service failed to shut down");
    }

    /// Stops the service and starts a new one, with the same settings and clock, over the same
    /// in-memory bus (made with [`MemoryBus::durable`] for the new one to find the old one's
    /// state); returns the new one once it is ready.
    pub async fn restart(self) -> Self {
        self.restart_after(|_| {}).await
    }

    /// Like [`restart`](Self::restart), with `meanwhile` acting on the bus while no service
    /// runs on it (what a crash left behind: forgotten commits, a fault to lift).
    pub async fn restart_after(self, meanwhile: impl FnOnce(&MemoryBus)) -> Self {
        let bus = self
            .systems
            .memory_bus
            .clone()
            .expect("a restart needs the in-memory bus");
        let settings = (*self.systems.settings).clone();
        let (clock, ready_within) = (self.clock.clone(), self.ready_within);
        self.stop().await;
        meanwhile(&bus);
        Self::start_on(settings, clock, bus, ready_within).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The caller whose work `path` is ([`Caller::for_path`]); a collaboration event's
    /// officer is of the department this service says holds it.
    pub fn caller_for(&self, path: &str) -> Caller {
        Caller::for_path(path, |event_id| {
            self.systems
                .event_index
                .get(&govfusion::domain::EventId::from_string(event_id))
                .map(|entry| entry.value().to_string())
        })
    }

    /// `GET path` as the caller whose work it is ([`caller_for`](Self::caller_for)).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.caller_for(path), path).await
    }

    /// `GET path` as `caller`.
    pub async fn get_as(&self, caller: &Caller, path: &str) -> reqwest::Response {
        with_token(self.client.get(self.url(path)), caller)
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

    /// `POST path` with a JSON body, as the caller whose work it is.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_json_as(&self.caller_for(path), path, body).await
    }

    /// `POST path` with a JSON body, as `caller`.
    pub async fn post_json_as(
        &self,
        caller: &Caller,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        with_token(self.client.post(self.url(path)), caller)
            .json(body)
            .send()
            .await
            .expect("Failed to execute request")
    }

    /// `POST path` with `body` sent as is, labelled `application/json`, as the caller whose work
    /// it is.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        with_token(self.client.post(self.url(path)), &self.caller_for(path))
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

    /// Polls the case until it is `completed`, checks that its outcome is `decision`
    /// (`approved` or `rejected`), and returns it.
    pub async fn wait_until_decided(&self, case_id: &str, decision: &str) -> Value {
        let case = self.wait_until_completed(case_id).await;
        assert_eq!(case["approval"]["outcome"]["decision"], decision, "{case}");
        case
    }

    /// Polls the case until its status is `status` or a later one; returns it.
    pub async fn wait_for_status(&self, case_id: &str, status: &str) -> Value {
        let wanted = status_rank(status);
        poll(&format!("case {case_id} to be {status}"), || async {
            let case = self.get_case(case_id).await;
            match case["status"].as_str().map(status_rank) {
                Some(now) if now >= wanted => Ok(case),
                _ => Err(case.to_string()),
            }
        })
        .await
    }

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

    /// Polls a department's inbox until `pick` finds in it what `what` names; returns that.
    pub async fn wait_for_inbox<T>(
        &self,
        department: &str,
        what: &str,
        pick: impl Fn(&Value) -> Option<T>,
    ) -> T {
        let path = format!("/api/v1/departments/{department}/inbox");
        let (path, pick) = (&path, &pick);
        poll(
            &format!("{what} in the inbox of {department}"),
            || async move {
                let inbox = self.get_json(path).await;
                pick(&inbox).ok_or_else(|| inbox.to_string())
            },
        )
        .await
    }

    /// Polls a department's inbox until it lists the case; returns the inbox.
    pub async fn wait_for_inbox_case(&self, department: &str, case_id: &str) -> Value {
        let what = format!("case {case_id}");
        self.wait_for_inbox(department, &what, |inbox| {
            inbox_lists_case(inbox, case_id).then(|| inbox.clone())
        })
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
            .matter(&matter.into())
            .unwrap_or_else(|e| panic!("test fixture: {e}"))
            .required_materials;
        json!({
            "matter_code": matter,
            "applicant": { "name": "张三", "id_number": "500103199001011232", "phone": "13800000000" },
            "region": { "district": district, "street": street },
            "materials": materials,
            "form": { "note": "integration test" }
        })
    }
}

/// The body of a response, as JSON; panics with the text when it is not JSON.
pub async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("Failed to read the body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
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
