//! The process's log lines, on standard error, as `[log] format` says: readable text, or one
//! JSON object per line for a log store. `RUST_LOG` chooses the levels.
//!
//! In JSON, the fields of a line are at the top level beside `timestamp`, `level`, `target`
//! and `message`, so that a log store indexes them: a line about a bus message carries
//! `case_id`, `message_id`, `type`, `system` and `trace_id`. No line carries personal data,
//! in either format: an applicant is formatted masked, and refusals are described without the
//! values they quote (see [`crate::domain`]'s masking).
//!
//! With `[telemetry] otlp_endpoint` set, the same subscriber also exports its spans to an
//! OpenTelemetry collector ([`crate::telemetry`]), in either format.

use crate::settings::{LogFormat, Settings};
use crate::telemetry::Otlp;
use std::path::Path;
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// The log format the configuration at `config` (or the built-in one) asks for, environment
/// overrides included; text when the configuration cannot be read, whose errors the command
/// reports itself.
pub fn format_of(config: Option<&Path>) -> LogFormat {
    Settings::load(config).map_or(LogFormat::Text, |settings| settings.log.format)
}

/// Installs the process's subscriber: `format` on standard error, at the levels of `RUST_LOG`
/// or else `default_level`, and the spans to `otlp`'s collector when there is one. Also takes
/// the `log` records of the libraries (actix-web's).
pub fn init(format: LogFormat, default_level: &str, otlp: Option<&Otlp>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    if let Err(error) = subscriber(format, filter, std::io::stderr, otlp).try_init() {
        // Only a program that installed a subscriber of its own gets here; its lines go there.
        eprintln!("warning: log lines go to the subscriber installed before: {error}");
    }
}

/// The process's subscriber: `format` on `writer` at the levels of `filter`, and, with `otlp`,
/// the same spans exported to its collector.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    otlp: Option<&Otlp>,
) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => json_lines(writer).boxed(),
    };
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(otlp.map(Otlp::layer));
    Dispatch::new(subscriber)
}

/// The JSON subscriber, writing to `writer` at the levels of `filter`: one object per line,
/// the line's fields at the top level, its span's fields under `span`.
pub fn json<W>(
    filter: EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(filter)
        .with(json_lines(writer))
}

/// The JSON lines on `writer`, for a subscriber `S`.
fn json_lines<S, W>(writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
}
