//! Who is calling: bearer tokens (OIDC access tokens, JWTs) checked against the identity
//! provider's keys, and the principal a valid token names.
//!
//! A token is accepted when its signature verifies with a key of the configured set (an
//! asymmetric key: RSA, EC or Ed25519; `alg: none` cannot be parsed and an HMAC token never
//! matches such a key), its `iss` and `aud` are the configured ones, its `exp` has not passed
//! and its `nbf`, when present, has. The claims that say what the caller may do are this
//! service's own (an identity provider adds them with a claim mapper):
//!
//! | claim        | meaning                                                               |
//! |--------------|-----------------------------------------------------------------------|
//! | `sub`        | who: recorded on every act                                            |
//! | `name`       | the display name recorded beside `sub` (optional)                     |
//! | `role`       | `applicant`, `terminal`, `officer`, `dispatcher`, `supervisor`, `operator` or `service` |
//! | `terminal`   | for `terminal`: the terminal id it submits as                         |
//! | `department` | for `officer`: the department code                                    |
//! | `centre`     | for `dispatcher`: the governance centre code                          |
//!
//! # Layout
//!
//! * `keys` — the verifying keys: a JWKS file, a JWKS URL (refetched on an unknown key id), or
//!   the development key.
//! * [`service_token`] — the token this process shows to another govfusion process.
//! * [`development`] — the development signing key and the minting of tokens with it.

pub mod development;
mod keys;
pub mod service_token;

use crate::domain::{CentreCode, DepartmentCode, TerminalId};
use crate::settings::AuthSettings;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use keys::KeyRing;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest `sub` a token may carry.
pub const MAX_SUB_CHARS: usize = 128;
/// Longest `name` a token may carry.
pub const MAX_NAME_CHARS: usize = 100;

/// What a caller may do, from the token's `role` and the code it is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A person applying: their own cases only.
    Applicant,
    /// A terminal (a kiosk, a window, the app's back end): submits only as itself, and acts on
    /// the cases submitted there.
    Terminal(TerminalId),
    /// An officer of a department: its inbox, its cases, the collaboration events addressed to
    /// it.
    Officer(DepartmentCode),
    /// A dispatcher of a governance centre: its returned events and their reassignment, the
    /// figures of its subtree.
    Dispatcher(CentreCode),
    /// A supervisor: the figures of the whole city, cases read with personal data masked.
    Supervisor,
    /// An operator of the service: stalled cases and their re-drive.
    Operator,
    /// Another govfusion process: the intake feed.
    Service,
}

/// The caller a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// Its `name`, or `sub` when it has none.
    pub name: String,
    /// What it may do.
    pub grant: Grant,
}

/// The role names of the `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// See [`Grant::Applicant`].
    Applicant,
    /// See [`Grant::Terminal`].
    Terminal,
    /// See [`Grant::Officer`].
    Officer,
    /// See [`Grant::Dispatcher`].
    Dispatcher,
    /// See [`Grant::Supervisor`].
    Supervisor,
    /// See [`Grant::Operator`].
    Operator,
    /// See [`Grant::Service`].
    Service,
}

impl std::str::FromStr for RoleName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
            format!(
                "unknown role `{text}`: applicant, terminal, officer, dispatcher, supervisor, \
                 operator or service"
            )
        })
    }
}

/// The claims of this service's own that a token carries besides the registered ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleClaims {
    /// Who.
    pub sub: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The role.
    pub role: RoleName,
    /// For a terminal: which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalId>,
    /// For an officer: of which department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<DepartmentCode>,
    /// For a dispatcher: of which centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre: Option<CentreCode>,
}

impl RoleClaims {
    /// The principal these claims name, or why they name none (a role without its scope).
    pub fn principal(self) -> Result<Principal, AuthError> {
        let missing = |claim: &str| {
            AuthError::Invalid(format!(
                "the token's role `{:?}` needs a `{claim}` claim",
                self.role
            ))
        };
        let grant = match self.role {
            RoleName::Applicant => Grant::Applicant,
            RoleName::Terminal => {
                Grant::Terminal(self.terminal.clone().ok_or_else(|| missing("terminal"))?)
            }
            RoleName::Officer => Grant::Officer(
                self.department
                    .clone()
                    .ok_or_else(|| missing("department"))?,
            ),
            RoleName::Dispatcher => {
                Grant::Dispatcher(self.centre.clone().ok_or_else(|| missing("centre"))?)
            }
            RoleName::Supervisor => Grant::Supervisor,
            RoleName::Operator => Grant::Operator,
            RoleName::Service => Grant::Service,
        };
        if self.sub.trim().is_empty() {
            return Err(AuthError::Invalid("the token's `sub` is empty".into()));
        }
        // Both travel on the messages the caller's acts cause and on their cases: bounded so
        // that a body the API takes still fits the bus with them.
        if self.sub.chars().count() > MAX_SUB_CHARS {
            return Err(AuthError::Invalid(format!(
                "the token's `sub` is longer than {MAX_SUB_CHARS} characters"
            )));
        }
        if self
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
        {
            return Err(AuthError::Invalid(format!(
                "the token's `name` is longer than {MAX_NAME_CHARS} characters"
            )));
        }
        let name = self
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.sub.clone());
        Ok(Principal {
            subject: self.sub,
            name,
            grant,
        })
    }
}

/// Refuses claims scoped to a terminal, department or centre the city does not have (for
/// `govfusion token`: a typo would mint a token that can do nothing).
pub fn check_scope(
    claims: &RoleClaims,
    settings: &crate::settings::Settings,
) -> anyhow::Result<()> {
    if let Some(terminal) = &claims.terminal {
        anyhow::ensure!(
            settings.terminals.iter().any(|t| &t.id == terminal),
            "no terminal `{terminal}` in the configuration"
        );
    }
    if let Some(department) = &claims.department {
        anyhow::ensure!(
            settings.departments.iter().any(|d| &d.code == department),
            "no department `{department}` in the configuration"
        );
    }
    if let Some(centre) = &claims.centre {
        let governance = &settings.governance;
        let known = governance.city.code == *centre
            || governance.districts.iter().any(|d| &d.code == centre)
            || governance.streets.iter().any(|s| &s.code == centre);
        anyhow::ensure!(
            known,
            "no governance centre `{centre}` in the configuration"
        );
    }
    Ok(())
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("this endpoint needs a bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    /// The token cannot be read, names no known key, or fails a check.
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    /// The identity provider's keys could not be had to check it.
    #[error("the identity provider's keys cannot be fetched to check the token: {0}")]
    KeysUnavailable(String),
}

/// How long a token once verified is taken again without checking its signature, while the
/// key that verified it is still trusted.
const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// How many verified tokens are remembered.
const VERIFIED_KEPT: usize = 10_000;

/// Checks bearer tokens.
pub struct Authenticator {
    /// The verifying keys.
    keys: KeyRing,
    /// Tokens verified lately, by their SHA-256, with whom they name and until when they may
    /// be taken again without a check: [`VERIFIED_FOR`], and never past their `exp`. A client
    /// (a page polling for its case, an officer's day of work) shows the same token at every
    /// request, and an ES256 signature check is the dearest part of a request.
    verified: quick_cache::sync::Cache<[u8; 32], Verified>,
    /// The `iss` required.
    issuer: String,
    /// The `aud` required.
    audience: String,
    /// Clock skew allowed, in seconds.
    leeway_secs: u64,
}

impl Authenticator {
    /// The authenticator `settings` describe. A JWKS URL is fetched now; if the provider cannot
    /// be reached, the service starts anyway and fetches when the first token comes (logged).
    pub async fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        Ok(Self {
            keys: KeyRing::from_settings(settings).await?,
            issuer: settings.issuer.trim().to_owned(),
            audience: settings.audience.trim().to_owned(),
            leeway_secs: settings.leeway_secs,
            verified: quick_cache::sync::Cache::new(VERIFIED_KEPT),
        })
    }

    /// An authenticator trusting the keys of `set` alone, for tokens of `issuer` meant for
    /// `audience` (tests and tools; a service builds its own from settings).
    pub fn trusting(
        set: &jsonwebtoken::jwk::JwkSet,
        issuer: &str,
        audience: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            keys: KeyRing::fixed(set)?,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 0,
            verified: quick_cache::sync::Cache::new(VERIFIED_KEPT),
        })
    }

    /// The principal `token` names, once its signature and claims are checked (or were, lately:
    /// see [`Authenticator::verified`]).
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = SystemTime::now();
        if let Some(seen) = self.verified.get(&digest) {
            // Its key withdrawn since (the provider's set fetched again), it is checked anew.
            if now < seen.until && self.keys.holds(&seen.key).await {
                return Ok(seen.principal);
            }
        }
        let (principal, key, exp) = self.check(token).await?;
        let until = (now + VERIFIED_FOR).min(UNIX_EPOCH + Duration::from_secs(exp));
        let seen = Verified {
            principal: principal.clone(),
            key,
            until,
        };
        self.verified.insert(digest, seen);
        Ok(principal)
    }

    /// Checks `token`'s signature and claims: the principal it names, the key that verified
    /// it, and its `exp`.
    async fn check(
        &self,
        token: &str,
    ) -> Result<(Principal, Arc<keys::VerifyingKey>, u64), AuthError> {
        let header = decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("its header cannot be read ({e})")))?;
        let key = self.keys.find(header.kid.as_deref()).await?;
        if !key.accepts(header.alg) {
            return Err(AuthError::Invalid(format!(
                "it is signed with {:?}, which its key ({}) does not verify",
                header.alg,
                key.describe()
            )));
        }
        let validation = self.validation(header.alg);
        let data = decode::<Expiring>(token, &key.decoding, &validation)
            .map_err(|e| AuthError::Invalid(describe(&e)))?;
        let exp = data.claims.exp;
        Ok((data.claims.claims.principal()?, key, exp))
    }

    /// The registered claims every token must satisfy.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_secs;
        validation
    }
}

/// A token verified lately (see [`Authenticator::verified`]).
#[derive(Clone)]
struct Verified {
    /// Whom it names.
    principal: Principal,
    /// The key that verified it: while the ring still holds it.
    key: Arc<keys::VerifyingKey>,
    /// Until when it is taken again without a check.
    until: SystemTime,
}

/// A verified token's claims: its expiry, and the role claims beside it.
#[derive(Deserialize)]
struct Expiring {
    /// Expires (seconds since 1970), required by every check.
    exp: u64,
    /// The role claims.
    #[serde(flatten)]
    claims: RoleClaims,
}

/// A token check's failure, for a person.
fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "it has expired (`exp`)".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (`nbf`)".into(),
        ErrorKind::InvalidIssuer => "it was issued by another issuer (`iss`)".into(),
        ErrorKind::InvalidAudience => "it is meant for another audience (`aud`)".into(),
        ErrorKind::InvalidSignature => "its signature does not verify".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}` claim"),
        _ => format!("{error}"),
    }
}

#[cfg(test)]
mod verified_tests {
    use super::{Authenticator, Grant, RoleName};
    use crate::auth::development::DevelopmentKey;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[derive(serde::Serialize)]
    struct Claims {
        iss: &'static str,
        aud: &'static str,
        exp: u64,
        sub: &'static str,
        role: RoleName,
    }

    #[tokio::test]
    async fn a_token_taken_again_without_a_check_is_still_refused_once_it_expires() {
        // Arrange: a token valid for two more seconds, verified once.
        let key = DevelopmentKey::generate().expect("a key");
        let set = jsonwebtoken::jwk::JwkSet {
            keys: vec![key.public_jwk().expect("a public key")],
        };
        let authenticator = Authenticator::trusting(&set, "test", "govfusion").expect("usable");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970");
        let token = key
            .sign(&Claims {
                iss: "test",
                aud: "govfusion",
                exp: now.as_secs() + 2,
                sub: "citizen",
                role: RoleName::Applicant,
            })
            .expect("signed");
        let first = authenticator.verify(&token).await.expect("valid now");

        // Act: again at once, and again once it expired.
        let again = authenticator.verify(&token).await.expect("still valid");
        tokio::time::sleep(Duration::from_millis(3_100)).await;
        let expired = authenticator.verify(&token).await;

        // Assert
        assert_eq!(first, again);
        assert_eq!(again.grant, Grant::Applicant);
        let error = expired.expect_err("expired").to_string();
        assert!(error.contains("expired"), "{error}");
    }
}
