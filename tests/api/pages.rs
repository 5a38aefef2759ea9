//! The screens' pages over plain HTTP (issue 17): what a browser is sent, and the refusals a
//! browser test would not see. `tests/browser` uses them in Chromium.

use crate::helpers::{
    assert_status, make_manual, poll, spawn_app, spawn_app_with, Caller, TestApp,
};
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

/// A client that shows redirects instead of following them.
fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("a client")
}

/// Signs in at `address` as applicant `account`; the session cookie (`name=value`).
async fn signed_in(client: &reqwest::Client, address: &str, account: &str) -> String {
    let response = client
        .post(format!("{address}/signin"))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("account", account),
            ("name", "测试"),
            ("role", "applicant"),
        ])
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    cookie.split(';').next().unwrap_or_default().to_owned()
}

/// The portal's form for individual_business_registration under idempotency key `key`, with
/// identity number `id_number`.
fn application_form<'a>(key: &'a str, id_number: &'a str) -> [(&'a str, &'a str); 7] {
    [
        ("key", key),
        ("name", "李四"),
        ("id_number", id_number),
        ("phone", "13800000000"),
        ("region", "500103|500103001"),
        ("materials", "id_card"),
        ("materials", "premises_proof"),
    ]
}

#[actix_web::test]
async fn the_pages_are_chinese_html_under_a_policy_of_their_own_and_the_api_keeps_its_own() {
    // Arrange
    let app = spawn_app().await;
    let client = browser_like();

    // Act
    let home = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("an answer");
    let api = client
        .get(format!("{}/api/v1/matters", app.address))
        .send()
        .await
        .expect("an answer");

    // Assert
    assert_eq!(home.status(), 200);
    let policy = home.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let page = home.text().await.expect("a page");
    assert!(page.contains(r#"<html lang="zh-CN">"#), "{page}");
    assert!(page.contains("个体工商户设立登记"), "{page}");
    assert!(page.contains(r#"href="/apply/individual_business_registration""#));
    let api_policy = api.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap_or_default();
    assert_eq!(api_policy, "default-src 'none'; frame-ancestors 'none'");
}

#[actix_web::test]
async fn signing_in_sets_a_cookie_no_script_reads_and_a_form_from_another_site_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let client = browser_like();
    let form = [("account", "citizen-pages"), ("role", "applicant")];

    // Act
    let cross = client
        .post(format!("{}/signin", app.address))
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .expect("an answer");
    let same = client
        .post(format!("{}/signin", app.address))
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .expect("an answer");

    // Assert
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get(SET_COOKIE).is_none());
    assert_eq!(same.status(), 303);
    let cookie = same.headers()[SET_COOKIE].to_str().unwrap_or_default();
    assert!(cookie.starts_with("govfusion_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
}

#[actix_web::test]
async fn the_form_needs_a_session_and_shows_the_apis_refusal_in_words_without_making_a_case() {
    // Arrange
    let app = spawn_app().await;
    let client = browser_like();
    let form_url = format!("{}/apply/individual_business_registration", app.address);
    let anonymous = client.get(&form_url).send().await.expect("an answer");
    let session = signed_in(&client, &app.address, "citizen-refused").await;

    // Act: an identity number of three digits.
    let refused = posted_form(
        &client,
        &form_url,
        &session,
        &application_form("k-refused", "123"),
    )
    .await;

    // Assert
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()[LOCATION], "/signin");
    assert_eq!(refused.status(), 200);
    let page = refused.text().await.expect("a page");
    assert!(page.contains("申请未被受理"), "{page}");
    assert!(page.contains("not 3"), "the API's own reason: {page}");
    assert!(page.contains("请检查：公民身份号码"), "{page}");
    assert!(
        page.contains(r#"value="李四""#),
        "what was typed stays: {page}"
    );
    let own = client
        .get(format!("{}/my", app.address))
        .header("cookie", &session)
        .send()
        .await
        .expect("an answer");
    let own = own.text().await.expect("a page");
    assert!(own.contains("还没有办件"), "{own}");
}

/// `form` posted to `url` from one of the service's own pages, for the session `cookie`.
async fn posted_form(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(url)
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .expect("an answer")
}

/// The page at `path` for the session `cookie`, asserting 200.
async fn page_at(client: &reqwest::Client, address: &str, cookie: &str, path: &str) -> String {
    let response = client
        .get(format!("{address}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.expect("a page")
}

#[actix_web::test]
async fn after_supplying_the_page_follows_the_case_and_offers_the_form_no_more() {
    // Arrange: a citizen's case at market, whose staff decide by hand, suspended for a
    // material.
    let app = spawn_app_with(|settings| make_manual(settings, "market")).await;
    let client = browser_like();
    let session = signed_in(&client, &app.address, "citizen-supplying").await;
    let applied = posted_form(
        &client,
        &format!("{}/apply/individual_business_registration", app.address),
        &session,
        &application_form("k-supplying", "11010519491231002X"),
    )
    .await;
    assert_eq!(applied.status(), 303);
    let case_page = applied.headers()[LOCATION]
        .to_str()
        .expect("a location")
        .to_owned();
    let case_id = case_page.rsplit('/').next().expect("a case id").to_owned();
    app.wait_for_inbox_case("market", &case_id).await;
    let asked = app
        .post_json(
            &format!("/api/v1/departments/market/cases/{case_id}/supplement-request"),
            &json!({ "materials": ["premises_proof"], "reason": "房屋证明复印件不清晰" }),
        )
        .await;
    assert_status(asked, 200).await;
    wait_for_applicants_view(&app, &case_id, "suspended").await;
    let offered = page_at(&client, &app.address, &session, &case_page).await;

    // Act: the citizen supplies it, and the browser follows the redirect.
    let supplied = posted_form(
        &client,
        &format!("{}/my/cases/{case_id}/supplement", app.address),
        &session,
        &[
            ("key", "k-supplied"),
            ("sequence", "1"),
            ("materials", "premises_proof"),
        ],
    )
    .await;
    let location = supplied.headers()[LOCATION]
        .to_str()
        .expect("a location")
        .to_owned();
    let followed = page_at(&client, &app.address, &session, &location).await;

    // Assert: the form was offered while the department waited, not after; the page names the
    // suspension supplied and keeps asking for the case's progress until the department
    // resumes it (the case stays suspended until then, however briefly).
    assert!(offered.contains("提交补正材料"), "{offered}");
    assert_eq!(supplied.status(), 303);
    assert_eq!(location, format!("/my/cases/{case_id}?supplied=1"));
    assert!(!followed.contains("提交补正材料"), "{followed}");
    let still_suspended = followed.contains(r#"data-status="suspended""#);
    assert!(
        !still_suspended || followed.contains("补正材料已提交"),
        "{followed}"
    );
    assert!(
        followed.contains(&format!(r#"hx-get="/my/cases/{case_id}/progress"#)),
        "the page follows the case: {followed}"
    );
    // The department resumes it: the case is accepted again, its suspension over.
    let resumed = wait_for_applicants_view(&app, &case_id, "accepted").await;
    assert!(resumed["suspension"].is_null(), "{resumed}");
}

/// Waits until the case of `citizen-supplying`, as its applicant sees it, is `status`; the
/// case then.
async fn wait_for_applicants_view(app: &TestApp, case_id: &str, status: &str) -> Value {
    let applicant = Caller::Applicant("citizen-supplying".into());
    let path = format!("/api/v1/cases/{case_id}");
    poll(&format!("case {case_id} to be {status}"), || async {
        let case = assert_status(app.get_as(&applicant, &path).await, 200).await;
        match case["status"].as_str() {
            Some(now) if now == status => Ok(case),
            _ => Err(case.to_string()),
        }
    })
    .await
}
