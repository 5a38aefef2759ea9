//! Personal data on the bus: the applicant's name, ID number and phone are sealed on every
//! record of every topic (flow, state, dead-letters), values and headers alike, while the API
//! still shows them to whoever asks for the case; after a key rotation, what the old key sealed
//! still opens.

use crate::common::records::published_to_market;
use crate::helpers::{inbox_lists_case, poll, TestApp};
use govfusion::bus::bridge::PublishRecords;
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::{Record, Topic};
use govfusion::clock::SystemClock;
use govfusion::crypto::Keyring;
use govfusion::domain::{Applicant, Application, CaseId, Channel, Region};
use govfusion::settings::{BusKind, CryptoSettings, KeySettings, Settings};
use serde_json::Value;
use std::sync::Arc;

/// The applicant of these tests: values found nowhere else, so a hit means a leak.
const NAME: &str = "欧阳秘密";
/// A resident ID number with a valid GB 11643 check digit.
const ID_NUMBER: &str = "440304198506127317";
/// A mainland mobile number.
const PHONE: &str = "13987654321";

/// A key of the tests' own, for the rotation.
const NEW_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// A key this service never has.
const FOREIGN_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// The default configuration on the in-memory bus.
fn settings() -> Settings {
    let mut settings = crate::common::app::test_settings();
    settings.bus.kind = BusKind::Memory;
    settings
}

/// Starts the service with `settings` on `bus`.
async fn start(settings: Settings, bus: MemoryBus) -> TestApp {
    TestApp::start_on(settings, Arc::new(SystemClock), bus, crate::POLL_FOR).await
}

/// A durable bus (so that every system writes its state snapshots) and the service on it.
async fn spawn_durable_app() -> TestApp {
    let settings = settings();
    let bus = MemoryBus::durable(&settings.bus);
    start(settings, bus).await
}

/// A complete application for `matter` from the tests' applicant.
fn application_of(app: &TestApp, matter: &str) -> Value {
    let mut body = app.application_body(matter);
    body["applicant"] = serde_json::json!({ "name": NAME, "id_number": ID_NUMBER, "phone": PHONE });
    body
}

/// A key listed in `[crypto]`, inline.
fn inline_key(id: &str, key: &str) -> KeySettings {
    KeySettings {
        id: id.into(),
        key: Some(key.into()),
        key_env: None,
        key_file: None,
    }
}

/// What of the applicant a record shows in clear — in its key, its headers or its value,
/// as UTF-8 or as a JSON `\u` escape — named for the failure message.
fn leaks(record: &Record) -> Vec<&'static str> {
    let value = String::from_utf8_lossy(&record.payload);
    let mut texts = vec![record.key.as_str(), value.as_ref()];
    texts.extend(
        record
            .headers
            .iter()
            .flat_map(|(k, v)| [k.as_ref(), v.as_str()]),
    );
    let escaped_name: String = NAME
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    [
        ("name", NAME),
        ("name (escaped)", escaped_name.as_str()),
        ("ID number", ID_NUMBER),
        ("phone", PHONE),
    ]
    .into_iter()
    .filter(|(_, clear)| texts.iter().any(|text| text.contains(clear)))
    .map(|(what, _)| what)
    .collect()
}

/// Every record of every topic that shows the applicant in clear, with where it is.
fn records_leaking(bus: &MemoryBus) -> Vec<String> {
    Topic::ALL
        .into_iter()
        .flat_map(|topic| bus.all_records(topic))
        .filter_map(|(partition, record)| {
            let found = leaks(&record);
            (!found.is_empty()).then(|| {
                format!(
                    "{}[{partition}] {:?} `{}`: {found:?}",
                    record.topic.suffix(),
                    record.header("type"),
                    record.key
                )
            })
        })
        .collect()
}

/// How many records of `topic` concern `case_id` (its flow records are keyed by it, its
/// snapshots `<system>|<case>`).
fn records_of_case(bus: &MemoryBus, topic: Topic, case_id: &str) -> usize {
    bus.all_records(topic)
        .into_iter()
        .filter(|(_, r)| r.key == case_id || r.key.ends_with(&format!("|{case_id}")))
        .count()
}

/// An `application.published` for the market department, its applicant sealed under a key
/// this service does not have, as an outside system with the wrong key would write it.
fn record_sealed_elsewhere(case_id: &CaseId) -> Record {
    let foreign = Keyring::from_settings(&CryptoSettings {
        current: "elsewhere".into(),
        keys: vec![inline_key("elsewhere", FOREIGN_KEY)],
    })
    .expect("a valid key");
    let application = Application {
        case_id: case_id.clone(),
        matter_code: "individual_business_registration".into(),
        applicant: Applicant {
            name: NAME.into(),
            id_number: ID_NUMBER.into(),
            phone: PHONE.into(),
        },
        region: Region {
            district: "500103".into(),
            street: "500103001".into(),
        },
        materials: Vec::new(),
        form: govfusion::domain::FormFields::of(&serde_json::json!({})).expect("fields"),
        terminal_id: "pc-web".into(),
        channel: Channel::Pc,
        submitted_at: chrono::Utc::now(),
        owner: None,
    }
    .sealed(&foreign)
    .expect("sealed");
    published_to_market(case_id, &application)
}

/// Waits until `department`'s inbox lists the case; returns the inbox.
async fn inbox_with(app: &TestApp, department: &str, case_id: &str) -> Value {
    app.wait_for_inbox_case(department, case_id).await;
    app.get_json(&format!("/api/v1/departments/{department}/inbox"))
        .await
}

/// The applicant as the inbox shows the case.
fn inbox_applicant(inbox: &Value, case_id: &str) -> Value {
    let cases = inbox["cases"].as_array().cloned().unwrap_or_default();
    cases
        .into_iter()
        .find(|c| c["application"]["case_id"] == case_id)
        .map(|c| c["application"]["applicant"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn the_leak_finder_finds_the_applicant_in_a_value_and_in_a_header() {
    // What the test below relies on: a record showing the applicant is caught.
    let mut record = Record {
        topic: Topic::DeadLetters,
        key: "c1".into(),
        headers: vec![("dlq.error".into(), format!("bad phone {PHONE}"))],
        payload: format!("{{\"name\":\"{NAME}\",\"id_number\":\"{ID_NUMBER}\"}}").into(),
    };
    assert_eq!(leaks(&record), ["name", "ID number", "phone"]);
    record.payload = serde_json::json!({ "name": NAME }).to_string().into();
    record.headers.clear();
    assert_eq!(leaks(&record), ["name"]);
    record.payload = "{\"name\":\"\\u6b27\\u9633\\u79d8\\u5bc6\"}".into();
    assert_eq!(leaks(&record), ["name (escaped)"]);
}

#[actix_web::test]
async fn no_record_of_any_topic_shows_the_applicant_in_clear_while_the_api_does() {
    // Arrange
    let app = spawn_durable_app().await;
    let bus = app.memory_bus().clone();
    let stray = CaseId::generate();

    // Act: an auto-approved case, one with collaboration across the tiers, one decided by
    // staff, and a record the market department cannot open (dead-lettered).
    let auto = app
        .submit_ok(&application_of(&app, "individual_business_registration"))
        .await;
    let collaborating = app
        .submit_ok(&application_of(&app, "restaurant_opening"))
        .await;
    let manual = app
        .submit_ok(&application_of(&app, "outdoor_advertising"))
        .await;
    app.systems
        .bridge
        .send(PublishRecords(vec![record_sealed_elsewhere(&stray)]))
        .await
        .expect("the bridge is running")
        .expect("on the bus");
    let inbox = inbox_with(&app, "urban_management", &manual).await;
    app.decide_ok("urban_management", &manual, "approve").await;
    for case_id in [&auto, &collaborating, &manual] {
        app.wait_until_completed(case_id).await;
    }
    let dead_letter = poll("the stray record in dead-letters", || async {
        bus.all_records(Topic::DeadLetters)
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.key == stray.as_str())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;

    // Assert: the API shows the applicant in clear, to the case's reader and to staff …
    let case = app.get_case(&collaborating).await;
    assert_eq!(case["application"]["applicant"]["name"], NAME, "{case}");
    assert_eq!(case["application"]["applicant"]["id_number"], ID_NUMBER);
    assert_eq!(inbox_applicant(&inbox, &manual)["phone"], PHONE, "{inbox}");
    // … the cases' records are on every topic the test means to read …
    for topic in [
        Topic::Applications,
        Topic::CollaborationRequests,
        Topic::CollaborationResults,
        Topic::Approvals,
        Topic::State,
    ] {
        let n = records_of_case(&bus, topic, &collaborating);
        assert!(n > 0, "no record of the case on {}", topic.suffix());
    }
    // … the record nobody could open is dead-lettered, saying why …
    let reason = dead_letter.header("dlq.error").unwrap_or_default();
    assert!(
        reason.contains("`elsewhere`") && reason.contains("not configured"),
        "{reason}"
    );
    assert!(!dead_letter.payload.is_empty(), "kept with its payload");
    // … and not one record of any topic shows the applicant.
    let leaking = records_leaking(&bus);
    assert!(leaking.is_empty(), "records in clear: {leaking:#?}");
    app.stop().await;
}

#[actix_web::test]
async fn after_a_key_rotation_old_cases_still_show_their_applicant_and_new_ones_use_the_new_key() {
    // Arrange: a case waiting for staff, its records sealed with the development key.
    let app = spawn_durable_app().await;
    let old = app
        .submit_ok(&application_of(&app, "outdoor_advertising"))
        .await;
    inbox_with(&app, "urban_management", &old).await;
    let bus = app.memory_bus().clone();
    let mut rotated = (*app.systems.settings).clone();
    app.stop().await;

    // Act: the service comes back with a new current key; the old one only opens.
    rotated.crypto = CryptoSettings {
        current: "2027".into(),
        keys: vec![
            inline_key("dev", govfusion::settings::DEVELOPMENT_KEY),
            inline_key("2027", NEW_KEY),
        ],
    };
    let app = start(rotated, bus.clone()).await;
    let new = app
        .submit_ok(&application_of(&app, "individual_business_registration"))
        .await;
    app.wait_until_completed(&new).await;

    // Assert: the old case shows its applicant, to its reader and in the inbox …
    let case = app.get_case(&old).await;
    assert_eq!(case["application"]["applicant"]["name"], NAME, "{case}");
    let inbox = inbox_with(&app, "urban_management", &old).await;
    assert_eq!(inbox_applicant(&inbox, &old)["id_number"], ID_NUMBER);
    // … it completes, the new key sealing nothing of it the old one sealed …
    app.decide_ok("urban_management", &old, "approve").await;
    app.wait_until_completed(&old).await;
    // … and each case's publication names the key that sealed it.
    let kid_of = |case_id: &str| {
        bus.all_records(Topic::Applications)
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.key == case_id)
            .map(|r| {
                let envelope: Value = serde_json::from_slice(&r.payload).expect("JSON");
                envelope["data"]["applicant"]["kid"].clone()
            })
    };
    assert_eq!(kid_of(&old), Some(Value::from("dev")));
    assert_eq!(kid_of(&new), Some(Value::from("2027")));
    assert!(inbox_lists_case(&inbox, &old));
    let leaking = records_leaking(&bus);
    assert!(leaking.is_empty(), "records in clear: {leaking:#?}");
    app.stop().await;
}

#[actix_web::test]
async fn a_key_dropped_from_the_config_makes_its_records_dead_letters_not_a_crash() {
    // Arrange: a case waiting for staff, sealed with the development key.
    let app = spawn_durable_app().await;
    let old = app
        .submit_ok(&application_of(&app, "outdoor_advertising"))
        .await;
    inbox_with(&app, "urban_management", &old).await;
    let bus = app.memory_bus().clone();
    let mut dropped = (*app.systems.settings).clone();
    app.stop().await;

    // Act: the service comes back with a new key only.
    dropped.crypto = CryptoSettings {
        current: "2027".into(),
        keys: vec![inline_key("2027", NEW_KEY)],
    };
    let app = start(dropped, bus.clone()).await;

    // Assert: it serves new cases …
    let new = app
        .submit_ok(&application_of(&app, "individual_business_registration"))
        .await;
    app.wait_until_completed(&new).await;
    // … and the old case's snapshots it could not open are dead letters naming the key.
    let reasons = poll("the old case's snapshots in dead-letters", || async {
        let reasons: Vec<String> = bus
            .all_records(Topic::DeadLetters)
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.key.ends_with(&format!("|{old}")))
            .filter_map(|r| r.header("dlq.error").map(str::to_owned))
            .collect();
        if reasons.len() >= 2 {
            Ok(reasons)
        } else {
            Err(format!("{reasons:?}"))
        }
    })
    .await;
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("`dev`") && r.contains("not configured")),
        "{reasons:#?}"
    );
    let leaking = records_leaking(&bus);
    assert!(leaking.is_empty(), "records in clear: {leaking:#?}");
    app.stop().await;
}
