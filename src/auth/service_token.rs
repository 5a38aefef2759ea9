//! The bearer token this process shows to another govfusion process (the intake feed a
//! governance process reads): from a file read again at each use (so that what renews it can
//! replace it), from `GOVFUSION_SERVICE_TOKEN`, or, with development keys, minted here.

use super::development::DevelopmentKey;
use super::{RoleClaims, RoleName};
use crate::settings::{AuthSettings, KeySource};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The environment variable holding the token when no file is configured.
pub const ENV_VAR: &str = "GOVFUSION_SERVICE_TOKEN";

/// How long a minted service token is valid; a new one is minted for every request.
const MINTED_TTL: Duration = Duration::from_secs(300);

/// Where the token comes from.
#[derive(Clone)]
pub enum ServiceToken {
    /// A file, read at each use.
    File(PathBuf),
    /// A token given once, in the environment.
    Fixed(String),
    /// Minted with the development key.
    Minted {
        /// The key.
        key: Arc<DevelopmentKey>,
        /// The issuer tokens must name.
        issuer: String,
        /// The audience tokens must name.
        audience: String,
    },
}

impl ServiceToken {
    /// The source `auth` names, or why there is none.
    pub fn from_settings(auth: &AuthSettings) -> anyhow::Result<Self> {
        let file = auth.service_token_file.trim();
        if !file.is_empty() {
            return Ok(Self::File(PathBuf::from(file)));
        }
        if let Ok(token) = std::env::var(ENV_VAR) {
            if !token.trim().is_empty() {
                return Ok(Self::Fixed(token.trim().to_owned()));
            }
        }
        if let Some(KeySource::Development(path)) = auth.key_source() {
            return Ok(Self::Minted {
                key: Arc::new(DevelopmentKey::load_or_create(&path)?),
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
            });
        }
        anyhow::bail!(
            "this process reads another's intake feed and needs a service token (role \
             `service`) from your identity provider: set auth.service_token_file or \
             {ENV_VAR}"
        )
    }

    /// The token to send now.
    pub fn current(&self) -> anyhow::Result<String> {
        match self {
            ServiceToken::File(path) => Ok(std::fs::read_to_string(path)
                .with_context(|| format!("Failed to read the service token {}", path.display()))?
                .trim()
                .to_owned()),
            ServiceToken::Fixed(token) => Ok(token.clone()),
            ServiceToken::Minted {
                key,
                issuer,
                audience,
            } => key.mint(
                issuer,
                audience,
                RoleClaims {
                    sub: "govfusion-service".into(),
                    name: None,
                    role: RoleName::Service,
                    terminal: None,
                    department: None,
                    centre: None,
                },
                MINTED_TTL,
            ),
        }
    }
}
