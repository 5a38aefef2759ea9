//! `[crypto]`: the keys that seal personal data on the bus (see [`crate::crypto`]).
//!
//! A key's 32 bytes come, in standard base64, from the config itself, from an environment
//! variable or from a file, so that a deployment can keep them out of the config file (a
//! secret mounted as a file, a variable set by the orchestrator).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The development key of the built-in config, in standard base64. It is published with the
/// source code and protects nothing: it exists so that `govfusion serve` runs from a fresh
/// clone. [`CryptoSettings::uses_development_key`] tells whether a config seals with it.
pub const DEVELOPMENT_KEY: &str = "rleeFG4SHsD/gdGxiQEcfOrMIfHlV1KZqxN0Jlg7hwc=";

/// The id of the development key in the built-in config.
pub const DEVELOPMENT_KEY_ID: &str = "dev";

/// Bytes in an AES-256 key.
pub const KEY_BYTES: usize = 32;

/// The keys that seal and open the applicant block on the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoSettings {
    /// The id of the key that seals new records; it must be one of `keys`.
    pub current: String,
    /// Every key that opens records: the current one and older ones kept for what they sealed.
    pub keys: Vec<KeySettings>,
}

impl Default for CryptoSettings {
    /// The development key alone, as in the built-in config.
    fn default() -> Self {
        Self {
            current: DEVELOPMENT_KEY_ID.to_owned(),
            keys: vec![KeySettings {
                id: DEVELOPMENT_KEY_ID.to_owned(),
                key: Some(DEVELOPMENT_KEY.to_owned()),
                key_env: None,
                key_file: None,
            }],
        }
    }
}

impl CryptoSettings {
    /// Whether new records are sealed with the published development key (whatever id it is
    /// listed under): fine for trying the service out, never for personal data.
    pub fn uses_development_key(&self) -> bool {
        let Ok(development) = decode(DEVELOPMENT_KEY) else {
            return false;
        };
        self.keys
            .iter()
            .filter(|k| k.id == self.current)
            .any(|k| k.material().is_ok_and(|key| key == development))
    }
}

/// One key: its id and where its bytes are.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// The key id (`kid`), written beside every ciphertext it seals.
    pub id: String,
    /// The key itself, in standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The name of an environment variable that holds the key in standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// A file that holds the key in standard base64 (surrounding whitespace is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// Never prints the key's bytes: settings are logged and shown in errors.
impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("id", &self.id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_env", &self.key_env)
            .field("key_file", &self.key_file)
            .finish()
    }
}

/// Why a key's bytes cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct KeyProblem {
    /// The field at fault: `key`, `key_env` or `key_file`.
    pub field: &'static str,
    /// The value to show (never the key itself).
    pub value: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl KeySettings {
    /// The key's 32 bytes, read from where it says.
    pub fn material(&self) -> Result<[u8; KEY_BYTES], KeyProblem> {
        let problem = |field, value: &str, problem: String| KeyProblem {
            field,
            value: value.to_owned(),
            problem,
        };
        match (&self.key, &self.key_env, &self.key_file) {
            (Some(key), None, None) => decode(key).map_err(|p| problem("key", "<redacted>", p)),
            (None, Some(var), None) => {
                let text = std::env::var(var).map_err(|e| {
                    problem(
                        "key_env",
                        var,
                        format!("cannot read the environment variable: {e}"),
                    )
                })?;
                decode(&text).map_err(|p| problem("key_env", var, format!("its value {p}")))
            }
            (None, None, Some(path)) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    problem("key_file", &shown, format!("cannot read the file: {e}"))
                })?;
                decode(&text).map_err(|p| problem("key_file", &shown, format!("its content {p}")))
            }
            _ => Err(problem(
                "key",
                "",
                "give the key in exactly one of `key` (base64), `key_env` (a variable's name) \
                 or `key_file` (a file's path)"
                    .to_owned(),
            )),
        }
    }
}

/// Decodes a base64 key and checks its length; the error completes "the key …".
fn decode(text: &str) -> Result<[u8; KEY_BYTES], String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("is not standard base64 ({e})"))?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "is {} bytes, but AES-256 needs {KEY_BYTES} (make one with `head -c 32 /dev/urandom | base64`)",
            bytes.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(id: &str, key: &str) -> KeySettings {
        KeySettings {
            id: id.to_owned(),
            key: Some(key.to_owned()),
            key_env: None,
            key_file: None,
        }
    }

    #[test]
    fn the_default_is_the_development_key() {
        assert!(CryptoSettings::default().uses_development_key());
    }

    #[test]
    fn the_development_key_under_another_id_is_still_the_development_key() {
        let settings = CryptoSettings {
            current: "prod".into(),
            keys: vec![inline("prod", DEVELOPMENT_KEY)],
        };
        assert!(settings.uses_development_key());
    }

    #[test]
    fn a_key_of_its_own_is_not_the_development_key() {
        let settings = CryptoSettings {
            current: "k1".into(),
            keys: vec![
                inline("dev", DEVELOPMENT_KEY),
                inline("k1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ],
        };
        assert!(!settings.uses_development_key());
    }

    #[test]
    fn a_key_file_is_read_and_trimmed() {
        let path = std::env::temp_dir().join(format!("govfusion-key-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, format!("{DEVELOPMENT_KEY}\n")).unwrap();
        let key = KeySettings {
            id: "f".into(),
            key: None,
            key_env: None,
            key_file: Some(path.clone()),
        };
        let material = key.material();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(material.unwrap(), decode(DEVELOPMENT_KEY).unwrap());
    }

    #[test]
    fn a_short_key_says_how_long_it_must_be() {
        let problem = inline("k", "c2hvcnQ=").material().unwrap_err();
        assert_eq!(problem.field, "key");
        assert!(problem.problem.contains("5 bytes"), "{problem}");
        assert!(problem.problem.contains("32"), "{problem}");
    }

    #[test]
    fn two_sources_for_one_key_are_refused() {
        let mut key = inline("k", DEVELOPMENT_KEY);
        key.key_env = Some("SOME_VAR".into());
        assert!(key.material().unwrap_err().problem.contains("exactly one"));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", inline("k", DEVELOPMENT_KEY));
        assert!(!shown.contains(DEVELOPMENT_KEY), "{shown}");
    }
}
