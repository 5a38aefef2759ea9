//! The harness: `govfusion serve` processes with their own roles over one Kafka-protocol broker,
//! killed and restarted as an operator (or a crash) would.

use crate::common::callers::{key_file, with_token, Caller};
use crate::common::once::{assert_one_message_per_cause, ids_by_case_and_kind};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::common::env::{require, DURABLE_TANSU_ENV, KAFKA_ENV, TANSU_ENV};

/// How long a wait looks before the test fails (see `POLL_FOR` in `main.rs`).
pub const WAIT_FOR: Duration = crate::POLL_FOR;
/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Held by a test while its processes run: each test starts five `govfusion` processes, and
/// running the tests one at a time keeps a 2-core machine from starving them.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A free TCP port on 127.0.0.1 (free when asked; the process binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("Failed to find a free port")
}

/// The log filter of every child process: `info`, or `GOVFUSION_TEST_CHILD_LOG` when set
/// (e.g. `govfusion=debug` to see what a process restored after a kill).
fn child_log_filter() -> String {
    std::env::var("GOVFUSION_TEST_CHILD_LOG").unwrap_or_else(|_| "info".to_owned())
}

/// One `govfusion serve` process.
pub struct Process {
    /// A name for messages, e.g. `market-a`.
    pub name: String,
    roles: String,
    /// Its HTTP port.
    pub port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `govfusion serve --roles <roles>` with `env` (GOVFUSION__… variables), and a
    /// case repository of its own (kept across its restarts): the intake and governance
    /// processes each open one, and two processes must not create one SQLite schema at once.
    pub fn start(name: &str, roles: &str, mut env: Vec<(String, String)>) -> Self {
        let port = free_port();
        let run = uuid::Uuid::new_v4().simple();
        let log = std::env::temp_dir().join(format!("govfusion-{name}-{run}.log"));
        let data_dir = std::env::temp_dir().join(format!("govfusion-{name}-{run}-data"));
        env.push((
            "GOVFUSION__STORE__DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ));
        let mut process = Self {
            name: name.to_owned(),
            roles: roles.to_owned(),
            port,
            env,
            child: None,
            log,
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("Failed to open the process log");
        let child = Command::new(env!("CARGO_BIN_EXE_govfusion"))
            .args(["serve", "--roles", &self.roles])
            .envs(self.env.iter().cloned())
            .env("GOVFUSION__HTTP__BIND", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", child_log_filter())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("Failed to share the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("Failed to start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + WAIT_FOR;
        let mut last = String::new();
        while Instant::now() < deadline {
            match client.get(format!("{}/readyz", self.url())).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = r.text().await.unwrap_or_default(),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!(
            "{} not ready after {WAIT_FOR:?}: {last}\n--- log ---\n{}",
            self.name,
            self.log_tail()
        );
    }

    /// Kills it with SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `limit` for it to exit; its exit status, or `None` if it
    /// was still running (it is then killed).
    pub fn sigterm(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts it again, same roles and port, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_ready().await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A city spread over processes: the intake system, governance, and departments.
pub struct City {
    /// The broker.
    pub brokers: String,
    /// The topic prefix of this test.
    pub prefix: String,
    /// The processes by name.
    pub processes: HashMap<String, Process>,
    client: reqwest::Client,
}

/// The matters the tests submit, all handled by the departments the test cities run: market
/// (alone), market with fire, market with fire and the street office.
pub const MATTERS: [&str; 3] = [
    "individual_business_registration",
    "food_business_licence",
    "restaurant_opening",
];

impl City {
    /// The settings every process shares, as GOVFUSION__… variables.
    pub fn env(brokers: &str, prefix: &str) -> Vec<(String, String)> {
        [
            ("GOVFUSION__BUS__KIND", "kafka"),
            ("GOVFUSION__BUS__BROKERS", brokers),
            ("GOVFUSION__BUS__TOPIC_PREFIX", prefix),
            ("GOVFUSION__BUS__KAFKA__FETCH_WAIT_MAX_MS", "10"),
            ("GOVFUSION__BUS__KAFKA__SESSION_TIMEOUT_MS", "1000"),
            ("GOVFUSION__BUS__KAFKA__HEARTBEAT_INTERVAL_MS", "100"),
            ("GOVFUSION__BUS__REDELIVERY_BACKOFF_MS", "20"),
            ("GOVFUSION__SERVICE__SHUTDOWN_TIMEOUT_MS", "15000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([(
            "GOVFUSION__AUTH__DEVELOPMENT_KEY_FILE".to_owned(),
            key_file().display().to_string(),
        )])
        .collect()
    }

    /// Starts intake, governance, two instances of the market department and one process for
    /// fire and the street office, each its own process; waits until all are ready.
    pub async fn start(brokers: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(brokers, extra_env, 2).await
    }

    /// Like [`start`](Self::start), with `markets` instances of the market department (1 or 2).
    pub async fn start_with(brokers: &str, extra_env: &[(&str, &str)], markets: usize) -> Self {
        let prefix = format!("p{}", uuid::Uuid::new_v4().simple());
        let mut env = Self::env(brokers, &prefix);
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let intake = Process::start("intake", "intake", env.clone());
        let mut governance_env = env.clone();
        governance_env.push(("GOVFUSION__SERVICE__INTAKE_FEED_URL".into(), intake.url()));
        let mut processes = vec![
            Process::start("governance", "governance", governance_env),
            Process::start("market-a", "department:market", env.clone()),
            Process::start(
                "fire-street",
                "department:fire,department:street_office",
                env.clone(),
            ),
            intake,
        ];
        if markets > 1 {
            processes.push(Process::start("market-b", "department:market", env.clone()));
        }
        Self::of(brokers, &prefix, processes).await
    }

    /// The city of `processes`, started with [`env`](Self::env) of `brokers` and `prefix`;
    /// one of them is called `intake`. Waits until all are ready.
    pub async fn of(brokers: &str, prefix: &str, processes: Vec<Process>) -> Self {
        for process in &processes {
            process.wait_ready().await;
        }
        Self {
            brokers: brokers.to_owned(),
            prefix: prefix.to_owned(),
            processes: processes.into_iter().map(|p| (p.name.clone(), p)).collect(),
            client: reqwest::Client::new(),
        }
    }

    /// The process called `name`.
    pub fn process(&mut self, name: &str) -> &mut Process {
        self.processes
            .get_mut(name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    fn intake_url(&self) -> String {
        self.processes["intake"].url()
    }

    /// Submits `n` applications (the matters in turn); returns their case ids. Retries a
    /// submission the intake process refuses or cannot take (it may be restarting).
    pub async fn submit(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let body = application(MATTERS[i % MATTERS.len()]);
            let deadline = Instant::now() + WAIT_FOR;
            loop {
                let url = format!("{}/api/v1/terminals/pc-web/applications", self.intake_url());
                let sent = with_token(self.client.post(url), &Caller::applicant())
                    .json(&body)
                    .send()
                    .await;
                if let Ok(response) = sent {
                    if response.status() == 202 {
                        let answer: Value = response.json().await.expect("a JSON answer");
                        ids.push(answer["case_id"].as_str().expect("a case id").to_owned());
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "the intake process took no submission"
                );
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
        ids
    }

    /// Posts `body` as an application once (no retry); its status and JSON answer.
    pub async fn post_application(&self, body: &Value) -> (u16, Value) {
        self.post_application_to("intake", body).await
    }

    /// Posts `body` as an application to the process called `name` once; its status and
    /// JSON answer.
    pub async fn post_application_to(&self, name: &str, body: &Value) -> (u16, Value) {
        let base = self.processes[name].url();
        let url = format!("{base}/api/v1/terminals/pc-web/applications");
        let response = with_token(self.client.post(url), &Caller::applicant())
            .json(body)
            .send()
            .await
            .expect("the intake process answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET <path>` on the intake process as the caller whose work it is, as JSON; panics
    /// unless it answers 200.
    pub async fn intake_json(&self, path: &str) -> Value {
        self.intake_json_as(&Caller::for_path(path, |_| None), path)
            .await
    }

    /// `GET <path>` on the intake process as `caller`, as JSON; panics unless it answers 200.
    pub async fn intake_json_as(&self, caller: &Caller, path: &str) -> Value {
        self.json_at("intake", caller, path).await
    }

    /// `GET <path>` on the process called `name` as `caller`, as JSON; panics unless it
    /// answers 200.
    pub async fn json_at(&self, name: &str, caller: &Caller, path: &str) -> Value {
        let base = self.processes[name].url();
        let response = with_token(self.client.get(format!("{base}{path}")), caller)
            .send()
            .await
            .expect("the intake process answers");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON answer")
    }

    /// The cases the intake process lists as stalled after `idle_secs` (0: every case neither
    /// completed nor failed).
    pub async fn stalled(&self, idle_secs: u64) -> Value {
        self.intake_json(&format!("/api/v1/operations/stalled?idle_secs={idle_secs}"))
            .await
    }

    /// Asserts that `cases` happened exactly once (see [`assert_exactly_once`]), on the
    /// acceptance and approval topics of the city's prefix. The intake system shows a case
    /// completed once it has read the case's `approval.delivered`, so each of those records is
    /// on the broker by then; a broker may still report a partition's end behind a record it
    /// has delivered (tansu does, for a while, after its clients were killed or it was frozen),
    /// so the topics are read again until they show every step of every case, and only then
    /// checked for doubles.
    pub async fn assert_exactly_once(&self, cases: &[Value]) {
        let topics = [
            format!("{}.acceptances", self.prefix),
            format!("{}.approvals", self.prefix),
        ];
        let case_ids = case_ids(cases);
        let records = crate::common::poll("every step of every case on the bus", || async {
            let records = crate::raw::read_topics(&self.brokers, &topics).await;
            let ids = ids_by_case_and_kind(records.iter().map(|r| r.sent()));
            let missing: Vec<String> = case_ids
                .iter()
                .flat_map(|id| EXACTLY_ONCE_STEPS.iter().map(move |step| (id, *step)))
                .filter(|(id, step)| !ids.contains_key(&(id.as_str(), *step)))
                .map(|(id, step)| format!("{id} {step}"))
                .collect();
            match missing.is_empty() {
                true => Ok(records),
                false => Err(format!("not on the bus: {missing:?}")),
            }
        })
        .await;
        assert_exactly_once(cases, &records);
    }

    /// The case as the intake system shows it, or why not.
    pub async fn case(&self, case_id: &str) -> Result<Value, String> {
        let url = format!("{}/api/v1/cases/{case_id}", self.intake_url());
        let response = with_token(self.client.get(url), &Caller::applicant())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("status {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    /// Waits until every case has `status`.
    pub async fn wait_all_in_status(&self, ids: &[String], status: &str) {
        let deadline = Instant::now() + WAIT_FOR;
        loop {
            let mut other = Vec::new();
            for id in ids {
                match self.case(id).await {
                    Ok(case) if case["status"] == status => {}
                    Ok(case) => other.push(format!("{id}: {}", case["status"])),
                    Err(e) => other.push(format!("{id}: {e}")),
                }
            }
            if other.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cases not {status} after {WAIT_FOR:?}: {other:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every case is completed; returns them.
    pub async fn wait_all_completed(&self, ids: &[String]) -> Vec<Value> {
        let deadline = Instant::now() + WAIT_FOR;
        loop {
            let mut cases = Vec::new();
            let mut open = Vec::new();
            for id in ids {
                match self.case(id).await {
                    Ok(case) if case["status"] == "completed" => cases.push(case),
                    Ok(case) => open.push(format!("{id}: {}", case["status"])),
                    Err(e) => open.push(format!("{id}: {e}")),
                }
            }
            if open.is_empty() {
                return cases;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .processes
                    .values()
                    .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail()))
                    .collect();
                panic!(
                    "{} of {} cases not completed after {WAIT_FOR:?}: {:?}\n{}",
                    open.len(),
                    ids.len(),
                    &open[..open.len().min(10)],
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A complete application for `matter` in 渝中区 / 解放碑街道.
pub fn application(matter: &str) -> Value {
    json!({
        "matter_code": matter,
        "applicant": { "name": "张三", "id_number": "500103199001011232", "phone": "13800000000" },
        "region": { "district": "500103", "street": "500103001" },
        "materials": ["id_card", "premises_proof", "business_licence", "food_safety_plan",
                      "fire_safety_plan", "kitchen_layout"],
    })
}

/// The steps every case of these tests has once: one receipt, one approval, one delivery.
const EXACTLY_ONCE_STEPS: [&str; 3] = [
    "application.accepted",
    "approval.published",
    "approval.delivered",
];

/// The ids of `cases`.
fn case_ids(cases: &[Value]) -> Vec<String> {
    cases
        .iter()
        .map(|c| c["case_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts what "exactly once" means to the applicant and on the bus: each case has one
/// receipt, one approval and one delivery in its history, and on the bus one acceptance, one
/// approval and one delivery message id per case (see [`crate::common::once`]).
fn assert_exactly_once(cases: &[Value], bus: &[crate::raw::RawRecord]) {
    assert_one_message_per_cause(
        &case_ids(cases),
        &EXACTLY_ONCE_STEPS,
        bus.iter().map(|r| r.sent()),
    );
    for case in cases {
        let history = case["history"].as_array().expect("a history");
        for step in EXACTLY_ONCE_STEPS {
            let count = history.iter().filter(|h| h["step"] == step).count();
            assert_eq!(count, 1, "{step} {count} times in the history of {case}");
        }
        assert!(
            case["receipt"]["receipt_no"].is_string(),
            "no receipt: {case}"
        );
        assert_eq!(
            case["approval"]["outcome"]["decision"], "approved",
            "complete applications are approved: {case}"
        );
    }
}
