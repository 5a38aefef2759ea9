//! The keys that verify tokens: a JSON Web Key Set from a file or from the identity provider's
//! URL, or the development key. Only signature keys of asymmetric algorithms are kept: a shared
//! secret (`kty: oct`) in a set is skipped, so an HMAC-signed token can never be checked
//! against a public key used as its secret.

use super::development::DevelopmentKey;
use super::AuthError;
use crate::settings::{AuthSettings, KeySource};
use anyhow::Context as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// How long a fetch of the provider's key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One verifying key and the algorithms it verifies.
pub(super) struct VerifyingKey {
    /// Its `kid`, if the set gave one.
    kid: Option<String>,
    /// The key.
    pub(super) decoding: DecodingKey,
    /// The algorithms a token signed with it may name.
    algorithms: Vec<Algorithm>,
}

impl VerifyingKey {
    /// The key a JWK describes, or why it is not kept.
    pub(super) fn from_jwk(jwk: &Jwk) -> Result<Self, String> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err("an encryption key (`use: enc`)".into());
        }
        let algorithms = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                ref other => return Err(format!("an EC key on the unsupported curve {other:?}")),
            },
            AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
            AlgorithmParameters::OctetKey(_) => {
                return Err("a shared secret (`kty: oct`): only public keys verify tokens".into())
            }
            _ => return Err("a key of an unknown type".into()),
        };
        // A key that names its algorithm verifies that one only.
        let algorithms = match jwk.common.key_algorithm {
            Some(named) => {
                let named = named
                    .to_string()
                    .parse::<Algorithm>()
                    .map_err(|_| format!("a key for {named}, which signs no token"))?;
                if !algorithms.contains(&named) {
                    return Err(format!("a key whose `alg` {named:?} does not fit its type"));
                }
                vec![named]
            }
            None => algorithms,
        };
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("unreadable ({e})"))?;
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            decoding,
            algorithms,
        })
    }

    /// Whether a token whose header names `alg` may be checked with this key.
    pub(super) fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// For an error message: its id and algorithms.
    pub(super) fn describe(&self) -> String {
        format!(
            "`{}`, {:?}",
            self.kid.as_deref().unwrap_or("without id"),
            self.algorithms
        )
    }
}

/// The keys of a set that can verify tokens; the others are logged and skipped.
fn usable(set: &JwkSet, from: &str) -> Vec<Arc<VerifyingKey>> {
    set.keys
        .iter()
        .filter_map(|jwk| match VerifyingKey::from_jwk(jwk) {
            Ok(key) => Some(Arc::new(key)),
            Err(why) => {
                tracing::warn!(
                    kid = jwk.common.key_id.as_deref().unwrap_or(""),
                    "skipping a key of {from}: {why}"
                );
                None
            }
        })
        .collect()
}

/// The key named `kid` among `keys`; a token without `kid` may use the only key there is.
fn pick(keys: &[Arc<VerifyingKey>], kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
        None if keys.len() == 1 => keys.first().cloned(),
        None => None,
    }
}

/// The verifying keys of a service.
pub(super) enum KeyRing {
    /// Read once: a JWKS file or the development key.
    Fixed(Vec<Arc<VerifyingKey>>),
    /// The provider's set, fetched again when a token names a key it lacks.
    Remote(RemoteKeys),
}

impl KeyRing {
    /// The keys `settings` name.
    pub(super) async fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        match settings.key_source() {
            Some(KeySource::File(path)) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("Failed to read auth.jwks_file {}", path.display()))?;
                let set: JwkSet = serde_json::from_str(&text).with_context(|| {
                    format!("auth.jwks_file {} is not a JWK set", path.display())
                })?;
                let keys = usable(&set, &path.display().to_string());
                anyhow::ensure!(
                    !keys.is_empty(),
                    "auth.jwks_file {} holds no key that can verify a token",
                    path.display()
                );
                Ok(Self::Fixed(keys))
            }
            Some(KeySource::Development(path)) => {
                let key = DevelopmentKey::load_or_create(&path)?;
                tracing::warn!(
                    file = %path.display(),
                    "tokens are checked against the DEVELOPMENT key (auth.development_keys): \
                     anyone who can read that file can act as anyone; name your identity \
                     provider (auth.jwks_url or auth.jwks_file) before serving real people"
                );
                let jwk = key.public_jwk()?;
                let key = VerifyingKey::from_jwk(&jwk)
                    .map_err(|why| anyhow::anyhow!("the development key is {why}"))?;
                Ok(Self::Fixed(vec![Arc::new(key)]))
            }
            Some(KeySource::Url(url)) => {
                let remote =
                    RemoteKeys::new(url, Duration::from_secs(settings.jwks_refetch_min_secs))?;
                if let Err(error) = remote.refresh().await {
                    tracing::warn!(
                        "{error}; tokens are refused until the key set can be fetched (tried \
                         again when one comes)"
                    );
                }
                Ok(Self::Remote(remote))
            }
            None => anyhow::bail!("no source of token keys is configured ([auth])"),
        }
    }

    /// The usable keys of `set`, read once.
    pub(super) fn fixed(set: &JwkSet) -> anyhow::Result<Self> {
        let keys = usable(set, "the given key set");
        anyhow::ensure!(
            !keys.is_empty(),
            "the key set holds no key that can verify a token"
        );
        Ok(Self::Fixed(keys))
    }

    /// Whether `key` is still one of the ring's (a set fetched again holds new keys).
    pub(super) async fn holds(&self, key: &Arc<VerifyingKey>) -> bool {
        match self {
            KeyRing::Fixed(keys) => keys.iter().any(|k| Arc::ptr_eq(k, key)),
            KeyRing::Remote(remote) => remote.keys.read().await.iter().any(|k| Arc::ptr_eq(k, key)),
        }
    }

    /// The key a token names by `kid`.
    pub(super) async fn find(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, AuthError> {
        let unknown = || match kid {
            Some(kid) => AuthError::Invalid(format!("no configured key has id `{kid}`")),
            None => AuthError::Invalid(
                "it names no key (`kid`) and more than one key is configured".into(),
            ),
        };
        match self {
            KeyRing::Fixed(keys) => pick(keys, kid).ok_or_else(unknown),
            KeyRing::Remote(remote) => {
                if let Some(key) = pick(&remote.keys.read().await, kid) {
                    return Ok(key);
                }
                remote.refresh_for_unknown_key().await?;
                let keys = remote.keys.read().await;
                if keys.is_empty() {
                    // No fetch has succeeded yet (and the last one was too recent to try
                    // again): the token is not known to be bad, the provider is away.
                    return Err(AuthError::KeysUnavailable(format!(
                        "no key set fetched from {} yet",
                        remote.url
                    )));
                }
                pick(&keys, kid).ok_or_else(unknown)
            }
        }
    }
}

/// An identity provider's key set, as last fetched.
pub(super) struct RemoteKeys {
    /// Its URL.
    url: String,
    /// A client kept for every fetch.
    client: reqwest::Client,
    /// The keys of the last successful fetch.
    keys: RwLock<Vec<Arc<VerifyingKey>>>,
    /// When the last fetch began; held while one runs, so concurrent requests fetch once.
    last_fetch: Mutex<Option<Instant>>,
    /// Least time between two fetches for unknown keys.
    min_interval: Duration,
}

impl RemoteKeys {
    /// Keys to be fetched from `url`.
    fn new(url: String, min_interval: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .context("Failed to build the HTTP client for auth.jwks_url")?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(Vec::new()),
            last_fetch: Mutex::new(None),
            min_interval,
        })
    }

    /// Fetches the set again unless it was fetched less than `min_interval` ago.
    async fn refresh_for_unknown_key(&self) -> Result<(), AuthError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        self.fetch_and_keep().await
    }

    /// Fetches the set now.
    async fn refresh(&self) -> Result<(), AuthError> {
        *self.last_fetch.lock().await = Some(Instant::now());
        self.fetch_and_keep().await
    }

    /// Fetches the set and keeps its usable keys (all of them replace the previous ones, so a
    /// key the provider withdrew stops verifying).
    async fn fetch_and_keep(&self) -> Result<(), AuthError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            AuthError::KeysUnavailable(format!("GET {}: {e}", self.url))
        };
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| unavailable(&e))?;
        let set: JwkSet = response.json().await.map_err(|e| unavailable(&e))?;
        let keys = usable(&set, &self.url);
        tracing::info!(url = %self.url, keys = keys.len(), "fetched the identity provider's keys");
        *self.keys.write().await = keys;
        Ok(())
    }
}
