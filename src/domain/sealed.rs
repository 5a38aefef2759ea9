//! The applicant block as it travels and rests on the bus: sealed (AES-256-GCM, see
//! [`crate::crypto`]), so that no topic — flow, state or dead-letters — holds a name, an ID
//! number or a phone in clear. Only the systems that show the applicant (the intake system's
//! case view, a department's inbox) open it, with the keyring they hold.
//!
//! On the wire: `{"alg": "A256GCM", "kid": …, "nonce": base64, "ciphertext": base64}`, the
//! plaintext being the [`Applicant`] as JSON and the associated data the case id (UTF-8).

use super::{Applicant, CaseId};
use crate::crypto::{CryptoError, Keyring, Sealed, NONCE_BYTES};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The sealing algorithm, named as JOSE names it, so that a later one can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// AES-256 in Galois/Counter Mode, 96-bit nonce, 128-bit tag appended to the ciphertext.
    #[serde(rename = "A256GCM")]
    A256Gcm,
}

/// An [`Applicant`] sealed for one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedApplicant {
    /// Always `A256GCM`.
    pub alg: Algorithm,
    /// The id of the key that sealed it (`[[crypto.keys]]`).
    pub kid: String,
    /// The 12-byte nonce, standard base64 with padding.
    pub nonce: String,
    /// The ciphertext of the applicant's JSON followed by the 16-byte tag, standard base64.
    pub ciphertext: String,
}

impl Applicant {
    /// Seals the applicant of `case_id` under the keyring's current key.
    ///
    /// The case id is the associated data: a sealed block copied into another case's message
    /// does not open there, so a record cannot be made to show one person's data under
    /// someone else's case.
    pub fn seal(
        &self,
        keyring: &Keyring,
        case_id: &CaseId,
    ) -> Result<SealedApplicant, CryptoError> {
        let plaintext = serde_json::to_vec(self).map_err(|_| CryptoError::Seal)?;
        let sealed = keyring.seal(&plaintext, case_id.as_str().as_bytes())?;
        Ok(SealedApplicant {
            alg: Algorithm::A256Gcm,
            kid: sealed.kid,
            nonce: BASE64.encode(sealed.nonce),
            ciphertext: BASE64.encode(sealed.ciphertext),
        })
    }
}

impl SealedApplicant {
    /// Opens the applicant of `case_id` with whichever listed key sealed it.
    pub fn open(&self, keyring: &Keyring, case_id: &CaseId) -> Result<Applicant, CryptoError> {
        let nonce = BASE64
            .decode(&self.nonce)
            .ok()
            .and_then(|bytes| <[u8; NONCE_BYTES]>::try_from(bytes.as_slice()).ok())
            .ok_or(CryptoError::BadNonce)?;
        let ciphertext = BASE64
            .decode(&self.ciphertext)
            .map_err(|_| CryptoError::BadCiphertext)?;
        let sealed = Sealed {
            kid: self.kid.clone(),
            nonce,
            ciphertext,
        };
        let plaintext = keyring.open(&sealed, case_id.as_str().as_bytes())?;
        serde_json::from_slice(&plaintext).map_err(|_| CryptoError::NotAnApplicant)
    }
}
