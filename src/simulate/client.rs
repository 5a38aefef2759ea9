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
        let answer = self
            .send(self.client.post(self.url(&path)).json(form), token)
            .await?;
        answer["case_id"]
            .as_str()
            .map(|id| CaseId::from_string(id.to_owned()))
            .ok_or_else(|| format!("POST {path} answered no case id: {answer}"))
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Result<Value, String> {
        self.send(self.client.get(self.url(path)), token).await
    }

    /// `POST path` with `body` and `token`.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Result<Value, String> {
        self.send(self.client.post(self.url(path)).json(body), token)
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` with `token`; the JSON answer of a 2xx, or what went wrong.
    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> Result<Value, String> {
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }
}
