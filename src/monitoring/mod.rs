//! What an operator scrapes: the process's metrics in the Prometheus text format, served at
//! `GET /metrics`.
//!
//! Recording goes through the `metrics` facade (`counter!`, `gauge!`, `histogram!`), so any
//! module records without being handed anything; [`install`] makes the Prometheus recorder of
//! `metrics-exporter-prometheus` the process's global recorder, once per process (a process
//! may start several services, as the tests do: they share the one recorder, and a test reads
//! what its own flow moved). Every name is in [`names`], with its type, labels and meaning in
//! README "Operating it".
//!
//! Recording is cheap enough for every message: a counter or a histogram sample is an atomic
//! add after a look-up of its labels; labels are bounded sets (route patterns, message types,
//! systems, consumer groups, partitions), never case ids.
//!
//! # Layout
//!
//! * [`names`] — every metric's name and what it means.
//! * [`record`] — one function per thing that happens (a request answered, a case closed, a
//!   message handled, a batch sent), called where it happens.
//! * `scrape` — what is read only when scraped: readiness, start-up phase, open and overdue
//!   work from the supervision figures.

pub mod names;
pub mod record;
mod scrape;

pub use scrape::render;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// How often histogram samples are folded into their buckets, so that a process nobody
/// scrapes does not keep them all.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Bucket bounds, in seconds, of the latencies of one HTTP request, one batch sent to the bus.
const FAST_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds, in seconds, of a case from submission to its outcome: milliseconds when
/// every department decides by rule, days when staff decide.
const CASE_SECONDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0,
    604800.0,
];

/// Bucket bounds of a batch's size, in records.
const BATCH_RECORDS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0, 20000.0,
];

/// Makes the Prometheus recorder the process's global one, the first time it is called, and
/// answers its handle; later calls answer the same handle. `None` when another recorder was
/// installed first (by a program embedding this library): then `/metrics` says so.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(build).as_ref()
}

/// The recorder [`install`] installed, once it has; none before, and none when another was
/// installed first.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Whether this module's recorder is the one every metric goes to: from then on, a metric's
/// handle can be kept and used again.
fn installed() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// Builds and installs the recorder, describes every metric and starts the upkeep thread.
fn build() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::CASE_DURATION.into()), CASE_SECONDS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), FAST_SECONDS))
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(names::BRIDGE_BATCH_RECORDS.into()),
                BATCH_RECORDS,
            )
        });
    // The bounds above are constants, never empty: building cannot fail on them.
    let builder = match builder {
        Ok(builder) => builder,
        Err(error) => {
            tracing::error!(%error, "metrics buckets refused; /metrics is off");
            return None;
        }
    };
    let handle = match builder.install_recorder() {
        Ok(handle) => handle,
        Err(error) => {
            tracing::warn!(%error, "another metrics recorder is installed; /metrics is off");
            return None;
        }
    };
    names::describe();
    // Counters without labels are exported from the start, at 0: a dashboard or an alert
    // sees them before the first event.
    for name in [
        names::CASES_FAILED,
        names::BRIDGE_RETRIES,
        names::BRIDGE_FAILED_BATCHES,
        names::BRIDGE_REFUSED,
    ] {
        metrics::counter!(name).increment(0);
    }
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        });
    if let Err(error) = spawned {
        // Rendering folds the samples too: only a process never scraped keeps them.
        tracing::warn!(%error, "no metrics upkeep thread; histogram samples wait for a scrape");
    }
    Some(handle)
}
