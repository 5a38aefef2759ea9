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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// A readable line: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and every field of
    /// the line at the top level, the fields of the span it was written in under `span`.
    Json,
}
