//! The development signing key: an ES256 (P-256) key made at a service's first start and kept in
//! a PEM file, so that a fresh clone serves with no identity provider, and `govfusion token`
//! mints tokens for any role with it. Every process on one machine that reads the same file
//! accepts the same tokens.

use super::RoleClaims;
use anyhow::Context as _;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rand::RngCore as _;
use serde::Serialize;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A signing key and its key id.
pub struct DevelopmentKey {
    /// The key, to sign with.
    encoding: EncodingKey,
    /// Its id: the RFC 7638 thumbprint of its public key, so every process reading the same
    /// file names it alike.
    kid: String,
}

impl DevelopmentKey {
    /// A new random key (not kept anywhere).
    pub fn generate() -> anyhow::Result<Self> {
        Self::from_pem(&new_pem()?)
    }

    /// The key kept in `path`, made and kept there first if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            create(path)?;
        }
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the development key {}", path.display()))?;
        Self::from_pem(&pem).with_context(|| format!("{} is not a development key", path.display()))
    }

    /// The key of a PKCS#8 PEM text.
    fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).context("not a PKCS#8 PEM EC private key")?;
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .context("Failed to derive the public key")?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .context("Failed to compute the key's thumbprint")?;
        Ok(Self { encoding, kid })
    }

    /// Its key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its public half as a JWK (with `kid`, `alg` and `use`), as a key set would publish it.
    pub fn public_jwk(&self) -> anyhow::Result<Jwk> {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, Algorithm::ES256)
            .context("Failed to derive the public key")?;
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// A token for `claims`, issued by `issuer` for `audience`, valid from now for `ttl`.
    pub fn mint(
        &self,
        issuer: &str,
        audience: &str,
        claims: RoleClaims,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs();
        self.sign(&Registered {
            iss: issuer,
            aud: audience,
            iat: now,
            nbf: now,
            exp: now + ttl.as_secs(),
            claims,
        })
    }

    /// Signs any claims (tests use it to make tokens that fail a check).
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding).context("Failed to sign the token")
    }
}

/// The registered claims of a minted token, with the role claims beside them.
#[derive(Serialize)]
struct Registered<'a> {
    /// Issuer.
    iss: &'a str,
    /// Audience.
    aud: &'a str,
    /// Issued at.
    iat: u64,
    /// Not before.
    nbf: u64,
    /// Expires.
    exp: u64,
    /// Who, and what they may do.
    #[serde(flatten)]
    claims: RoleClaims,
}

/// A new P-256 private key as PKCS#8 PEM.
fn new_pem() -> anyhow::Result<String> {
    // A random 32-byte string is a valid scalar but for a chance of about 2^-32; draw again then.
    let secret = loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .context("Failed to encode the development key")?;
    Ok(pem.to_string())
}

/// Makes a key and keeps it in `path`, readable by its owner only. Several processes starting at
/// once may race: the key is written to a file of its own and linked into place, which fails if
/// another process linked its key first (that one is then used by everyone).
fn create(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
    }
    let pem = new_pem()?;
    let staging = path.with_extension(format!("{}.new", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&staging)
        .with_context(|| format!("Failed to create {}", staging.display()))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("Failed to write {}", staging.display()))?;
    let linked = std::fs::hard_link(&staging, path);
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => {
            tracing::warn!(file = %path.display(), "made a new development signing key");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Failed to keep the key in {}", path.display())),
    }
}
