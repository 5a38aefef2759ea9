//! The screens' pages over plain HTTP (issue 17): what a browser is sent, and the refusals a
//! browser test would not see. `tests/browser` uses them in Chromium.

use crate::helpers::spawn_app;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

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
    let refused = client
        .post(&form_url)
        .header("cookie", &session)
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("key", "k-refused"),
            ("name", "李四"),
            ("id_number", "123"),
            ("phone", "13800000000"),
            ("region", "500103|500103001"),
            ("materials", "id_card"),
            ("materials", "premises_proof"),
        ])
        .send()
        .await
        .expect("an answer");

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
