//! The SASL password of `[bus.kafka]`: written in the config (`options."sasl.password"`), or,
//! to keep it out of the file, named by an environment variable (`sasl_password_env`) or read
//! from a file (`sasl_password_file`, e.g. a mounted secret). It is read again whenever a Kafka
//! client is made, so a rotated file is used by the next client; the configuration check reads
//! it once, so that a missing variable or unreadable file is reported before anything starts.
//! It is never shown: not in errors, not in the settings' `Debug`.

use super::KafkaSettings;
use std::collections::BTreeMap;
use std::fmt;

/// librdkafka's option for the SASL password.
pub const SASL_PASSWORD: &str = "sasl.password";

/// Why the SASL password cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value:?}: {problem}")]
pub struct SecretProblem {
    /// The key at fault, e.g. `bus.kafka.sasl_password_file`.
    pub key: String,
    /// The value to show: a variable's name or a file's path, never the password.
    pub value: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl KafkaSettings {
    /// The SASL password, from the one source configured; `None` when there is none.
    pub fn sasl_password(&self) -> Result<Option<String>, SecretProblem> {
        let inline = self.options.get(SASL_PASSWORD);
        let problem = |key: &str, value: &str, problem: String| SecretProblem {
            key: format!("bus.kafka.{key}"),
            value: value.to_owned(),
            problem,
        };
        match (inline, &self.sasl_password_env, &self.sasl_password_file) {
            (None, None, None) => Ok(None),
            (Some(password), None, None) => Ok(Some(password.clone())),
            (None, Some(var), None) => {
                let password = std::env::var(var).map_err(|e| {
                    problem(
                        "sasl_password_env",
                        var,
                        format!("cannot read the environment variable: {e}"),
                    )
                })?;
                non_empty(password)
                    .map(Some)
                    .map_err(|p| problem("sasl_password_env", var, format!("its value {p}")))
            }
            (None, None, Some(path)) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    problem(
                        "sasl_password_file",
                        &shown,
                        format!("cannot read the file: {e}"),
                    )
                })?;
                // A file written by `echo` or an editor ends in a newline that is not part of
                // the password; spaces may be.
                let password = text.trim_end_matches(['\n', '\r']).to_owned();
                non_empty(password)
                    .map(Some)
                    .map_err(|p| problem("sasl_password_file", &shown, format!("its content {p}")))
            }
            _ => {
                let given = [
                    inline.map(|_| "options.\"sasl.password\""),
                    self.sasl_password_env.as_ref().map(|_| "sasl_password_env"),
                    self.sasl_password_file
                        .as_ref()
                        .map(|_| "sasl_password_file"),
                ];
                Err(SecretProblem {
                    key: "bus.kafka".to_owned(),
                    value: given.into_iter().flatten().collect::<Vec<_>>().join(", "),
                    problem: "give the SASL password in at most one of options.\"sasl.password\", \
                              sasl_password_env (a variable's name) or sasl_password_file (a \
                              file's path)"
                        .to_owned(),
                })
            }
        }
    }

    /// The librdkafka options every client gets: `options`, with `sasl.password` from its
    /// source.
    pub fn client_options(&self) -> Result<BTreeMap<String, String>, SecretProblem> {
        let mut options = self.options.clone();
        if let Some(password) = self.sasl_password()? {
            options.insert(SASL_PASSWORD.to_owned(), password);
        }
        Ok(options)
    }
}

/// The password, unless it is empty; the error completes "its value …".
fn non_empty(password: String) -> Result<String, String> {
    if password.is_empty() {
        Err("is empty: librdkafka would try to log in with no password".to_owned())
    } else {
        Ok(password)
    }
}

/// Whether the librdkafka option `key` holds a secret (`sasl.password`, `ssl.key.password`,
/// `sasl.oauthbearer.client.secret`, …).
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret")
}

/// Every field, but the values of secret options hidden: settings are logged and shown in
/// errors.
impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret(key) { "<redacted>" } else { value };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("linger_ms", &self.linger_ms)
            .field("batch_num_messages", &self.batch_num_messages)
            .field("compression", &self.compression)
            .field("idempotence", &self.idempotence)
            .field("message_timeout_ms", &self.message_timeout_ms)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("instance_id", &self.instance_id)
            .field("assignment_strategy", &self.assignment_strategy)
            .field("fetch_wait_max_ms", &self.fetch_wait_max_ms)
            .field("consumer_queue_kbytes", &self.consumer_queue_kbytes)
            .field("replication_factor", &self.replication_factor)
            .field("create_topics", &self.create_topics)
            .field("flush_timeout_ms", &self.flush_timeout_ms)
            .field("options", &options)
            .field("sasl_password_env", &self.sasl_password_env)
            .field("sasl_password_file", &self.sasl_password_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "s3cret pass";

    fn temp_file(content: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("govfusion-sasl-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, content).expect("Failed to write the password file");
        path
    }

    #[test]
    fn no_source_is_no_password() {
        assert_eq!(KafkaSettings::default().sasl_password(), Ok(None));
    }

    #[test]
    fn a_password_file_is_read_without_its_trailing_newline() {
        let path = temp_file(&format!("{PASSWORD}\n"));
        let settings = KafkaSettings {
            sasl_password_file: Some(path.clone()),
            ..KafkaSettings::default()
        };

        let options = settings.client_options();
        std::fs::remove_file(&path).expect("Failed to remove the password file");

        assert_eq!(
            options.expect("readable")[SASL_PASSWORD],
            PASSWORD,
            "the password is passed to librdkafka"
        );
    }

    #[test]
    fn a_password_variable_is_read() {
        // A variable no other test sets: tests run in parallel in one process.
        let var = "GOVFUSION_TEST_SASL_PASSWORD_UNIT";
        std::env::set_var(var, PASSWORD);
        let settings = KafkaSettings {
            sasl_password_env: Some(var.into()),
            ..KafkaSettings::default()
        };

        assert_eq!(settings.sasl_password(), Ok(Some(PASSWORD.to_owned())));
    }

    #[test]
    fn a_missing_variable_or_file_is_named_but_no_password_shown() {
        let from_env = KafkaSettings {
            sasl_password_env: Some("GOVFUSION_TEST_NO_SUCH_SASL_VARIABLE".into()),
            ..KafkaSettings::default()
        };
        let from_file = KafkaSettings {
            sasl_password_file: Some("/nonexistent/govfusion/sasl".into()),
            ..KafkaSettings::default()
        };

        let env = from_env.sasl_password().expect_err("no such variable");
        let file = from_file.sasl_password().expect_err("no such file");

        assert_eq!(env.key, "bus.kafka.sasl_password_env");
        assert_eq!(env.value, "GOVFUSION_TEST_NO_SUCH_SASL_VARIABLE");
        assert_eq!(file.key, "bus.kafka.sasl_password_file");
        assert!(file.problem.contains("cannot read the file"), "{file}");
    }

    #[test]
    fn an_empty_password_file_is_refused() {
        let path = temp_file("\n");
        let settings = KafkaSettings {
            sasl_password_file: Some(path.clone()),
            ..KafkaSettings::default()
        };

        let problem = settings.sasl_password();
        std::fs::remove_file(&path).expect("Failed to remove the password file");

        assert!(problem.expect_err("empty").problem.contains("is empty"));
    }

    #[test]
    fn two_sources_are_refused_without_showing_the_password() {
        let mut settings = KafkaSettings {
            sasl_password_env: Some("SOME_VARIABLE".into()),
            ..KafkaSettings::default()
        };
        settings
            .options
            .insert(SASL_PASSWORD.into(), PASSWORD.into());

        let problem = settings.client_options().expect_err("two sources");

        assert_eq!(problem.key, "bus.kafka");
        assert!(problem.problem.contains("at most one"), "{problem}");
        assert!(!problem.to_string().contains(PASSWORD), "{problem}");
    }

    #[test]
    fn debug_output_hides_passwords_and_secrets_but_not_other_options() {
        let mut settings = KafkaSettings::default();
        for (key, value) in [
            (SASL_PASSWORD, PASSWORD),
            ("ssl.key.password", "key-pass"),
            ("sasl.oauthbearer.client.secret", "client-secret"),
            ("sasl.username", "govfusion"),
        ] {
            settings.options.insert(key.into(), value.into());
        }

        let shown = format!("{settings:?}");

        for secret in [PASSWORD, "key-pass", "client-secret"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(shown.contains("govfusion"), "{shown}");
    }
}
