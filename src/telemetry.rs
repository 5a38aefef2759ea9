//! Spans to an OpenTelemetry collector (`[telemetry] otlp_endpoint`): when it is set, `serve`
//! exports every span it makes over OTLP/HTTP, in protobuf, to the collector's `/v1/traces`,
//! as the resource `service.name = "govfusion"` (with `service.version`, a
//! `service.instance.id` new for each process, and the process's `govfusion.roles`).
//!
//! The spans reach OpenTelemetry through `tracing-opentelemetry`, a layer beside the log lines
//! on the one subscriber (text or JSON alike, see [`crate::logging`]); a record's `message`
//! span takes its parent from the record's `traceparent` ([`crate::bus::trace`]), so one
//! case's spans are one trace in the collector whichever processes made them.
//!
//! Export never holds the service up: spans are queued (2,048 at most; more are dropped) and
//! posted every 5 seconds by the SDK's batch thread, with a blocking reqwest 0.12 client (the
//! HTTP stack the service already has) that gives up after 5 seconds. A collector that is
//! down costs the spans of that while and a `warn` line a minute at most; shutdown posts what
//! is queued, waiting 5 seconds at most.

use crate::settings::{OtlpEndpoint, Role};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing_subscriber::filter::{filter_fn, Filtered};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often, at most, a failing export is logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The targets whose spans are not exported: the exporter's own HTTP stack, whose spans an
/// export would otherwise make and export again.
const EXPORTER_TARGETS: [&str; 6] = ["opentelemetry", "reqwest", "hyper", "h2", "rustls", "tower"];

/// Why the exporter cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the OTLP export of spans to {url}: {source}")]
pub struct ExportSetupError {
    /// Where the spans were to go.
    url: String,
    /// What the exporter said.
    source: opentelemetry_otlp::ExporterBuildError,
}

/// The exporter of a process that exports its spans: the layer to add to the subscriber, and
/// the provider to shut down (which posts what is queued) when the process ends.
pub struct Otlp {
    /// Owns the batch thread and the exporter.
    provider: SdkTracerProvider,
    /// Makes the spans the layer turns `tracing` spans into.
    tracer: SdkTracer,
}

impl Otlp {
    /// The exporter to `endpoint` for a process of `roles`; none when the endpoint is empty.
    pub fn start(
        endpoint: &OtlpEndpoint,
        roles: &[Role],
    ) -> Result<Option<Self>, ExportSetupError> {
        let Some(url) = endpoint.traces_url() else {
            return Ok(None);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|source| ExportSetupError {
                url: url.clone(),
                source,
            })?;
        let roles = roles.iter().map(ToString::to_string).collect::<Vec<_>>();
        let resource = Resource::builder()
            .with_service_name("govfusion")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new(
                    "service.instance.id",
                    uuid::Uuid::new_v4().hyphenated().to_string(),
                ),
                KeyValue::new("govfusion.roles", roles.join(",")),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(Reported::new(exporter, url))
            // Every span: a case's trace is whole, whatever an outside `traceparent` says.
            .with_sampler(Sampler::AlwaysOn)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("govfusion");
        Ok(Some(Self { provider, tracer }))
    }

    /// The layer that hands the subscriber's spans (the exporter's own excepted) to the
    /// exporter.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
    {
        let not_the_exporters = filter_fn(|meta| {
            !EXPORTER_TARGETS
                .iter()
                .any(|target| meta.target().starts_with(target))
        });
        Filtered::new(
            tracing_opentelemetry::layer().with_tracer(self.tracer.clone()),
            not_the_exporters,
        )
    }

    /// Posts the spans still queued and stops the batch thread, waiting 5 seconds at most.
    /// Call it outside the async runtime: it blocks.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last spans may not have reached the OTLP collector");
        }
    }
}

/// An exporter whose failures are logged at `warn`, once a minute at most: the SDK drops the
/// batch and goes on, and a collector that is down for an hour should not fill the log.
#[derive(Debug)]
struct Reported<E> {
    /// The OTLP exporter.
    inner: E,
    /// Where it posts, for the log line.
    url: String,
    /// When a failure was last logged.
    last_warned: Mutex<Option<Instant>>,
}

impl<E> Reported<E> {
    fn new(inner: E, url: String) -> Self {
        Self {
            inner,
            url,
            last_warned: Mutex::new(None),
        }
    }

    /// Logs a failed export unless one was logged less than a minute ago.
    fn failed(&self, error: &dyn std::fmt::Display) {
        let Ok(mut last) = self.last_warned.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            url = %self.url,
            %error,
            "spans could not be exported to the OTLP collector and were dropped; the service \
             goes on (logged once a minute at most)"
        );
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(error) = &result {
            self.failed(error);
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
