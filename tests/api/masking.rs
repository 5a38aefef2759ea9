//! Personal data masked (GB/T 35273): a case's applicant is shown in clear to the applicant,
//! the terminal that submitted it and the officers of the department handling it; everyone
//! else who may see the case — a collaborating department, a centre's dispatcher, a
//! supervisor, an operator — sees the ID number as its first 6 and last 4 characters, the phone
//! as its first 3 and last 4, the name as its first character. What carries personal data is
//! not to be cached (`Cache-Control: no-store`).

use crate::helpers::{json_body, spawn_app, Caller, TestApp, TERMINAL};
use serde_json::Value;

/// The applicant of `TestApp::application_body`, in clear …
const CLEAR: (&str, &str, &str) = ("张三", "500103199001011232", "13800000000");
/// … and masked.
const MASKED: (&str, &str, &str) = ("张*", "500103********1232", "138****0000");

/// `GET path` as `caller`, asserting 200; the body and the `Cache-Control` header.
async fn read_as(app: &TestApp, caller: &Caller, path: &str) -> (Value, Option<String>) {
    let response = app.get_as(caller, path).await;
    let status = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = json_body(response).await;
    assert_eq!(status, 200, "GET {path} as {caller:?}: {body}");
    (body, cache)
}

/// The applicant of a case view, as (name, ID number, phone).
fn applicant_of(case: &Value) -> (String, String, String) {
    let applicant = &case["application"]["applicant"];
    let text = |field: &str| applicant[field].as_str().unwrap_or_default().to_owned();
    (text("name"), text("id_number"), text("phone"))
}

/// Whether `(name, id, phone)` is `expected`.
fn is(seen: &(String, String, String), expected: (&str, &str, &str)) -> bool {
    (seen.0.as_str(), seen.1.as_str(), seen.2.as_str()) == expected
}

#[actix_web::test]
async fn the_applicant_and_the_handling_officers_see_the_applicant_in_clear_others_masked() {
    // Arrange: a restaurant opening the applicant submitted themselves, handled by `market`
    // with the help of `fire` (district) and `street_office` (street), in 渝中区.
    let app = spawn_app().await;
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    let case = app.wait_until_completed(&case_id).await;
    assert_eq!(case["receipt"]["department"], "market", "{case}");
    let path = format!("/api/v1/cases/{case_id}");

    // Act
    let mut seen = Vec::new();
    for caller in [
        Caller::applicant(),
        Caller::officer("market"),
        Caller::officer("fire"),
        Caller::officer("street_office"),
        Caller::Dispatcher("500103".into()),
        Caller::Dispatcher("500103001".into()),
        Caller::Supervisor,
        Caller::Operator,
    ] {
        let (body, cache) = read_as(&app, &caller, &path).await;
        seen.push((caller, applicant_of(&body), cache));
    }

    // Assert: the applicant and market's officers in clear, not to be cached …
    for (caller, applicant, cache) in &seen[..2] {
        assert!(is(applicant, CLEAR), "{caller:?} saw {applicant:?}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{caller:?}");
    }
    // … every other reader masked.
    for (caller, applicant, _) in &seen[2..] {
        assert!(is(applicant, MASKED), "{caller:?} saw {applicant:?}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn the_terminal_that_submitted_a_case_sees_its_applicant_in_clear() {
    // Arrange: a window clerk's terminal submits for a walk-in applicant.
    let app = spawn_app().await;
    let terminal = Caller::Terminal(TERMINAL.into());
    let response = app
        .post_json_as(
            &terminal,
            &format!("/api/v1/terminals/{TERMINAL}/applications"),
            &app.application_body("individual_business_registration"),
        )
        .await;
    assert_eq!(response.status(), 202);
    let case_id = json_body(response).await["case_id"]
        .as_str()
        .expect("a case id")
        .to_owned();

    // Act
    let (case, cache) = read_as(&app, &terminal, &format!("/api/v1/cases/{case_id}")).await;

    // Assert
    let applicant = applicant_of(&case);
    assert!(is(&applicant, CLEAR), "the terminal saw {applicant:?}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    app.stop().await;
}

#[actix_web::test]
async fn an_inbox_shows_its_own_cases_in_clear_uncached_and_no_applicant_on_collaborations() {
    // Arrange: urban_management decides an outdoor advertising case itself, and is asked to
    // collaborate on housing's construction permit.
    let app = spawn_app().await;
    let own = app
        .submit_ok(&app.application_body("outdoor_advertising"))
        .await;
    app.wait_for_inbox_case("urban_management", &own).await;
    let (other, _) = app
        .event_waiting_at("urban_management", "construction_permit")
        .await;

    // Act
    let (inbox, cache) = read_as(
        &app,
        &Caller::officer("urban_management"),
        "/api/v1/departments/urban_management/inbox",
    )
    .await;

    // Assert: its own case in clear, and the inbox not to be cached …
    let cases = inbox["cases"].as_array().cloned().unwrap_or_default();
    let case = cases
        .iter()
        .find(|c| c["application"]["case_id"] == own.as_str())
        .unwrap_or_else(|| panic!("no case {own} in {inbox}"));
    assert!(is(&applicant_of(case), CLEAR), "{case}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    // … while housing's case, waiting there as a collaboration event, shows nothing of its
    // applicant (urban_management reads it masked at GET /cases/{id}).
    let events = inbox["collaborations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let event = events
        .iter()
        .find(|e| e["case_id"] == other.as_str())
        .unwrap_or_else(|| panic!("no event of case {other} in {inbox}"));
    let text = event.to_string();
    for clear in [CLEAR.0, CLEAR.1, CLEAR.2] {
        assert!(!text.contains(clear), "the event shows `{clear}`: {text}");
    }
    let (case, _) = read_as(
        &app,
        &Caller::officer("urban_management"),
        &format!("/api/v1/cases/{other}"),
    )
    .await;
    assert!(is(&applicant_of(&case), MASKED), "{case}");
    app.stop().await;
}
