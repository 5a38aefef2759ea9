//! The simulator's clients: applicants and officers acting through the HTTP API, each with a
//! token minted with the development key, as any client of a service on development keys does.

use crate::auth::development::DevelopmentKey;
use crate::auth::{RoleClaims, RoleName};
use crate::domain::{CaseId, DepartmentCode, TerminalId};
use crate::settings::{KeySource, Settings};
use anyhow::Context as _;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How long a simulated token is valid: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// How many times a POST is sent in all when the connection fails or its key is still being
/// handled, as a terminal that keeps its `Idempotency-Key` retries.
const POST_ATTEMPTS: u32 = 6;

/// The wait before the first retry of a POST; doubled before each next one.
const FIRST_RETRY_AFTER: Duration = Duration::from_millis(50);

/// How long an idle connection is kept for the next request: under actix-web's keep-alive
/// (5 s), so that a request is not sent on a connection the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// The API of the simulated city, and the key its tokens are minted with.
#[derive(Clone)]
pub struct Api {
    /// A client kept for every request.
    client: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    base: String,
    /// The development key.
    key: Arc<DevelopmentKey>,
    /// The issuer tokens must name.
    issuer: String,
    /// The audience tokens must name.
    audience: String,
}

impl Api {
    /// The API on `port` of a service configured by `settings`, which must use development
    /// keys: the simulator mints its own tokens.
    pub fn new(port: u16, settings: &Settings) -> anyhow::Result<Self> {
        let Some(KeySource::Development(path)) = settings.auth.key_source() else {
            anyhow::bail!(
                "simulate acts through the API with tokens it mints with the development key: \
                 run it with a configuration that sets auth.development_keys = true"
            );
        };
        Ok(Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .pool_idle_timeout(POOL_IDLE)
                .build()
                .context("Failed to build the HTTP client")?,
            base: format!("http://127.0.0.1:{port}"),
            key: Arc::new(DevelopmentKey::load_or_create(&path)?),
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
        })
    }

    /// A token for `role`, `sub`, scoped to `department` for an officer.
    fn token(&self, role: RoleName, sub: String, department: Option<DepartmentCode>) -> String {
        let claims = RoleClaims {
            name: Some(format!("模拟 {sub}")),
            sub,
            role,
            terminal: None,
            department,
            centre: None,
        };
        // Signing claims this simple with a key that loaded cannot fail; an empty token would
        // be refused 401 and counted as a case not completed.
        self.key
            .mint(&self.issuer, &self.audience, claims, TOKEN_TTL)
            .unwrap_or_default()
    }

    /// An applicant's token.
    pub fn applicant(&self, account: String) -> String {
        self.token(RoleName::Applicant, account, None)
    }

    /// The token of officer number `n` of `department`.
    pub fn officer(&self, department: &DepartmentCode, n: usize) -> String {
        self.token(
            RoleName::Officer,
            format!("simulate-{department}-{n}"),
            Some(department.clone()),
        )
    }

    /// Submits `form` at `terminal` as the applicant of `token`; the new case's id.
    pub async fn submit(
        &self,
        terminal: &TerminalId,
        token: &str,
        form: &Value,
    ) -> Result<CaseId, String> {
        let path = format!("/api/v1/terminals/{terminal}/applications");
        let answer = self.post(&path, token, form).await?;
        answer["case_id"]
            .as_str()
            .map(CaseId::from_string)
            .ok_or_else(|| format!("POST {path} answered no case id: {answer}"))
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Result<Value, String> {
        self.send(self.client.get(self.url(path)), token)
            .await
            .map_err(|failure| failure.to_string())
    }

    /// `POST path` with `body` and `token`, under an `Idempotency-Key` of its own: when the
    /// connection fails (the request may or may not have been handled) or the server is still
    /// handling the key, the same request is sent again after a backoff, and the service answers
    /// a retry of a handled request with the first answer, never acting twice.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Result<Value, String> {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let mut wait = FIRST_RETRY_AFTER;
        let mut attempt = 1;
        loop {
            let request = self
                .client
                .post(self.url(path))
                .header("Idempotency-Key", &key)
                .json(body);
            match self.send(request, token).await {
                Err(Failure::Transport(_)) | Err(Failure::KeyInUse(_))
                    if attempt < POST_ATTEMPTS =>
                {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                answer => return answer.map_err(|failure| failure.to_string()),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` with `token`; the JSON answer of a 2xx, or what went wrong.
    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> Result<Value, Failure> {
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else if status == reqwest::StatusCode::CONFLICT
            && body["error"] == "idempotency_key_in_use"
        {
            Err(Failure::KeyInUse(body))
        } else {
            Err(Failure::Answered(format!("{status}: {body}")))
        }
    }
}

/// Why a request got no 2xx answer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No answer came: the connection failed before or after the request was sent.
    #[error("{0}")]
    Transport(String),
    /// 409: a request with the same `Idempotency-Key` is still being handled.
    #[error("409 Conflict: {0}")]
    KeyInUse(Value),
    /// Any other answer, with its status and body.
    #[error("{0}")]
    Answered(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Reads one request's head and body from `stream`; its `Idempotency-Key`.
    async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await.expect("a request");
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= head_end + 4 + length {
                    return text[..head_end]
                        .lines()
                        .find_map(|line| line.strip_prefix("idempotency-key: "))
                        .unwrap_or_default()
                        .to_owned();
                }
            }
        }
    }

    #[tokio::test]
    async fn a_post_whose_connection_fails_is_sent_again_under_the_same_key() {
        // Arrange: a server that drops the first connection after reading its request, then
        // answers 409 "in use" once, then 202.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let server = tokio::spawn(async move {
            let mut keys = Vec::new();
            for answer in [None, Some((409, "idempotency_key_in_use")), Some((202, ""))] {
                let (mut stream, _) = listener.accept().await.expect("a connection");
                keys.push(read_request(&mut stream).await);
                let Some((status, error)) = answer else {
                    continue; // dropped unanswered
                };
                let body = if status == 202 {
                    r#"{"case_id":"c1"}"#.to_owned()
                } else {
                    format!(r#"{{"error":"{error}","message":"busy"}}"#)
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: \
                     {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream
                    .write_all(response.as_bytes())
                    .await
                    .expect("an answer");
            }
            keys
        });
        let api = Api {
            client: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            key: Arc::new(DevelopmentKey::generate().expect("a key")),
            issuer: "issuer".into(),
            audience: "audience".into(),
        };

        // Act
        let answer = api
            .post("/api/v1/x", "token", &serde_json::json!({"a": 1}))
            .await;

        // Assert: answered at the third attempt, every attempt under one key.
        assert_eq!(answer, Ok(serde_json::json!({"case_id": "c1"})));
        let keys = server.await.expect("the server ran");
        assert_eq!(keys.len(), 3);
        assert!(!keys[0].is_empty(), "no Idempotency-Key sent");
        assert!(keys.iter().all(|key| key == &keys[0]), "{keys:?}");
    }

    #[tokio::test]
    async fn a_post_refused_for_a_reason_of_its_own_is_not_sent_again() {
        // Arrange
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a connection");
            read_request(&mut stream).await;
            let body = r#"{"error":"invalid_field","message":"no"}"#;
            let response = format!(
                "HTTP/1.1 422 X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            stream
                .write_all(response.as_bytes())
                .await
                .expect("an answer");
            // A second connection would be a retry.
            tokio::time::timeout(Duration::from_millis(500), listener.accept())
                .await
                .is_ok()
        });
        let api = Api {
            client: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            key: Arc::new(DevelopmentKey::generate().expect("a key")),
            issuer: "issuer".into(),
            audience: "audience".into(),
        };

        // Act
        let answer = api.post("/api/v1/x", "token", &serde_json::json!({})).await;

        // Assert
        let error = answer.expect_err("a 422 is an error");
        assert!(error.starts_with("422"), "{error}");
        assert!(
            !server.await.expect("the server ran"),
            "the POST was sent again"
        );
    }
}
