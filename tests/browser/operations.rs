//! The city operations dashboard in Chromium, for the city centre's dispatcher: the live feed,
//! the chart, an overdue event marked red, a returned event reassigned.

use crate::common::app::{test_settings, TestApp};
use crate::common::callers::Caller;
use crate::driver::Browser;
use fantoccini::Locator;
use govfusion::clock::ManualClock;
use govfusion::settings::BusKind;
use serde_json::json;

/// `rfc3339` as a time.
fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .with_timezone(&chrono::Utc)
}

/// Signs in as the dispatcher of `centre`; the dashboard opens.
async fn sign_in_dispatcher(browser: &Browser, address: &str, centre: &str) {
    let fields = [("#account", "dispatcher-browser")];
    let options = [
        r#"#role option[value="dispatcher"]"#.to_owned(),
        format!(r#"#centre option[value="{centre}"]"#),
    ];
    let landed = ("main h1", "城市运行看板");
    browser.sign_in(address, &fields, &options, landed).await;
}

/// Opens the dashboard until `css` is on it.
async fn reload_until(browser: &Browser, address: &str, css: &str) {
    browser
        .open_until(&format!("{address}/operations"), css)
        .await;
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_CHROMEDRIVER (chromedriver with Chromium)"]
async fn the_dashboard_shows_the_bus_live_an_overdue_event_red_and_reassigns_a_returned_one() {
    // Arrange: Tuesday 1 December, 10:00; urban_management returns events to its centre (no
    // alternative department); an event of a construction permit waits there.
    let clock = ManualClock::new(at("2026-12-01T10:00:00+08:00"));
    let mut settings = test_settings();
    settings.bus.kind = BusKind::Memory;
    settings.supervision.check_interval_ms = 20;
    if let Some(department) = settings
        .departments
        .iter_mut()
        .find(|d| d.code.as_str() == "urban_management")
    {
        department.return_to = None;
    }
    let app = TestApp::start(settings, clock.clone(), crate::POLL_FOR).await;
    let case_id = app
        .submit_ok(&app.application_body("construction_permit"))
        .await;
    let event_id = format!("{case_id}-urban_management");
    let officer = Caller::officer("urban_management");
    let waiting = crate::common::poll("the event at urban_management", || async {
        let inbox = app
            .get_as(&officer, "/api/v1/departments/urban_management/inbox")
            .await;
        let inbox: serde_json::Value = inbox.json().await.unwrap_or_default();
        let listed = inbox["collaborations"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["event_id"] == event_id.as_str()));
        if listed {
            Ok(())
        } else {
            Err(inbox.to_string())
        }
    });
    waiting.await;
    let browser = Browser::start().await;
    sign_in_dispatcher(&browser, &app.address, "500000").await;

    browser.find(r#"#live[data-connected="true"]"#).await;

    // Act 1: a case submitted while the dashboard is open.
    let live_case = app
        .submit_ok(&app.application_body("individual_business_registration"))
        .await;

    // Assert 1: the live feed shows it, with no reload; the centres' chart is drawn.
    browser
        .find(&format!(r#"#live li[data-case="{live_case}"]"#))
        .await;
    browser.find(r#".chart[data-drawn="true"]"#).await;
    browser.screenshots("operations-live").await;

    // Act 2: the clock passes the event's deadline.
    clock.set(at("2026-12-31T10:00:00+08:00"));

    // Assert 2: the city's node shows a red warning.
    reload_until(&browser, &app.address, r#".node.red[data-centre="500000"]"#).await;
    browser
        .wait_for_text(r#".node[data-centre="500000"]"#, "红色预警")
        .await;
    browser.screenshots("operations-overdue").await;
    browser
        .element_screenshot(".chart", "operations-chart")
        .await;

    // Act 3: urban_management returns the event; the dispatcher reassigns it to the street
    // office, and confirms.
    let returned = app
        .post_json_as(
            &officer,
            &format!("/api/v1/collaborations/{event_id}/return"),
            &json!({ "reason": "不属于本局职责" }),
        )
        .await;
    assert_eq!(returned.status(), 200);
    let card = format!(r#"article.returned[data-event="{event_id}"]"#);
    reload_until(&browser, &app.address, &card).await;
    browser
        .click(&format!(r#"{card} option[value="street_office"]"#))
        .await;
    browser.click(&format!("{card} button[type=submit]")).await;
    browser.wait_for_text("#summary", "street_office").await;
    browser.click("#confirm").await;

    // Assert 3: done, the event no longer waits, and the street office has it.
    browser.wait_for_text("main", "已改派").await;
    assert!(
        browser.client.find(Locator::Css(&card)).await.is_err(),
        "the event still waits for reassignment"
    );
    let street = Caller::officer("street_office");
    let case = app
        .get_as(&street, &format!("/api/v1/cases/{case_id}"))
        .await;
    let case: serde_json::Value = case.json().await.expect("the case");
    let event = case["collaboration_events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["event_id"] == event_id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_ne!(event["status"], "returned", "{case}");
    browser.screenshots("operations-reassigned").await;
    browser.close().await;
}
