//! No log line carries a full ID number or phone. One test drives a full flow — an
//! automatically approved case, one with collaboration across the tiers, one decided by staff,
//! the case read in clear and masked, bodies refused because they quote the ID number or the
//! phone where serde echoes values — with every line of every level, actix-web's and the bus's
//! included, written to memory, and reads them all.
//!
//! A binary of its own: a process has one global tracing subscriber, and this one must be
//! installed, at trace level, before anything logs.

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
use govfusion::bus::{Record, Topic};
use govfusion::clock::SystemClock;
use govfusion::domain::CaseId;
use govfusion::settings::BusKind;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing_subscriber::fmt::format::FmtSpan;

/// How long a wait of [`common::poll`] looks before the test fails.
const POLL_FOR: Duration = Duration::from_secs(10);

/// The applicant of this test: values found nowhere else, so a hit means a leak.
const NAME: &str = "欧阳秘密";
/// A resident ID number with a valid GB 11643 check digit.
const ID_NUMBER: &str = "440304198506127317";
/// The same with a wrong check digit: refused, and not to be repeated either.
const BAD_ID_NUMBER: &str = "440304198506127318";
/// A mainland mobile number.
const PHONE: &str = "13987654321";

/// Installs the trace-level subscriber writing to memory (the `log` records of actix-web and
/// the other crates included: `try_init` bridges them), once for the process.
fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_span_events(FmtSpan::FULL)
                .with_ansi(false)
                .with_writer(captured.clone())
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

/// An `application.published` for the market department as an outside system might write it
/// wrong: the applicant in clear, its ID number where the sealed block belongs. The department
/// refuses it, and the reason is logged and put on the dead letter.
fn record_in_clear(case_id: &CaseId) -> Record {
    let data = json!({
        "case_id": case_id,
        "matter_code": "individual_business_registration",
        "applicant": ID_NUMBER,
        "region": { "district": "500103", "street": "500103001" },
        "materials": [],
        "form": {},
        "terminal_id": "pc-web",
        "channel": "pc",
        "submitted_at": "2026-11-30T01:00:00Z",
    });
    published_to_market(case_id, &data)
}

/// Posts `body` as `caller` and asserts the refusal's status; returns its JSON.
async fn refused(app: &TestApp, caller: &Caller, path: &str, body: &Value, status: u16) -> Value {
    let response = app.post_json_as(caller, path, body).await;
    let got = response.status().as_u16();
    let answer = json_body(response).await;
    assert_eq!(got, status, "{path}: {answer}");
    answer
}

/// The lines of `logs` that carry any of `secrets`, each with what it carries.
fn leaking<'a>(
    logs: &'a str,
    secrets: &[(&'static str, &str)],
) -> Vec<(Vec<&'static str>, &'a str)> {
    logs.lines()
        .filter_map(|line| {
            let found: Vec<&'static str> = secrets
                .iter()
                .filter(|(_, secret)| line.contains(secret))
                .map(|(what, _)| *what)
                .collect();
            (!found.is_empty()).then_some((found, line))
        })
        .collect()
}

#[actix_web::test]
async fn no_log_line_of_a_full_flow_carries_an_id_number_or_a_phone() {
    // Arrange: every line at trace level to memory; the service on a durable memory bus (so
    // that every system writes its state snapshots too).
    let captured = capture();
    let mut settings = common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    let bus = MemoryBus::durable(&settings.bus);
    let app = TestApp::start_on(settings, Arc::new(SystemClock), bus, POLL_FOR).await;
    let applicant = Caller::applicant();
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
    // … the case read in clear and masked …
    let clear = app.get_case(&collaborating).await;
    let supervised = json_body(
        app.get_as(
            &Caller::Supervisor,
            &format!("/api/v1/cases/{collaborating}"),
        )
        .await,
    )
    .await;
    // … and bodies refused that quote the ID number and the phone where serde echoes values.
    let mut as_number = application(&app, "individual_business_registration");
    as_number["applicant"]["id_number"] = serde_json::from_str(ID_NUMBER).expect("a number");
    let id_refused = refused(&app, &applicant, submit, &as_number, 400).await;
    let mut phone_as_number = application(&app, "individual_business_registration");
    phone_as_number["applicant"]["phone"] = serde_json::from_str(PHONE).expect("a number");
    refused(&app, &applicant, submit, &phone_as_number, 400).await;
    let mut bad_check_digit = application(&app, "individual_business_registration");
    bad_check_digit["applicant"]["id_number"] = BAD_ID_NUMBER.into();
    refused(&app, &applicant, submit, &bad_check_digit, 422).await;
    let officer = Caller::officer("urban_management");
    let as_variant = json!({ "decision": ID_NUMBER });
    refused(&app, &officer, &decision, &as_variant, 400).await;
    let as_key = json!({ "decision": "approve", PHONE: 1 });
    refused(&app, &officer, &decision, &as_key, 400).await;
    // … and a record from outside with the ID number where the sealed applicant belongs.
    let stray = CaseId::generate();
    app.systems
        .bridge
        .send(PublishRecords(vec![record_in_clear(&stray)]))
        .await
        .expect("the bridge is running")
        .expect("on the bus");
    let bus = app.systems.memory_bus.clone().expect("the memory bus");
    let dead_letter = common::poll("the stray record in dead-letters", || async {
        bus.all_records(Topic::DeadLetters)
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.key == stray.as_str())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;
    app.stop().await;
    let logs = captured.text();

    // Assert: every level was captured, the service's lines and actix-web's echo of errors included …
    let expected = [
        " TRACE ",
        " DEBUG ",
        collaborating.as_str(),
        "Error in response",
        "moving it to dead-letters",
    ];
    for expected in expected {
        assert!(logs.contains(expected), "no `{expected}` in the logs");
    }
    // … and not one line carries the ID number, the phone or the name.
    let secrets = [
        ("ID number", ID_NUMBER),
        ("refused ID number", BAD_ID_NUMBER),
        ("phone", PHONE),
        ("name", NAME),
    ];
    let lines = leaking(&logs, &secrets);
    assert!(
        lines.is_empty(),
        "{} of {} log lines carry personal data: {lines:#?}",
        lines.len(),
        logs.lines().count()
    );
    // … while the reader saw the applicant in clear, the supervisor masked, and the refusal
    // still says what was wrong.
    assert_eq!(clear["application"]["applicant"]["id_number"], ID_NUMBER);
    assert_eq!(
        supervised["application"]["applicant"]["id_number"], "440304********7317",
        "{supervised}"
    );
    let reason = dead_letter.header("dlq.error").unwrap_or_default();
    assert!(
        reason.contains("invalid type: string, expected"),
        "{reason}"
    );
    let message = id_refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("invalid type: integer, expected a string"),
        "{id_refused}"
    );
}
