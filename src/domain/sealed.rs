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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Algorithm {
    /// AES-256 in Galois/Counter Mode, 96-bit nonce, 128-bit tag appended to the ciphertext.
    #[serde(rename = "A256GCM")]
    A256Gcm,
}

/// An [`Applicant`] sealed for one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    description = "An applicant sealed for one case: AES-256-GCM under the key `kid`, \
    the case id as associated data (docs/asyncapi.yaml, \"Personal data: the sealed \
    applicant\")."
)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::CryptoSettings;

    /// The example of docs/asyncapi.yaml, sealed by another implementation (Python's
    /// `cryptography`, AESGCM) with the development key, as an outside department would.
    const DOCUMENTED: &str = r#"{"alg": "A256GCM", "kid": "dev", "nonce": "uY9a9XDK/f/zsArX",
        "ciphertext": "dJ7piTngaY9JEMEwoxbGvoiyxKVGk0XabcwXFgkl5SBDqeymI/D6s17eZJfd0SvqJGCAxgoXwPS/qzSVgECJC9K3RlvxC4ePx8O1mTToToUC4cHcXhZCFbDMGBX+o4AHhxrBSnNGXwDJX4nAIZDW3BvRwTayZg=="}"#;

    fn keyring() -> Keyring {
        Keyring::from_settings(&CryptoSettings::default()).unwrap()
    }

    fn applicant() -> Applicant {
        Applicant {
            name: "重庆山城小面餐饮有限公司".into(),
            id_number: "91500103MA60C8K21M".into(),
            phone: "13983001234".into(),
        }
    }

    #[test]
    fn the_documented_example_opens_as_documented() {
        let sealed: SealedApplicant = serde_json::from_str(DOCUMENTED).unwrap();
        let case_id = CaseId::from_string("01920c4e8a7b7c3d9e2f4a5b6c7d8e9f");
        assert_eq!(sealed.open(&keyring(), &case_id).unwrap(), applicant());
    }

    #[test]
    fn a_sealed_applicant_opens_for_its_case_only() {
        let case_id = CaseId::from_string("c1");
        let sealed = applicant().seal(&keyring(), &case_id).unwrap();
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(json.contains(r#""alg":"A256GCM""#), "{json}");
        assert!(!json.contains("13983001234"), "{json}");
        assert_eq!(sealed.open(&keyring(), &case_id).unwrap(), applicant());
        let elsewhere = sealed.open(&keyring(), &CaseId::from_string("c2"));
        assert!(matches!(elsewhere, Err(CryptoError::Forged { .. })));
    }

    #[test]
    fn a_garbled_nonce_is_named() {
        let mut sealed = applicant()
            .seal(&keyring(), &CaseId::from_string("c1"))
            .unwrap();
        sealed.nonce = "AAAA".into();
        let opened = sealed.open(&keyring(), &CaseId::from_string("c1"));
        assert_eq!(opened, Err(CryptoError::BadNonce));
    }

    #[test]
    fn another_algorithm_is_not_read() {
        let text = DOCUMENTED.replace("A256GCM", "A128GCM");
        assert!(serde_json::from_str::<SealedApplicant>(&text).is_err());
    }
}
