//! `[log]`: how the process writes its log lines (see the `logging` module and the README,
//! "Operating it").

use serde::{Deserialize, Serialize};

/// `[log]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` (one readable line each) or `json` (one JSON object per line, for a log store).
    pub format: LogFormat,
}

/// How a log line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// A readable line: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and every field of
    /// the line at the top level, the fields of the span it was written in under `span`.
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    /// `text` or `json`; anything else is refused naming the two.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not a log format: use \"text\" or \"json\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Settings, DEFAULT_CONFIG};

    fn with_format(format: &str) -> Result<Settings, crate::settings::SettingsError> {
        let text = DEFAULT_CONFIG.replacen("format = \"text\"", format, 1);
        Settings::from_toml(&text, "test.toml", false)
    }

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        assert_eq!(
            Settings::from_toml(DEFAULT_CONFIG, "test.toml", false)
                .expect("the default")
                .log
                .format,
            LogFormat::Text
        );
        let json = with_format("format = \"json\"").expect("json is a format");
        assert_eq!(json.log.format, LogFormat::Json);
    }

    #[test]
    fn an_unknown_format_is_refused_naming_the_known_ones() {
        let error = with_format("format = \"xml\"")
            .expect_err("xml is no format")
            .to_string();
        assert!(error.contains("xml") && error.contains("json"), "{error}");
    }
}
