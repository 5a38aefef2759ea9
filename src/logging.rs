//! The process's log lines, on standard error, as `[log] format` says: readable text, or one
//! JSON object per line for a log store. `RUST_LOG` chooses the levels.
//!
//! In JSON, the fields of a line are at the top level beside `timestamp`, `level`, `target`
//! and `message`, so that a log store indexes them: a line about a bus message carries
//! `case_id`, `message_id`, `type`, `system` and `trace_id`. No line carries personal data,
//! in either format: an applicant is formatted masked, and refusals are described without the
//! values they quote (see [`crate::domain`]'s masking).

use crate::settings::{LogFormat, Settings};
use std::path::Path;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// The log format the configuration at `config` (or the built-in one) asks for, environment
/// overrides included; text when the configuration cannot be read, whose errors the command
/// reports itself.
pub fn format_of(config: Option<&Path>) -> LogFormat {
    Settings::load(config).map_or(LogFormat::Text, |settings| settings.log.format)
}

/// Installs the process's subscriber: `format` on standard error, at the levels of `RUST_LOG`
/// or else `default_level`. Also takes the `log` records of the libraries (actix-web's).
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .finish()
            .try_init(),
        LogFormat::Json => json(filter, std::io::stderr).try_init(),
    };
    if let Err(error) = installed {
        // Only a program that installed a subscriber of its own gets here; its lines go there.
        eprintln!("warning: log lines go to the subscriber installed before: {error}");
    }
}

/// The JSON subscriber, writing to `writer` at the levels of `filter`: one object per line,
/// the line's fields at the top level, its span's fields under `span`.
pub fn json<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}
