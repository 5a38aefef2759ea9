//! `[telemetry] otlp_endpoint`: the spans of a case reach an OpenTelemetry collector over
//! OTLP/HTTP, as one trace. A fake collector (a plain HTTP listener that keeps what is posted)
//! stands in for the real one; the service's own subscriber ([`govfusion::logging::subscriber`])
//! exports to it while one case with collaboration goes through the city, and the test decodes
//! what was posted as OTLP protobuf.
//!
//! A binary of its own, like `tests/logs.rs`: a process has one global tracing subscriber, and
//! this one, with the OTLP layer, must be installed before anything logs.

#[path = "common/mod.rs"]
mod common;

use common::app::{test_settings, TestApp};
use govfusion::bus::memory::MemoryBus;
use govfusion::bus::Topic;
use govfusion::clock::SystemClock;
use govfusion::settings::{BusKind, LogFormat, OtlpEndpoint, Role};
use govfusion::telemetry::Otlp;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// How long a wait of [`common::poll`] looks before the test fails.
const POLL_FOR: Duration = Duration::from_secs(10);

/// One request the collector received.
struct Posted {
    /// The request line's path.
    path: String,
    /// The `Content-Type` header.
    content_type: String,
    /// The body.
    body: Vec<u8>,
}

/// A fake OTLP/HTTP collector on `127.0.0.1:0`: answers every request `200` with an empty
/// protobuf body and keeps it. It runs on a thread of its own, so that it answers while the
/// test's runtime is blocked on the exporter's shutdown.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Posted>>>);

impl Collector {
    /// Starts listening; returns the collector and its base URL.
    fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the collector");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let collector = Self::default();
        let kept = collector.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || kept.serve(stream));
            }
        });
        (collector, url)
    }

    /// Reads requests from one connection (kept alive between exports) until it closes.
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("the connection"));
        let mut stream = stream;
        while let Some(posted) = read_request(&mut reader) {
            self.0.lock().expect("the collector's store").push(posted);
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                          content-length: 0\r\n\r\n";
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// Every span posted to `/v1/traces` so far, with the `service.name` of its resource;
    /// panics on a request that is not OTLP protobuf there.
    fn spans(&self) -> Vec<(String, Span)> {
        let posted = self.0.lock().expect("the collector's store");
        let mut spans = Vec::new();
        for request in posted.iter() {
            assert_eq!(request.path, "/v1/traces");
            assert_eq!(request.content_type, "application/x-protobuf");
            let export = ExportTraceServiceRequest::decode(request.body.as_slice())
                .expect("the body is an OTLP ExportTraceServiceRequest");
            for resource_spans in export.resource_spans {
                let service = resource_spans
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref()?.value.clone());
                let service = match service {
                    Some(AnyValue::StringValue(name)) => name,
                    other => panic!("service.name is {other:?}"),
                };
                for scope_spans in resource_spans.scope_spans {
                    spans.extend(scope_spans.spans.into_iter().map(|s| (service.clone(), s)));
                }
            }
        }
        spans
    }
}

/// One HTTP/1.1 request with a `Content-Length` body; none when the connection closed.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Posted> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Posted {
        path,
        content_type,
        body,
    })
}

/// A span's parent, or a trace's id, as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[actix_web::test]
async fn a_cases_spans_reach_the_collector_as_one_trace() {
    // Arrange: the service's subscriber exporting to the fake collector, the service on the
    // in-memory bus.
    let (collector, url) = Collector::start();
    let endpoint = OtlpEndpoint::parse(&url).expect("the collector's URL");
    let otlp = Otlp::start(&endpoint, &[Role::All])
        .expect("the exporter")
        .expect("an endpoint is set");
    govfusion::logging::subscriber(
        LogFormat::Text,
        EnvFilter::new("info"),
        std::io::sink,
        Some(&otlp),
    )
    .try_init()
    .expect("the first subscriber of this process");
    let mut settings = test_settings();
    settings.bus.kind = BusKind::Memory;
    let bus = MemoryBus::new(&settings.bus);
    let app = TestApp::start_on(settings, Arc::new(SystemClock), bus, POLL_FOR).await;

    // Act: a case with collaboration across the tiers, then the service stopped and the
    // exporter shut down, as `serve` does after SIGTERM, which posts what is queued.
    let case_id = app
        .submit_ok(&app.application_body("restaurant_opening"))
        .await;
    app.wait_until_completed(&case_id).await;
    let memory_bus = app.systems.memory_bus.clone().expect("the memory bus");
    app.stop().await;
    tokio::task::spawn_blocking(move || otlp.shutdown())
        .await
        .expect("the exporter shut down");

    // Assert: the case's trace id, as its records carry it …
    let trace_id = memory_bus
        .all_records(Topic::Applications)
        .into_iter()
        .map(|(_, record)| record)
        .find(|record| record.key == case_id.as_str())
        .and_then(|record| record.header("trace_id").map(str::to_owned))
        .expect("the application was published with a trace id");
    let spans = collector.spans();
    assert!(
        spans.iter().all(|(service, _)| service == "govfusion"),
        "a span of another service"
    );
    // … names spans of every system the case went through …
    let in_trace: Vec<&Span> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| hex(&span.trace_id) == trace_id)
        .collect();
    let messages: Vec<&Span> = in_trace
        .iter()
        .copied()
        .filter(|span| span.name == "message")
        .collect();
    assert!(
        messages.len() >= 8,
        "{} `message` spans in the case's trace of {} spans exported",
        messages.len(),
        spans.len()
    );
    assert!(
        in_trace.iter().any(|span| span.name == "handle"),
        "no system's handler span in the case's trace"
    );
    // … every `message` span joined to the hop that sent its record …
    assert!(
        messages.iter().all(|span| span.parent_span_id.len() == 8),
        "a `message` span without a parent"
    );
    // … and the hops line up: a record made while a message was handled names that handling
    // (one of the trace's exported spans) as its parent; only the submission's record, made
    // by an HTTP request outside any span, names a hop of its own.
    let exported: HashSet<String> = in_trace.iter().map(|span| hex(&span.span_id)).collect();
    let unjoined: Vec<String> = messages
        .iter()
        .filter(|span| !exported.contains(&hex(&span.parent_span_id)))
        .map(|span| attribute(span, "kind"))
        .collect();
    assert!(
        unjoined.iter().all(|kind| kind == "application.published"),
        "`message` spans whose parent is not among the trace's spans: {unjoined:?}"
    );
    assert!(unjoined.len() < messages.len() / 4, "{unjoined:?}");
}

/// The string attribute `key` of `span`; empty when it has none.
fn attribute(span: &Span, key: &str) -> String {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.clone());
    match value {
        Some(AnyValue::StringValue(text)) => text,
        _ => String::new(),
    }
}
