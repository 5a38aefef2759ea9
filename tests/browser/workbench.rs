//! The officer workbench in Chromium, beside a citizen's open case page.

use crate::common::callers::Caller;
use crate::driver::Browser;
use crate::portal::{apply_for_outdoor_advertising, sign_in, spawn_app};
use serde_json::json;
use std::time::{Duration, Instant};

/// Signs in as an officer of `department`; the workbench opens.
async fn sign_in_officer(browser: &Browser, address: &str, department: &str) {
    browser.open(&format!("{address}/signin")).await;
    let account = browser.find("#account").await;
    account.clear().await.expect("the field clears");
    account.send_keys("officer-browser").await.expect("typing");
    let name = browser.find("#name").await;
    name.clear().await.expect("the field clears");
    name.send_keys("刘科员").await.expect("typing");
    browser
        .find(r#"#role option[value="officer"]"#)
        .await
        .click()
        .await
        .expect("the role is chosen");
    browser
        .find(&format!(r#"#department option[value="{department}"]"#))
        .await
        .click()
        .await
        .expect("the department is chosen");
    browser
        .find("form.stack button[type=submit]")
        .await
        .click()
        .await
        .expect("signing in");
    browser.wait_for_text("main", "待决定").await;
}

/// Opens the workbench until it lists case `case_id`.
async fn wait_for_case(browser: &Browser, address: &str, case_id: &str) {
    let deadline = Instant::now() + crate::POLL_FOR;
    loop {
        browser.open(&format!("{address}/workbench")).await;
        let css = format!(r#"article.case[data-case="{case_id}"]"#);
        if browser
            .client
            .find(fantoccini::Locator::Css(&css))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the workbench never listed {case_id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_CHROMEDRIVER (chromedriver with Chromium)"]
async fn an_officers_decision_in_the_workbench_shows_on_the_citizens_open_page_without_a_reload() {
    // Arrange: a citizen's case waiting for urban_management, its page open; the officer's
    // workbench listing it.
    let app = spawn_app().await;
    let citizen = Browser::start().await;
    sign_in(&citizen, &app, "citizen-browser").await;
    let case_id = apply_for_outdoor_advertising(&citizen, &app).await;
    let marked = citizen
        .client
        .execute("window.stayed = true; return true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(marked, json!(true));
    let officer = Browser::start().await;
    sign_in_officer(&officer, &app.address, "urban_management").await;
    wait_for_case(&officer, &app.address, &case_id).await;
    officer.screenshots("workbench-inbox").await;

    // Act: approve it, and confirm.
    let card = format!(r#"article.case[data-case="{case_id}"]"#);
    officer
        .find(&format!("{card} button[type=submit]"))
        .await
        .click()
        .await
        .expect("the decision is sent for confirmation");
    officer.wait_for_text("#summary", "准予许可").await;
    officer.screenshots("workbench-confirmation").await;
    officer
        .find("#confirm")
        .await
        .click()
        .await
        .expect("confirmed");

    // Assert: the workbench says it is done; the citizen's page, never reloaded, shows the
    // outcome; the case's history names the officer.
    officer.wait_for_text("main", "决定已提交").await;
    citizen.wait_for_text("#progress .status", "已办结").await;
    citizen
        .wait_for_text("#progress .outcome", "准予许可")
        .await;
    let stayed = citizen
        .client
        .execute("return window.stayed === true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(stayed, json!(true), "the citizen's page was reloaded");
    citizen.screenshots("portal-case-completed").await;
    let handler = Caller::officer("urban_management");
    let case = app
        .get_as(&handler, &format!("/api/v1/cases/{case_id}"))
        .await;
    let case: serde_json::Value = case.json().await.expect("the case");
    let officers: Vec<&str> = case["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["officer"]["name"].as_str())
        .collect();
    assert!(officers.contains(&"刘科员"), "{officers:?} in {case}");
    citizen.open(&format!("{}/my", app.address)).await;
    citizen.wait_for_text("table", &case_id).await;
    officer.close().await;
    citizen.close().await;
}
