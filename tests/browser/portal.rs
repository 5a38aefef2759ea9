//! The citizen portal in Chromium: applying through the form (by mouse, and by keyboard alone)
//! and following the case to its outcome.

use crate::common::app::{test_settings, TestApp};
use crate::driver::Browser;
use fantoccini::key::Key;
use govfusion::clock::SystemClock;
use govfusion::settings::BusKind;
use std::sync::Arc;

/// A service on the in-memory bus.
pub async fn spawn_app() -> TestApp {
    let mut settings = test_settings();
    settings.bus.kind = BusKind::Memory;
    TestApp::start(settings, Arc::new(SystemClock), crate::POLL_FOR).await
}

/// Signs in on the sign-in page as applicant `account`.
pub async fn sign_in(browser: &Browser, app: &TestApp, account: &str) {
    let fields = [("#account", account)];
    let landed = ("header.site", "申请人");
    browser.sign_in(&app.address, &fields, &[], landed).await;
}

/// The case id of the case page the browser shows.
async fn shown_case_id(browser: &Browser) -> String {
    let url = browser.client.current_url().await.expect("a URL");
    let id = url.path().strip_prefix("/my/cases/").unwrap_or_default();
    assert!(!id.is_empty(), "not a case page: {url}");
    id.to_owned()
}

/// Applies for `outdoor_advertising` (it waits for urban_management's staff) through the
/// form, as the signed-in applicant; the new case's id, its page open.
pub async fn apply_for_outdoor_advertising(browser: &Browser, app: &TestApp) -> String {
    browser.open(&format!("{}/", app.address)).await;
    browser
        .click(r#"a[href="/apply/outdoor_advertising"]"#)
        .await;
    for (field, value) in [
        ("#name", "王五"),
        ("#id_number", "500103199001011232"),
        ("#phone", "13800000000"),
    ] {
        browser
            .find(field)
            .await
            .send_keys(value)
            .await
            .expect("typing");
    }
    browser
        .click(r#"#region option[value="500103|500103001"]"#)
        .await;
    let materials = browser
        .client
        .find_all(fantoccini::Locator::Css("input[name=materials]"))
        .await
        .expect("the materials");
    for material in materials {
        material.click().await.expect("ticked");
    }
    browser.screenshots("portal-application-form").await;
    browser.click("form.stack button[type=submit]").await;
    browser.wait_for_text("#progress .status", "当前状态").await;
    shown_case_id(browser).await
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_CHROMEDRIVER (chromedriver with Chromium)"]
async fn a_citizen_applies_with_the_keyboard_alone() {
    // Arrange
    let app = spawn_app().await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, "citizen-keyboard").await;
    let form = format!("{}/apply/individual_business_registration", app.address);
    browser.open(&form).await;
    browser.find("#name").await;

    // Act: Tab to each field, type, tick with Space, submit with Enter.
    tab_to(&browser, "name").await;
    typed(&browser, "赵六").await;
    tab_to(&browser, "id_number").await;
    typed(&browser, "500103199001011232").await;
    tab_to(&browser, "phone").await;
    typed(&browser, "13800000000").await;
    tab_to(&browser, "region").await;
    typed(&browser, &char::from(Key::Down).to_string()).await;
    for material in ["material-0", "material-1"] {
        tab_to(&browser, material).await;
        typed(&browser, " ").await;
    }
    press_tab(&browser).await;
    typed(&browser, &char::from(Key::Enter).to_string()).await;

    // Assert
    browser.wait_for_text("#progress .status", "已办结").await;
    browser.screenshots("portal-keyboard-completed").await;
    browser.close().await;
}

/// Presses Tab until the element with `id` has the focus.
async fn tab_to(browser: &Browser, id: &str) {
    for _ in 0..30 {
        let active = browser.client.active_element().await.expect("a focus");
        if active.attr("id").await.ok().flatten().as_deref() == Some(id) {
            return;
        }
        press_tab(browser).await;
    }
    panic!("Tab never reached #{id}");
}

/// Presses Tab once.
async fn press_tab(browser: &Browser) {
    typed(browser, &char::from(Key::Tab).to_string()).await;
}

/// Types `keys` into the element with the focus.
async fn typed(browser: &Browser, keys: &str) {
    let active = browser.client.active_element().await.expect("a focus");
    active.send_keys(keys).await.expect("typing");
}
