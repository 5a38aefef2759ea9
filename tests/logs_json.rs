//! The JSON log lines (`[log] format = "json"`): each line one JSON object, a line about a bus
//! message carrying its case id, message id, type, system and trace id as fields, and no line
//! carrying the applicant's name, ID number or phone. One test drives a full flow — an
//! automatically approved case, one with collaboration across the tiers, one decided by staff,
//! bodies refused because they quote the ID number or the phone, a record from outside with
//! the ID number in clear — with every line of every level written to memory by the service's
//! own JSON subscriber ([`govfusion::logging::json`]), and reads them all.
//!
//! A binary of its own, like `tests/logs.rs` (the same flow in text): a process has one global
//! tracing subscriber, and this one must be installed before anything logs.

#[path = "common/captured.rs"]
mod captured;
#[path = "common/mod.rs"]
mod common;

use captured::Captured;
use common::app::{json_body, TestApp};
use common::callers::Caller;
use common::records::published_to_market;
use govfusion::bus::bridge::PublishRecords;
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::Topic;
use govfusion::clock::SystemClock;
use govfusion::domain::CaseId;
use govfusion::settings::BusKind;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// How long a wait of [`common::poll`] looks before the test fails.
const POLL_FOR: Duration = Duration::from_secs(10);

/// The applicant of this test: values found nowhere else, so a hit means a leak.
const NAME: &str = "司马隐名";
/// A resident ID number with a valid GB 11643 check digit.
const ID_NUMBER: &str = "110105194912313001";
/// A mainland mobile number.
const PHONE: &str = "15912345678";

/// Installs the service's JSON subscriber at trace level, writing to memory (the `log`
/// records of actix-web and the other crates included), once for the process.
fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            govfusion::logging::json(EnvFilter::new("trace"), captured.clone())
                .try_init()
                .expect("the first subscriber of this process");
            captured
        })
        .clone()
}

/// A complete application for `matter` from this test's applicant.
fn application(app: &TestApp, matter: &str) -> Value {
    let mut body = app.application_body(matter);
    body["applicant"] = json!({ "name": NAME, "id_number": ID_NUMBER, "phone": PHONE });
    body
}

/// The lines of `lines` whose `field` is `value`.
fn with<'a>(lines: &'a [Value], field: &str, value: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l[field] == value).collect()
}

#[actix_web::test]
async fn json_lines_carry_the_message_fields_and_no_personal_data() {
    // Arrange: every line at trace level to memory, as JSON; the service on a durable memory
    // bus (so that every system writes its state snapshots too).
    let captured = capture();
    let mut settings = common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    let bus = MemoryBus::durable(&settings.bus);
    let app = TestApp::start_on(settings, Arc::new(SystemClock), bus, POLL_FOR).await;
    let submit = "/api/v1/terminals/pc-web/applications";

    // Act: an automatic case, one with collaboration, one decided by staff …
    let auto = app
        .submit_ok(&application(&app, "individual_business_registration"))
        .await;
    let collaborating = app
        .submit_ok(&application(&app, "restaurant_opening"))
        .await;
    let manual = app
        .submit_ok(&application(&app, "outdoor_advertising"))
        .await;
    app.wait_for_inbox_case("urban_management", &manual).await;
    let decision = format!("/api/v1/departments/urban_management/cases/{manual}/decision");
    let decided = app
        .post_json(
            &decision,
            &json!({ "decision": "approve", "opinion": "同意设置" }),
        )
        .await;
    assert_eq!(decided.status(), 200, "{}", json_body(decided).await);
    for case_id in [&auto, &collaborating, &manual] {
        app.wait_until_completed(case_id).await;
    }
    let clear = app.get_case(&collaborating).await;
    // … bodies refused that quote the ID number and the phone where serde echoes values …
    for (field, value) in [("id_number", ID_NUMBER), ("phone", PHONE)] {
        let mut body = application(&app, "individual_business_registration");
        body["applicant"][field] = serde_json::from_str(value).expect("a number");
        let refused = app.post_json_as(&Caller::applicant(), submit, &body).await;
        assert_eq!(refused.status(), 400, "{}", json_body(refused).await);
    }
    // … and a record from outside with the ID number where the sealed applicant belongs.
    let stray = CaseId::generate();
    let data = json!({
        "case_id": stray, "matter_code": "individual_business_registration",
        "applicant": ID_NUMBER, "region": { "district": "500103", "street": "500103001" },
        "materials": [], "form": {}, "terminal_id": "pc-web", "channel": "pc",
        "submitted_at": "2026-11-30T01:00:00Z",
    });
    let mut record = published_to_market(&stray, &data);
    record.headers.push(("trace_id".into(), "t".into()));
    app.systems
        .bridge
        .send(PublishRecords(vec![record]))
        .await
        .expect("the bridge is running")
        .expect("on the bus");
    let bus = app.systems.memory_bus.clone().expect("the memory bus");
    common::poll("the stray record in dead-letters", || async {
        let letters = bus.all_records(Topic::DeadLetters);
        match letters.iter().any(|(_, r)| r.key == stray.as_str()) {
            true => Ok(()),
            false => Err(format!("{} dead letters", letters.len())),
        }
    })
    .await;
    app.stop().await;
    let logs = captured.text();

    // Assert: every line is one JSON object with its time, level and message …
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() > 100, "{} lines", lines.len());
    for line in &lines {
        assert!(
            line["timestamp"].is_string()
                && line["level"].is_string()
                && line["target"].is_string(),
            "{line}"
        );
    }
    assert!(
        lines.iter().any(|l| l["level"] == "TRACE"),
        "every level captured"
    );
    // … each case's reception names its case and its trace …
    for case_id in [&auto, &collaborating, &manual] {
        let received: Vec<&Value> = with(&lines, "case_id", case_id)
            .into_iter()
            .filter(|l| l["message"] == "application received")
            .collect();
        assert_eq!(received.len(), 1, "{case_id}: {received:?}");
        assert!(received[0]["trace_id"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
    }
    // … the stray record, a message, is named by every field wherever it is logged: by the
    // intake system that did not issue its case, and by the department that refused it …
    let stray_lines = with(&lines, "case_id", stray.as_str());
    let intake = stray_lines
        .iter()
        .find(|l| l["system"] == "intake")
        .unwrap_or_else(|| panic!("no intake line about the stray record: {stray_lines:?}"));
    let refused = stray_lines
        .iter()
        .find(|l| l["message"] == "record cannot be handled; moving it to dead-letters")
        .unwrap_or_else(|| panic!("no dead-letter line: {stray_lines:?}"));
    assert_eq!(refused["system"], "department/market", "{refused}");
    for line in [intake, refused] {
        assert_eq!(line["message_id"], format!("{stray}/published"), "{line}");
        assert_eq!(line["type"], "application.published", "{line}");
        assert_eq!(line["trace_id"], "t", "{line}");
    }
    // … and not one line carries the ID number, the phone or the name, while the applicant
    // read the case in clear.
    for (what, secret) in [("ID number", ID_NUMBER), ("phone", PHONE), ("name", NAME)] {
        let leaking: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaking.is_empty(), "the {what} in {leaking:#?}");
    }
    assert_eq!(clear["application"]["applicant"]["id_number"], ID_NUMBER);
}
