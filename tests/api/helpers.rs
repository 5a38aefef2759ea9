//! The API suite's own part of the harness (the rest is in `tests/common`): the bus chosen by
//! `GOVFUSION_TEST_BUS`, a clock the tests move, and the requests of staff and supervision.

pub use crate::common::app::{inbox_lists_case, json_body, reasons, step_names, TestApp, TERMINAL};
pub use crate::common::callers::Caller;
pub use crate::common::once::assert_each_step_once;
pub use crate::common::poll;
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::Topic;
use govfusion::clock::{Clock, SharedClock, SystemClock};
use govfusion::settings::Settings;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
            settings.bus.brokers = crate::common::env::require(crate::common::env::KAFKA_ENV);
            BusKind::Kafka
        }
        Ok("memory") | Err(_) => BusKind::Memory,
        Ok(other) => panic!("GOVFUSION_TEST_BUS={other}: expected memory, embedded or kafka"),
    };
}

/// Starts the service with the default configuration changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(Arc::new(SystemClock), tweak).await
}

/// Starts the service with every system reading the time from `clock` (a [`TestClock`] lets a
/// test reach deadlines), and the configuration changed by `tweak`. Deadlines are checked
/// every 20 ms.
pub async fn spawn_app_with_clock(
    clock: SharedClock,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = crate::common::app::test_settings();
    use_test_bus(&mut settings);
    settings.supervision.check_interval_ms = 20;
    tweak(&mut settings);
    TestApp::start(settings, clock, crate::POLL_FOR).await
}

impl TestApp {
    /// The in-memory bus the systems run on.
    pub fn memory_bus(&self) -> &MemoryBus {
        self.systems
            .memory_bus
            .as_ref()
            .expect("the test configuration runs on the memory bus")
    }

    /// Polls a department's inbox until a collaboration event of the case waits there; returns
    /// the event.
    pub async fn wait_for_collaboration(&self, department: &str, case_id: &str) -> Value {
        let what = format!("a collaboration event of case {case_id}");
        self.wait_for_inbox(department, &what, |inbox| {
            inbox["collaborations"]
                .as_array()
                .and_then(|events| events.iter().find(|e| e["case_id"] == case_id))
                .cloned()
        })
        .await
    }
}

impl TestApp {
    /// Submits a case waiting for urban_management's (manual) decision; returns its id and its
    /// decision path.
    pub async fn case_to_decide(&self) -> (String, String) {
        let case_id = self
            .submit_ok(&self.application_body("outdoor_advertising"))
            .await;
        self.wait_for_inbox_case("urban_management", &case_id).await;
        let path = format!("/api/v1/departments/urban_management/cases/{case_id}/decision");
        (case_id, path)
    }

    /// Submits a case of `matter` and waits until its collaboration event waits for the staff
    /// of `department`; returns the case id and the event id.
    pub async fn event_waiting_at(&self, department: &str, matter: &str) -> (String, String) {
        let case_id = self.submit_ok(&self.application_body(matter)).await;
        let event = self.wait_for_collaboration(department, &case_id).await;
        let event_id = event["event_id"]
            .as_str()
            .expect("an event has an id")
            .to_owned();
        (case_id, event_id)
    }
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

/// A clock that stands still until the test sets it, and counts how often the systems read it
/// since: the supervision system reads it once at the start of every deadline check, and
/// starts no check while the warnings of the last one are still being published.
#[derive(Debug)]
pub struct TestClock {
    now: Mutex<chrono::DateTime<chrono::Utc>>,
    reads: AtomicU64,
}

impl TestClock {
    /// A clock showing `start` (see [`at`]).
    pub fn showing(start: &str) -> Arc<Self> {
        Arc::new(TestClock {
            now: Mutex::new(at(start)),
            reads: AtomicU64::new(0),
        })
    }

    /// Sets the time.
    pub fn set(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
        self.reads.store(0, Ordering::SeqCst);
    }

    /// How often the systems read the time since it was last set.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let now = *self.now.lock().unwrap_or_else(|e| e.into_inner());
        self.reads.fetch_add(1, Ordering::SeqCst);
        now
    }
}

/// Starts the service on a [`TestClock`] showing `start` (see [`at`]), with the default
/// configuration changed by `tweak`; returns it with the clock.
pub async fn spawn_app_at(
    start: &str,
    tweak: impl FnOnce(&mut Settings),
) -> (TestApp, Arc<TestClock>) {
    let clock = TestClock::showing(start);
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
    /// What the intake system holds in memory now.
    pub async fn intake_holding(&self) -> govfusion::actors::intake::Held {
        self.systems
            .desks
            .intake
            .holding
            .send(govfusion::actors::intake::Holding)
            .await
            .expect("the intake system answers")
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

    /// Waits until `group` has handled (committed) every record on the (memory) bus's flow
    /// topics that `wanted` picks; `what` names it.
    async fn wait_until_group_has_read(
        &self,
        group: &str,
        what: &str,
        wanted: impl Fn(&govfusion::bus::Record) -> bool,
    ) {
        let bus = self.memory_bus();
        let partitions = self.systems.settings.bus.partitions;
        let wanted = &wanted;
        poll(what, || async move {
            for topic in Topic::flow() {
                for partition in 0..partitions {
                    let Some(last) = bus
                        .records(topic, partition)
                        .iter()
                        .rposition(|r| wanted(r))
                    else {
                        continue;
                    };
                    let committed = bus.committed_offset(group, topic, partition);
                    if committed <= last as u64 {
                        return Err(format!(
                            "{topic}[{partition}]: committed {committed}, record at {last}"
                        ));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Waits until the supervision system has handled every record of the case now on the
    /// (memory) bus, so that moving the clock next cannot overtake what it knows — a
    /// suspension, an extension. Its consumer group commits a record only once handled.
    pub async fn wait_until_supervision_has_read(&self, case_id: &str) {
        let group = &self.systems.supervision_group;
        let what = format!("supervision to read every record of case {case_id}");
        self.wait_until_group_has_read(group, &what, |r| r.key == case_id)
            .await
    }

    /// Waits until supervision has checked the deadlines at the time `clock` shows now, and the
    /// intake system has read whatever that check raised: a test can then see that a warning
    /// did *not* come, or did not come twice. A check reads the clock once and the next one
    /// starts only after its warnings are on the bus, so the third read of the clock since it
    /// was set follows at least one complete check at that time (the city is otherwise idle
    /// while the test waits; a stray read by another system only adds a check to wait for).
    pub async fn wait_for_supervision_check(&self, clock: &TestClock) {
        poll(
            "supervision to check the deadlines at the new time",
            || async {
                match clock.reads() {
                    reads if reads >= 3 => Ok(()),
                    reads => Err(format!("the clock was read {reads} times since it was set")),
                }
            },
        )
        .await;
        let group = &self.systems.intake_group;
        let what = "the intake system to read every record on the bus";
        self.wait_until_group_has_read(group, what, |_| true).await
    }

    /// Submits a `restaurant_opening` whose application the market department's group loses,
    /// and waits until it is lost and the case is published; answers the case id.
    pub async fn submit_lost_by_market(&self) -> String {
        let flow = self.systems.flow_group.clone().expect("departments run");
        let bus = self.memory_bus();
        bus.lose_next_deliveries(&flow, "department/market", "application.published", 1);
        let case_id = self
            .submit_ok(&self.application_body("restaurant_opening"))
            .await;
        poll("the market department to lose the application", || async {
            match bus.deliveries_lost() {
                1 => Ok(()),
                lost => Err(format!("{lost} deliveries lost")),
            }
        })
        .await;
        self.wait_for_status(&case_id, "published").await;
        case_id
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
