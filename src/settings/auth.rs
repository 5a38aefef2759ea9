//! `[auth]`: who signs the bearer tokens the HTTP API accepts, and the token this process shows
//! to other govfusion processes.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The `iss` every token must carry: the identity provider's issuer URL, e.g.
    /// `https://idp.city.gov.cn/realms/city`.
    pub issuer: String,
    /// The `aud` every token must carry (one of its audiences): this service's client id at
    /// the identity provider.
    pub audience: String,
    /// The identity provider's JSON Web Key Set, e.g.
    /// `https://idp.city.gov.cn/realms/city/protocol/openid-connect/certs`. Fetched at start,
    /// kept, and fetched again when a token names a key it lacks, so the provider can rotate
    /// its keys while the service runs.
    pub jwks_url: String,
    /// Or a JSON Web Key Set in a file, read at start.
    pub jwks_file: String,
    /// Development only: tokens are signed by a key this service makes at its first start and
    /// keeps in `development_key_file`; `govfusion token` mints them for any role. Anyone who
    /// can read that file can act as anyone, so a configuration must say this explicitly, and
    /// cannot say it together with `jwks_url` or `jwks_file`.
    pub development_keys: bool,
    /// Where the development key is kept (made at first start when missing).
    pub development_key_file: PathBuf,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Least time between two fetches of `jwks_url` caused by tokens naming unknown keys, in
    /// seconds, so tokens with made-up key ids cannot make the service hammer the provider.
    pub jwks_refetch_min_secs: u64,
    /// The bearer token this process presents to another govfusion process (the intake feed a
    /// governance process reads), in a file read again at every request so that whatever renews
    /// it (a sidecar doing the client-credentials grant) can replace it while the service runs.
    /// `GOVFUSION_SERVICE_TOKEN` in the environment is used when this is empty. With
    /// development keys and neither given, the process mints its own service token.
    pub service_token_file: String,
    /// The screens' sign-in at the identity provider (`[auth.oidc]`).
    pub oidc: OidcSettings,
}

/// `[auth.oidc]`: the screens sign people in with the OpenID Connect authorization code flow
/// and PKCE (S256) at these endpoints; the access token they get is the session's bearer token,
/// which the API checks like any other. Off while `client_id` is empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// The provider's authorization endpoint, e.g.
    /// `https://idp.city.gov.cn/realms/city/protocol/openid-connect/auth`.
    pub authorization_url: String,
    /// The provider's token endpoint.
    pub token_url: String,
    /// This service's client id at the provider.
    pub client_id: String,
    /// A file holding the client's secret, for a confidential client; empty for a public one
    /// (PKCE alone).
    pub client_secret_file: String,
    /// Where the provider sends the person back: this service's `/signin/callback` as the
    /// browser reaches it, e.g. `https://zwfw.example.gov.cn/signin/callback`.
    pub redirect_url: String,
    /// The scopes asked for, space-separated.
    pub scopes: String,
}

impl OidcSettings {
    /// Whether the screens sign in at the provider.
    pub fn enabled(&self) -> bool {
        !self.client_id.trim().is_empty()
    }

    /// What these settings lack or get wrong, by key.
    pub fn problems(&self) -> Vec<(&'static str, String, &'static str)> {
        if !self.enabled() {
            return Vec::new();
        }
        let urls = [
            ("auth.oidc.authorization_url", &self.authorization_url),
            ("auth.oidc.token_url", &self.token_url),
            ("auth.oidc.redirect_url", &self.redirect_url),
        ];
        urls.into_iter()
            .filter(|(_, url)| !(url.starts_with("https://") || url.starts_with("http://")))
            .map(|(key, url)| {
                (
                    key,
                    url.clone(),
                    "must be an http(s) URL when auth.oidc.client_id is set",
                )
            })
            .collect()
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: "govfusion".into(),
            jwks_url: String::new(),
            jwks_file: String::new(),
            development_keys: false,
            development_key_file: PathBuf::from(".govfusion/development-signing-key.pem"),
            leeway_secs: 30,
            jwks_refetch_min_secs: 10,
            service_token_file: String::new(),
            oidc: OidcSettings::default(),
        }
    }
}

/// Where the keys that verify tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An identity provider's JWKS endpoint.
    Url(String),
    /// A JWKS file.
    File(PathBuf),
    /// The development key in this file.
    Development(PathBuf),
}

impl AuthSettings {
    /// Where the keys come from, or `None` when the configuration names no source or more
    /// than one (a rule [`Settings::validate`](super::Settings::validate) reports).
    pub fn key_source(&self) -> Option<KeySource> {
        let url = self.jwks_url.trim();
        let file = self.jwks_file.trim();
        match (url.is_empty(), file.is_empty(), self.development_keys) {
            (false, true, false) => Some(KeySource::Url(url.to_owned())),
            (true, false, false) => Some(KeySource::File(PathBuf::from(file))),
            (true, true, true) => Some(KeySource::Development(self.development_key_file.clone())),
            _ => None,
        }
    }

    /// Whether tokens are signed by the development key.
    pub fn uses_development_keys(&self) -> bool {
        matches!(self.key_source(), Some(KeySource::Development(_)))
    }
}
