//! `GET /metrics`: after a flow, the counters moved as the flow says, and every metric the
//! Grafana dashboard (`docs/grafana-dashboard.json`) queries is one the service exports.
//!
//! A binary of its own: a process has one global metrics recorder, which every service
//! started in it records into. The tests here take turns ([`TURN`]), so that what a test reads
//! moved by exactly its own flow; every other test binary is another process.

#[path = "common/mod.rs"]
mod common;

use common::app::{test_settings, TestApp};
use common::records::published_to_market;
use govfusion::bus::bridge::PublishRecords;
use govfusion::bus::Topic;
use govfusion::clock::SystemClock;
use govfusion::domain::CaseId;
use govfusion::settings::BusKind;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long a wait of [`common::poll`] looks before the test fails.
const POLL_FOR: Duration = Duration::from_secs(30);

/// Held by the test that runs: the recorder is the process's, one flow at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The submission route, as its pattern.
const SUBMIT_ROUTE: &str = "/api/v1/terminals/{terminal_id}/applications";

/// A sample's labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// One scrape: every sample by name, each with its labels.
struct Scrape {
    /// The text as served.
    text: String,
    /// The samples by metric name.
    samples: BTreeMap<String, Vec<Sample>>,
}

impl Scrape {
    /// Parses the Prometheus text format; panics on a line that is not in it.
    fn parse(text: String) -> Self {
        let mut samples: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a value: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, labels(rest.trim_end_matches('}'), line)),
                None => (series, BTreeMap::new()),
            };
            samples
                .entry(name.to_owned())
                .or_default()
                .push((labels, value));
        }
        Self { text, samples }
    }

    /// The sum of the samples of `name` whose labels include `with`; 0 when there is none.
    fn value(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .filter(|(labels, _)| {
                with.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, value)| value)
            .sum()
    }

    /// Whether a sample of `name` with `with` among its labels is exported.
    fn has(&self, name: &str, with: &[(&str, &str)]) -> bool {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .any(|(labels, _)| {
                with.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
    }
}

/// `k="v",…` into a map; `line` names the line in a panic.
fn labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad labels: {line}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    if let Some((_, c)) = chars.next() {
                        value.push(if c == 'n' { '\n' } else { c });
                    }
                }
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// Scrapes `/metrics` as Prometheus does: no token.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("Failed to scrape /metrics");
    assert_eq!(response.status(), 200, "/metrics answers without a token");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(response.text().await.expect("a body"))
}

/// The service on the in-memory bus.
async fn spawn_app() -> TestApp {
    let mut settings = test_settings();
    settings.bus.kind = BusKind::Memory;
    TestApp::start(settings, Arc::new(SystemClock), POLL_FOR).await
}

#[actix_web::test]
async fn after_a_flow_the_counters_moved_as_the_flow_says() {
    // Arrange
    let _turn = TURN.lock().await;
    let app = spawn_app().await;
    let before = scrape(&app).await;
    let mut rejected = app.application_body("individual_business_registration");
    rejected["materials"] = json!(["business_licence"]);

    // Act: two cases approved by rule, one rejected for a missing material, one approved
    // after the fire brigade's and the street office's collaboration; then one whose
    // collaboration event waits for urban management's staff.
    let approved = [
        app.submit_ok(&app.application_body("individual_business_registration"))
            .await,
        app.submit_ok(&app.application_body("individual_business_registration"))
            .await,
        app.submit_ok(&app.application_body("restaurant_opening"))
            .await,
    ];
    let rejected = app.submit_ok(&rejected).await;
    for case_id in approved.iter().chain([&rejected]) {
        app.wait_until_completed(case_id).await;
    }
    let waiting = app
        .submit_ok(&app.application_body("construction_permit"))
        .await;
    app.wait_for_inbox("urban_management", "a collaboration event", |inbox| {
        inbox["collaborations"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["case_id"] == waiting.as_str()))
            .cloned()
    })
    .await;
    // The centres' and departments' group, which reads the market department's records.
    let market = app.systems.flow_group.clone().expect("departments run");
    // Per system and type: every case published once and approved once (the waiting one not
    // yet), the collaborations dispatched to their departments. A handling is counted once
    // its outputs are on the bus, a moment after the next system may have acted on them.
    let handled = "govfusion_messages_handled_total";
    let messages: [(&str, &str, f64); 7] = [
        ("intake", "application.published", 5.0),
        ("intake", "approval.delivered", 4.0),
        ("department/market", "application.published", 4.0),
        ("governance/500000", "approval.published", 4.0),
        ("department/fire", "collaboration.dispatched", 2.0),
        ("department/street_office", "collaboration.dispatched", 1.0),
        (
            "department/urban_management",
            "collaboration.dispatched",
            1.0,
        ),
    ];
    let moved_by = |after: &Scrape, name: &str, with: &[(&str, &str)]| {
        after.value(name, with) - before.value(name, with)
    };
    // The consumers report their lag every second: wait for the market group's too.
    let after = common::poll(
        "every message counted, the market group's lag reported",
        || async {
            let after = scrape(&app).await;
            let short: Vec<_> = messages
                .iter()
                .filter(|(system, kind, count)| {
                    moved_by(&after, handled, &[("system", system), ("type", kind)]) < *count
                })
                .collect();
            let lag = after.has("govfusion_consumer_lag_records", &[("group", &market)]);
            match (short.is_empty(), lag) {
                (true, true) => Ok(after),
                _ => Err(format!("short of {short:?}; market lag reported: {lag}")),
            }
        },
    )
    .await;

    // Assert: the cases …
    let moved = |name: &str, with: &[(&str, &str)]| moved_by(&after, name, with);
    assert_eq!(
        moved("govfusion_cases_submitted_total", &[("channel", "pc")]),
        5.0
    );
    let approved_count = [("outcome", "approved")];
    assert_eq!(
        moved("govfusion_cases_completed_total", &approved_count),
        3.0
    );
    let rejected_count = [("outcome", "rejected")];
    assert_eq!(
        moved("govfusion_cases_completed_total", &rejected_count),
        1.0
    );
    assert_eq!(
        moved("govfusion_case_duration_seconds_count", &approved_count),
        3.0
    );
    assert_eq!(
        moved("govfusion_case_duration_seconds_count", &rejected_count),
        1.0
    );
    let everything = [("outcome", "approved"), ("le", "+Inf")];
    assert_eq!(
        moved("govfusion_case_duration_seconds_bucket", &everything),
        3.0
    );
    assert_eq!(moved("govfusion_cases_failed_total", &[]), 0.0);
    // … the messages, each handled exactly as often as the flow says, none dead-lettered …
    for (system, kind, count) in messages {
        let with = [("system", system), ("type", kind)];
        assert_eq!(moved(handled, &with), count, "{system} {kind}");
    }
    assert_eq!(moved("govfusion_messages_dead_lettered_total", &[]), 0.0);
    // … the requests, by route pattern, never by a path with a case id in it …
    let submits = [
        ("method", "POST"),
        ("route", SUBMIT_ROUTE),
        ("status", "202"),
    ];
    assert_eq!(moved("govfusion_http_requests_total", &submits), 5.0);
    assert_eq!(
        moved("govfusion_http_request_duration_seconds_count", &submits),
        5.0
    );
    let case_reads = [("route", "/api/v1/cases/{case_id}"), ("status", "200")];
    assert!(moved("govfusion_http_requests_total", &case_reads) >= 4.0);
    for case_id in approved.iter().chain([&rejected, &waiting]) {
        assert!(
            !after.text.contains(case_id.as_str()),
            "a case id in a label: {case_id}"
        );
    }
    // … the bridge and the consumers …
    assert!(moved("govfusion_bridge_batch_records_count", &[]) >= 1.0);
    assert!(after.value("govfusion_bridge_batch_records_sum", &[]) >= 1.0);
    assert!(after.has(
        "govfusion_consumer_in_flight_records",
        &[("group", &market)]
    ));
    assert!(after.has("govfusion_consumer_rewinds_total", &[("group", &market)]));
    // … the event waiting at urban management, open at its department and at both centres
    // of its route, overdue nowhere …
    let open = "govfusion_department_open_collaboration_events";
    assert_eq!(
        after.value(open, &[("department", "urban_management")]),
        1.0
    );
    assert_eq!(after.value(open, &[("department", "fire")]), 0.0);
    let centre_open = "govfusion_centre_open_collaboration_events";
    assert_eq!(
        after.value(centre_open, &[("centre", "500000"), ("tier", "city")]),
        1.0
    );
    assert_eq!(
        after.value(centre_open, &[("centre", "500103"), ("tier", "district")]),
        1.0
    );
    assert_eq!(after.value("govfusion_department_overdue_items", &[]), 0.0);
    assert_eq!(after.value("govfusion_centre_overdue_events", &[]), 0.0);
    // … the intake system holds the five cases in memory, none out of it …
    let intake = "govfusion_intake_cases";
    assert_eq!(after.value(intake, &[("held", "in_memory")]), 5.0);
    assert_eq!(after.value(intake, &[("held", "out_of_memory")]), 0.0);
    // … and the process, ready and running.
    assert_eq!(after.value("govfusion_ready", &[]), 1.0);
    assert_eq!(
        after.value("govfusion_startup_phase", &[("phase", "running")]),
        1.0
    );
    assert_eq!(
        after.value("govfusion_startup_phase", &[("phase", "state")]),
        0.0
    );
    app.stop().await;
}

#[actix_web::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    // Arrange: the dashboard's queries and the names in them.
    let _turn = TURN.lock().await;
    let dashboard: Value = serde_json::from_str(include_str!("../docs/grafana-dashboard.json"))
        .expect("the dashboard is JSON");
    assert_eq!(
        dashboard["__inputs"][0]["name"], "DS_PROMETHEUS",
        "importable as is"
    );
    let queries = expressions(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    let queried: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    let app = spawn_app().await;

    // Act: a flow with a repeat and a dead letter, so that every kind of metric has moved.
    let bus = app.systems.memory_bus.clone().expect("the memory bus");
    // Every delivery of the flow comes twice: which groups read first varies, and only some
    // systems count repeats (the supervision system's view does not).
    bus.duplicate_next_deliveries(10_000);
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    app.wait_until_completed(&case_id).await;
    let stray = CaseId::generate();
    let poison = published_to_market(&stray, &json!({ "not": "an application" }));
    app.systems
        .bridge
        .send(PublishRecords(vec![poison]))
        .await
        .expect("the bridge is running")
        .expect("on the bus");
    common::poll("the stray record in dead-letters", || async {
        let letters = bus.all_records(Topic::DeadLetters);
        match letters.iter().any(|(_, r)| r.key == stray.as_str()) {
            true => Ok(()),
            false => Err(format!("{} dead letters", letters.len())),
        }
    })
    .await;
    let exported = common::poll("every queried metric exported", || async {
        let scrape = scrape(&app).await;
        let missing: Vec<&String> = queried
            .iter()
            .filter(|name| !scrape.samples.contains_key(*name))
            .collect();
        match missing.is_empty() {
            true => Ok(scrape),
            false => Err(format!("missing {missing:?}")),
        }
    })
    .await;

    // Assert: every name queried is exported (the poll failed otherwise), and the dashboard
    // covers what an operator looks at.
    for must in [
        "govfusion_cases_submitted_total",
        "govfusion_case_duration_seconds_bucket",
        "govfusion_consumer_lag_records",
        "govfusion_messages_dead_lettered_total",
        "govfusion_centre_overdue_events",
    ] {
        assert!(queried.contains(must), "the dashboard does not show {must}");
    }
    assert!(exported.value("govfusion_messages_dead_lettered_total", &[]) >= 1.0);
    assert!(exported.value("govfusion_messages_repeated_total", &[]) >= 1.0);
    app.stop().await;
}

/// Every `expr` of every panel's targets, rows' panels included.
fn expressions(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &Value, into: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    into.push(expr.to_owned());
                }
            }
            walk(&panel["panels"], into);
        }
    }
    let mut into = Vec::new();
    walk(&dashboard["panels"], &mut into);
    into
}

/// The metric names a PromQL expression reads: every `govfusion_…` word.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("govfusion_"))
        .map(str::to_owned)
        .collect()
}
