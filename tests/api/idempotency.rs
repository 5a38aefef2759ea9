//! `Idempotency-Key` on the API's POSTs: a retry answers the first result and acts no second
//! time; a key reused for another request or a malformed key is refused. And a body that never
//! arrives is answered 408 instead of holding the connection.

use crate::helpers::{
    assert_refused, assert_status, json_body, spawn_app, spawn_app_with, TestApp,
};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// `POST path` with `body` and the header `Idempotency-Key: key`.
async fn post_with_key(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    let caller = app.caller_for(path);
    crate::common::callers::with_token(app.client.post(format!("{}{path}", app.address)), &caller)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("Failed to execute request")
}

/// A token of the applicant who submits in these tests.
fn applicant_token() -> String {
    crate::helpers::Caller::applicant()
        .token()
        .expect("an applicant has a token")
}

/// Where [`crate::common::app::TERMINAL`] submits.
fn submit_path() -> String {
    format!(
        "/api/v1/terminals/{}/applications",
        crate::helpers::TERMINAL
    )
}

/// The case ids the intake system has taken in, from its feed.
async fn cases_taken_in(app: &TestApp) -> Vec<String> {
    let feed = app
        .get_json("/api/v1/intake/feed?after=0&max=5000&wait_ms=2000")
        .await;
    feed.as_array()
        .unwrap_or_else(|| panic!("the feed is not a list: {feed}"))
        .iter()
        .map(|fed| {
            fed["application"]["case_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn a_retried_submission_answers_the_first_case_and_creates_no_other() {
    // Arrange
    let app = spawn_app().await;
    let body = app.application_body("residence_permit");
    let first = post_with_key(&app, &submit_path(), "retry-1", &body).await;
    let first = assert_status(first, 202).await;

    // Act: the client did not see the answer and sends the same request again.
    let again = post_with_key(&app, &submit_path(), "retry-1", &body).await;

    // Assert
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..]),
        "a replayed answer says so"
    );
    let again = assert_status(again, 202).await;
    assert_eq!(again, first, "the retry gets the first answer");
    let case_id = first["case_id"].as_str().expect("a case id");
    app.wait_until_completed(case_id).await;
    assert_eq!(
        cases_taken_in(&app).await,
        vec![case_id.to_owned()],
        "the retry must not have created a second case"
    );
}

#[actix_web::test]
async fn a_key_reused_with_another_body_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let body = app.application_body("residence_permit");
    let first = post_with_key(&app, &submit_path(), "reused", &body).await;
    assert_status(first, 202).await;

    // Act
    let other = app.application_body("restaurant_opening");
    let reused = post_with_key(&app, &submit_path(), "reused", &other).await;

    // Assert
    assert_refused(reused, 422, "idempotency_key_reused").await;
    assert_eq!(
        cases_taken_in(&app).await.len(),
        1,
        "nothing more was taken in"
    );
}

#[actix_web::test]
async fn a_staff_decision_sent_twice_with_its_key_answers_the_first_decision() {
    // Arrange: urban_management decides by hand; without a key a second decision is 409.
    let app = spawn_app().await;
    let (case_id, path) = app.case_to_decide().await;
    let decision = json!({ "decision": "approve", "opinion": "同意设置" });
    let first = post_with_key(&app, &path, "decide-1", &decision).await;
    let first = assert_status(first, 200).await;

    // Act
    let again = post_with_key(&app, &path, "decide-1", &decision).await;

    // Assert
    let again = assert_status(again, 200).await;
    assert_eq!(again, first, "the retry gets the first answer");
    let case = app.wait_until_decided(&case_id, "approved").await;
    let decided = crate::helpers::history_entries(&case, "approval.published");
    assert_eq!(decided.len(), 1, "decided once: {case}");
}

#[actix_web::test]
async fn an_empty_or_overlong_key_is_refused_and_nothing_is_submitted() {
    // Arrange
    let app = spawn_app().await;
    let body = app.application_body("residence_permit");

    // Act
    let empty = post_with_key(&app, &submit_path(), "", &body).await;
    let long = post_with_key(&app, &submit_path(), &"k".repeat(256), &body).await;

    // Assert
    assert_refused(empty, 400, "invalid_idempotency_key").await;
    assert_refused(long, 400, "invalid_idempotency_key").await;
    let feed = app
        .get_json("/api/v1/intake/feed?after=0&max=10&wait_ms=200")
        .await;
    assert_eq!(feed, json!([]), "a refused request submits nothing");
}

/// Sends `head` on a raw connection and no body; returns what the server answers until it
/// closes the connection (or a generous read timeout passes), and whether it closed it.
fn send_head_only(address: &str, head: &str) -> (String, bool) {
    let authority = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("Failed to connect");
    // A bound on waiting, not a performance claim: the server answers well before.
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("Failed to set a read timeout");
    stream.write_all(head.as_bytes()).expect("Failed to write");
    let mut answer = Vec::new();
    // Reads until the server closes; a read timeout ends the loop too (and the test fails).
    let mut buffer = [0_u8; 4096];
    let mut closed = false;
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            closed = true;
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[actix_web::test]
async fn a_body_that_never_arrives_is_answered_408_and_the_connection_closed() {
    // Arrange
    let app = spawn_app_with(|s| s.http.body_timeout_ms = 300).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: 100\r\n\r\n",
        submit_path(),
        applicant_token()
    );
    let address = app.address.clone();

    // Act: headers, then nothing.
    let (answer, closed) = tokio::task::spawn_blocking(move || send_head_only(&address, &head))
        .await
        .expect("the raw client panicked");

    // Assert
    assert!(closed, "the server should close the connection: {answer}");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {answer:?}"));
    assert!(head.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["error"], "request_timeout", "{body}");
    let feed = app
        .get_json("/api/v1/intake/feed?after=0&max=10&wait_ms=200")
        .await;
    assert_eq!(feed, json!([]), "nothing was submitted");
}

#[actix_web::test]
async fn a_body_that_never_arrives_with_a_key_is_408_and_frees_the_key() {
    // Arrange
    let app = spawn_app_with(|s| s.http.body_timeout_ms = 300).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nIdempotency-Key: slow-1\r\nContent-Length: 100\r\n\r\n",
        submit_path(),
        applicant_token()
    );
    let address = app.address.clone();

    // Act
    let (answer, _) = tokio::task::spawn_blocking(move || send_head_only(&address, &head))
        .await
        .expect("the raw client panicked");

    // Assert: 408, and the whole request sent again with the key is handled.
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = app.application_body("residence_permit");
    let retry = post_with_key(&app, &submit_path(), "slow-1", &body).await;
    let retry = json_body(retry).await;
    assert!(retry["case_id"].is_string(), "{retry}");
}
