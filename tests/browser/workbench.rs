//! The officer workbench in Chromium, beside a citizen's open case page.

use crate::common::callers::Caller;
use crate::driver::Browser;
use crate::portal::{apply_for_outdoor_advertising, sign_in, spawn_app};
use serde_json::json;

/// Signs in as an officer of `department`; the workbench opens.
async fn sign_in_officer(browser: &Browser, address: &str, department: &str) {
    let fields = [("#account", "officer-browser"), ("#name", "刘科员")];
    let options = [
        r#"#role option[value="officer"]"#.to_owned(),
        format!(r#"#department option[value="{department}"]"#),
    ];
    let landed = ("main", "待决定");
    browser.sign_in(address, &fields, &options, landed).await;
}

/// Opens the workbench until it lists case `case_id`.
async fn wait_for_case(browser: &Browser, address: &str, case_id: &str) {
    let case = format!(r#"article.case[data-case="{case_id}"]"#);
    browser
        .open_until(&format!("{address}/workbench"), &case)
        .await;
}

/// Sends the act of the form `form` in the card of case `case_id`, and confirms it; waits for
/// the workbench to say `done`.
async fn act_on_case(
    officer: &Browser,
    case_id: &str,
    form: &str,
    fields: &[(&str, &str)],
    done: &str,
) {
    let card = format!(r#"article.case[data-case="{case_id}"]"#);
    for (field, value) in fields {
        officer.fill(&format!("{card} {field}"), value).await;
    }
    officer
        .click(&format!("{card} {form} button[type=submit]"))
        .await;
    officer.find("#summary").await;
    officer.click("#confirm").await;
    officer.wait_for_text("main", done).await;
}

/// Marks the page the browser shows, to tell later whether it was reloaded.
async fn mark(browser: &Browser) {
    let marked = browser
        .client
        .execute("window.stayed = true; return true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(marked, json!(true));
}

/// Whether the page marked by [`mark`] is still the one shown.
async fn still_marked(browser: &Browser) -> bool {
    let stayed = browser
        .client
        .execute("return window.stayed === true;", vec![])
        .await
        .expect("a script runs");
    stayed == json!(true)
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_CHROMEDRIVER (chromedriver with Chromium)"]
async fn an_officers_requests_and_decision_in_the_workbench_show_on_the_citizens_open_page() {
    // Arrange: a citizen's case waiting for urban_management, its page open; the officer's
    // workbench listing it.
    let app = spawn_app().await;
    let citizen = Browser::start().await;
    sign_in(&citizen, &app, "citizen-browser").await;
    let case_id = apply_for_outdoor_advertising(&citizen, &app).await;
    mark(&citizen).await;
    let officer = Browser::start().await;
    sign_in_officer(&officer, &app.address, "urban_management").await;
    wait_for_case(&officer, &app.address, &case_id).await;
    officer.screenshots("workbench-inbox").await;

    // Act 1: the officer asks for a material, and confirms.
    let asking = [
        ("input[name=materials]", "site_photo"),
        ("input[name=reason]", "缺少现场照片"),
    ];
    act_on_case(
        &officer,
        &case_id,
        "form:nth-of-type(2)",
        &asking,
        "补正要求已发送",
    )
    .await;

    // Assert 1: the citizen's open page asks for it, with no reload.
    citizen
        .wait_for_text("#progress .notice", "缺少现场照片")
        .await;
    assert!(
        still_marked(&citizen).await,
        "the citizen's page was reloaded"
    );
    citizen.screenshots("portal-supplement").await;

    // Act 2: the citizen supplies it; the officer approves, and confirms.
    citizen.click("#progress .notice button[type=submit]").await;
    citizen.wait_for_text("#progress .status", "当前状态").await;
    mark(&citizen).await;
    wait_for_case(&officer, &app.address, &case_id).await;
    let deciding = format!(r#"article.case[data-case="{case_id}"] input[name=decision]"#);
    officer.find(&deciding).await;
    act_on_case(&officer, &case_id, "form:nth-of-type(1)", &[], "决定已提交").await;

    // Assert 2: the citizen's page, never reloaded, shows the outcome; the case's history
    // names the officer.
    citizen.wait_for_text("#progress .status", "已办结").await;
    citizen
        .wait_for_text("#progress .outcome", "准予许可")
        .await;
    assert!(
        still_marked(&citizen).await,
        "the citizen's page was reloaded"
    );
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

    // Act 3: the citizen rates the completed case.
    citizen.click("#score-4").await;
    citizen
        .find("#comment")
        .await
        .send_keys("办理很快")
        .await
        .expect("typing");
    citizen.click("#progress form button[type=submit]").await;

    // Assert 3: the rating shows, and the case is among the citizen's own.
    citizen.wait_for_text("#progress .rated", "4 分").await;
    citizen.open(&format!("{}/my", app.address)).await;
    citizen.wait_for_text("table", &case_id).await;
    officer.close().await;
    citizen.close().await;
}
