//! The development signing key: an ES256 (P-256) key made at a service's first start and kept in
//! a PEM file, so that a fresh clone serves with no identity provider, and `govfusion token`
//! mints tokens for any role with it. Every process on one machine that reads the same file
//! accepts the same tokens.

use super::RoleClaims;
use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rand::RngCore as _;
use serde::Serialize;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A signing key and its key id.
pub struct DevelopmentKey {
    /// The key, for its public half.
    encoding: EncodingKey,
    /// The same key parsed once, to sign with. `jsonwebtoken::encode` parses the PKCS#8 key
    /// and derives its public point again for every token, which cost a simulated city nearly
    /// as much as the signature itself (a new applicant's token each case).
    signer: EcdsaKeyPair,
    /// Its id: the RFC 7638 thumbprint of its public key, so every process reading the same
    /// file names it alike.
    kid: String,
    /// The first part of every token it signs, with the dot after it: the JOSE header
    /// (`ES256`, `JWT`, this key's id) as base64url.
    header: String,
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
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, encoding.as_bytes())
                .map_err(|error| anyhow::anyhow!("not a P-256 PKCS#8 key: {error}"))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        let mut header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        header.push('.');
        Ok(Self {
            encoding,
            signer,
            kid,
            header,
        })
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

    /// Signs any claims (tests use it to make tokens that fail a check): a JWS in compact
    /// form, as `jsonwebtoken::encode` makes it — header, claims and the signature of both,
    /// each as base64url — signed with the key parsed once.
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let claims = serde_json::to_vec(claims).context("Failed to encode the claims")?;
        let mut token = self.header.clone();
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self
            .signer
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|error| anyhow::anyhow!("Failed to sign the token: {error}"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
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

#[cfg(test)]
mod tests {
    use super::DevelopmentKey;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    #[test]
    fn a_signed_token_is_one_jsonwebtoken_verifies_with_the_public_key_and_no_other() {
        // Arrange
        let key = DevelopmentKey::generate().expect("a key");
        let other = DevelopmentKey::generate().expect("another key");
        let claims = Claims {
            sub: "applicant-1".into(),
            exp: jsonwebtoken::get_current_timestamp() + 600,
        };
        let public = DecodingKey::from_jwk(&key.public_jwk().expect("jwk")).expect("key");
        let others = DecodingKey::from_jwk(&other.public_jwk().expect("jwk")).expect("key");
        let validation = Validation::new(Algorithm::ES256);

        // Act
        let token = key.sign(&claims).expect("signed");
        let again = key.sign(&claims).expect("signed");

        // Assert: header, claims and signature, verified by the library that checks tokens.
        let header = decode_header(&token).expect("a header");
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let read = decode::<Claims>(&token, &public, &validation).expect("verified");
        assert_eq!(read.claims, claims);
        assert!(decode::<Claims>(&again, &public, &validation).is_ok());
        assert!(decode::<Claims>(&token, &others, &validation).is_err());
        // Claims changed after signing are refused.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = Claims {
            sub: "applicant-2".into(),
            exp: claims.exp,
        };
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        let forged = [parts[0], &forged, parts[2]].join(".");
        assert!(decode::<Claims>(&forged, &public, &validation).is_err());
    }
}
