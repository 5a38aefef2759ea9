//! Sealing personal data for the bus: AES-256-GCM (RustCrypto `aes-gcm`) with a random 96-bit
//! nonce per sealing and the key's id beside the ciphertext.
//!
//! A [`Keyring`] is built from `[crypto]` and held by whoever seals or opens (the [`Catalog`]
//! every system shares), never kept in a global: several services with different keys can run
//! in one process. The key named `current` seals; every listed key opens, so that after a
//! rotation what an old key sealed still opens while that key stays listed.
//!
//! [`Catalog`]: crate::catalog::Catalog

use crate::settings::{CryptoSettings, KeyProblem};
use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Bytes in a nonce: 96 bits, the size GCM is defined for.
pub const NONCE_BYTES: usize = 12;

/// Why a sealed value cannot be opened (or a value sealed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The record names a key this process does not have.
    #[error(
        "sealed with key `{kid}`, which is not configured (known: {known}): list it under \
         [[crypto.keys]] to read records sealed with it"
    )]
    UnknownKey {
        /// The key id the record names.
        kid: String,
        /// The key ids configured, for the operator.
        known: String,
    },
    /// The nonce is not 12 bytes of base64.
    #[error("the nonce is not {NONCE_BYTES} bytes of standard base64")]
    BadNonce,
    /// The ciphertext is not base64.
    #[error("the ciphertext is not standard base64")]
    BadCiphertext,
    /// Authentication failed: the ciphertext, nonce or case id was altered, or the key under
    /// this id is not the one that sealed it.
    #[error(
        "the ciphertext does not authenticate under key `{kid}`: altered, moved to another \
         case, or sealed with a different key of the same id"
    )]
    Forged {
        /// The key id tried.
        kid: String,
    },
    /// It opened, but what was sealed is not what the reader expected (an applicant).
    #[error("the sealed value opened but is not an applicant block")]
    NotAnApplicant,
    /// Sealing failed (a plaintext beyond GCM's limit of 64 GiB; never for an applicant).
    #[error("sealing failed")]
    Seal,
}

/// A value sealed under one key: what travels on the bus, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The id of the key that sealed it.
    pub kid: String,
    /// The nonce, fresh for every sealing.
    pub nonce: [u8; NONCE_BYTES],
    /// The ciphertext followed by GCM's 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// The keys of one service: one seals, all open. Cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    /// The key id that seals.
    current: String,
    /// Every key, by id.
    ciphers: Arc<HashMap<String, Aes256Gcm>>,
}

/// Names the keys, never their bytes.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("keys", &self.known())
            .finish()
    }
}

impl Keyring {
    /// The keys of `[crypto]`, read from where each says. `Err` names the key and what is
    /// wrong; [`Settings::validate`](crate::settings::Settings) reports the same problems.
    pub fn from_settings(settings: &CryptoSettings) -> Result<Self, KeyringError> {
        let mut ciphers = HashMap::new();
        for key in &settings.keys {
            let material = key.material().map_err(|problem| KeyringError::Key {
                id: key.id.clone(),
                problem,
            })?;
            ciphers.insert(key.id.clone(), Aes256Gcm::new(&material.into()));
        }
        if !ciphers.contains_key(&settings.current) {
            return Err(KeyringError::NoCurrent(settings.current.clone()));
        }
        Ok(Self {
            current: settings.current.clone(),
            ciphers: Arc::new(ciphers),
        })
    }

    /// The id of the key that seals.
    pub fn current(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` under the current key, bound to `aad` (authenticated, not encrypted:
    /// opening with other `aad` fails).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, CryptoError> {
        let cipher = self.ciphers.get(&self.current).ok_or(CryptoError::Seal)?;
        // A random 96-bit nonce per sealing: with at most a few billion records per key, the
        // chance of a repeat stays far below NIST SP 800-38D's 2^-32 bound.
        let nonce = Nonce::<aes_gcm::aead::consts::U12>::generate();
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        Ok(Sealed {
            kid: self.current.clone(),
            nonce: nonce.into(),
            ciphertext,
        })
    }

    /// Opens what a listed key sealed, bound to `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = self
            .ciphers
            .get(&sealed.kid)
            .ok_or_else(|| CryptoError::UnknownKey {
                kid: sealed.kid.clone(),
                known: self.known(),
            })?;
        cipher
            .decrypt(
                &Nonce::<aes_gcm::aead::consts::U12>::from(sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Forged {
                kid: sealed.kid.clone(),
            })
    }

    /// The configured key ids, sorted, for messages.
    fn known(&self) -> String {
        let mut ids: Vec<_> = self.ciphers.keys().map(|k| format!("`{k}`")).collect();
        ids.sort();
        ids.join(", ")
    }
}

/// Why a keyring cannot be built from `[crypto]`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyringError {
    /// A key's bytes cannot be had.
    #[error("crypto key `{id}`: {problem}")]
    Key {
        /// The key's id.
        id: String,
        /// What is wrong.
        problem: KeyProblem,
    },
    /// `current` names no listed key.
    #[error("crypto.current `{0}` names no key in [[crypto.keys]]")]
    NoCurrent(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{KeySettings, DEVELOPMENT_KEY};

    const OTHER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn keyring(current: &str, keys: &[(&str, &str)]) -> Keyring {
        Keyring::from_settings(&CryptoSettings {
            current: current.into(),
            keys: keys
                .iter()
                .map(|(id, key)| KeySettings {
                    id: (*id).into(),
                    key: Some((*key).into()),
                    key_env: None,
                    key_file: None,
                })
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn what_is_sealed_opens_with_the_same_aad() {
        let ring = keyring("a", &[("a", DEVELOPMENT_KEY)]);
        let sealed = ring.seal(b"secret", b"case-1").unwrap();
        assert_eq!(sealed.kid, "a");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
        assert_eq!(ring.open(&sealed, b"case-1").unwrap(), b"secret");
    }

    #[test]
    fn every_sealing_has_a_fresh_nonce() {
        let ring = keyring("a", &[("a", DEVELOPMENT_KEY)]);
        let first = ring.seal(b"secret", b"").unwrap();
        let second = ring.seal(b"secret", b"").unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn another_aad_does_not_open() {
        let ring = keyring("a", &[("a", DEVELOPMENT_KEY)]);
        let sealed = ring.seal(b"secret", b"case-1").unwrap();
        assert!(matches!(
            ring.open(&sealed, b"case-2"),
            Err(CryptoError::Forged { .. })
        ));
    }

    #[test]
    fn a_tampered_ciphertext_does_not_open() {
        let ring = keyring("a", &[("a", DEVELOPMENT_KEY)]);
        let mut sealed = ring.seal(b"secret", b"case-1").unwrap();
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(
            ring.open(&sealed, b"case-1"),
            Err(CryptoError::Forged { .. })
        ));
    }

    #[test]
    fn a_different_key_under_the_same_id_does_not_open() {
        let sealed = keyring("a", &[("a", DEVELOPMENT_KEY)])
            .seal(b"secret", b"c")
            .unwrap();
        let other = keyring("a", &[("a", OTHER_KEY)]);
        assert!(matches!(
            other.open(&sealed, b"c"),
            Err(CryptoError::Forged { .. })
        ));
    }

    #[test]
    fn an_unlisted_key_is_named_in_the_error() {
        let sealed = keyring("old", &[("old", DEVELOPMENT_KEY)])
            .seal(b"secret", b"c")
            .unwrap();
        let error = keyring("new", &[("new", OTHER_KEY)])
            .open(&sealed, b"c")
            .unwrap_err();
        assert!(matches!(error, CryptoError::UnknownKey { ref kid, .. } if kid == "old"));
        assert!(error.to_string().contains("`new`"), "{error}");
    }

    #[test]
    fn after_a_rotation_the_old_key_opens_and_the_new_one_seals() {
        let before = keyring("old", &[("old", DEVELOPMENT_KEY)]);
        let old_record = before.seal(b"secret", b"c").unwrap();
        let after = keyring("new", &[("old", DEVELOPMENT_KEY), ("new", OTHER_KEY)]);
        assert_eq!(after.open(&old_record, b"c").unwrap(), b"secret");
        let new_record = after.seal(b"secret", b"c").unwrap();
        assert_eq!(new_record.kid, "new");
        assert!(before.open(&new_record, b"c").is_err());
    }

    #[test]
    fn a_current_id_without_a_key_is_refused() {
        let error = Keyring::from_settings(&CryptoSettings {
            current: "missing".into(),
            keys: CryptoSettings::default().keys,
        })
        .unwrap_err();
        assert!(matches!(error, KeyringError::NoCurrent(ref id) if id == "missing"));
    }
}
