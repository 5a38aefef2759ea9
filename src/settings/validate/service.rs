//! The service's own rules: the bus and the bridge, the HTTP listener and its abuse controls,
//! a body limit the bus can carry, the input limits.

use super::Findings;
use crate::settings::{BusKind, Settings};

/// The longest `bus.flow_retention_hours` taken: ten years.
const MAX_FLOW_RETENTION_HOURS: u64 = 10 * 366 * 24;

impl Settings {
    /// The bus, the bridge and the service's own limits.
    pub(super) fn check_service(&self, found: &mut Findings) {
        if self.bus.partitions == 0 {
            found.add(
                "bus.partitions",
                "0",
                "a topic needs at least one partition",
            );
        }
        if self.bus.kind == BusKind::Kafka && self.bus.brokers.trim().is_empty() {
            found.add(
                "bus.brokers",
                "",
                "bus kind `kafka` needs the cluster's bootstrap servers, e.g. \"h1:9092,h2:9092\" \
                 (or GOVFUSION__BUS__BROKERS)",
            );
        }
        let retention = self.bus.flow_retention_hours;
        if !(1..=MAX_FLOW_RETENTION_HOURS).contains(&retention) {
            found.add(
                "bus.flow_retention_hours",
                retention.to_string(),
                format!(
                    "must be between 1 and {MAX_FLOW_RETENTION_HOURS} (ten years): how long the \
                     flow topics keep records and closed cases are remembered (168, a week, \
                     by default)"
                ),
            );
        }
        if self.service.intake_instances == 0 {
            found.add(
                "service.intake_instances",
                "0",
                "must be at least 1: the city takes its applications through an intake process",
            );
        } else if self.service.intake_instances == 1 && self.service.intake_instance != 0 {
            found.add(
                "service.intake_instance",
                self.service.intake_instance.to_string(),
                "must be 0 with one intake process (service.intake_instances = 1)",
            );
        }
        if self.service.stalled_after_secs == 0 {
            found.add(
                "service.stalled_after_secs",
                "0",
                "must be at least 1: every open case would be listed as stalled at once",
            );
        }
        let max_record = self.bus.max_record_bytes;
        if !(crate::settings::MIN_RECORD_BYTES..=1_000_000_000).contains(&max_record) {
            found.add(
                "bus.max_record_bytes",
                max_record.to_string(),
                format!(
                    "must be between {} and 1000000000 (librdkafka's range for \
                     message.max.bytes), at or below the broker's record limit",
                    crate::settings::MIN_RECORD_BYTES
                ),
            );
        }
        self.check_producer_limit(found);
        if let Err(problem) = self.bus.kafka.sasl_password() {
            found.add(problem.key, problem.value, problem.problem);
        }
        if self.bridge.batch_max_records == 0 {
            found.add(
                "bridge.batch_max_records",
                "0",
                "a batch must hold at least one record",
            );
        }
        if self.bridge.max_in_flight_records == 0 {
            found.add(
                "bridge.max_in_flight_records",
                "0",
                "at least one record must be allowed on its way to the bus",
            );
        }
    }

    /// A `message.max.bytes` in `bus.kafka.options` overrides the one set from
    /// `bus.max_record_bytes`: below it, the producer refuses records that the 413 check lets
    /// through, and every case they carry fails.
    pub(super) fn check_producer_limit(&self, found: &mut Findings) {
        const KEY: &str = "bus.kafka.options.\"message.max.bytes\"";
        let Some(option) = self.bus.kafka.options.get("message.max.bytes") else {
            return;
        };
        let max_record = self.bus.max_record_bytes;
        match option.trim().parse::<u64>() {
            Ok(bytes) if bytes >= max_record => {}
            Ok(_) => found.add(
                KEY,
                option,
                format!(
                    "is below bus.max_record_bytes ({max_record}): the producer would refuse \
                     records the service takes. Remove it (the producer's message.max.bytes is \
                     set from bus.max_record_bytes) or lower bus.max_record_bytes to it"
                ),
            ),
            Err(_) => found.add(
                KEY,
                option,
                "must be a whole number of bytes (or be removed: the producer's \
                 message.max.bytes is set from bus.max_record_bytes)",
            ),
        }
    }

    /// The HTTP listener's limits: a zero would refuse every client or keep no answer.
    pub(super) fn check_http(&self, found: &mut Findings) {
        let http = &self.http;
        let must_be_positive = [
            (
                "http.head_timeout_ms",
                http.head_timeout_ms,
                "a client needs time to send a request's head",
            ),
            (
                "http.body_timeout_ms",
                http.body_timeout_ms,
                "a client needs time to send a request's body",
            ),
            (
                "http.idempotency_ttl_secs",
                http.idempotency_ttl_secs,
                "a stored answer must be kept for at least a second to answer a retry",
            ),
            (
                "http.idempotency_max_entries",
                http.idempotency_max_entries as u64,
                "the store must hold at least one key",
            ),
        ];
        for (key, value, why) in must_be_positive {
            if value == 0 {
                found.add(key, "0", format!("must be at least 1: {why}"));
            }
        }
        self.check_body_limit(found);
    }

    /// The rate limit and the CORS allow-list: a rate or budget of 0 refuses everyone; an origin
    /// that is not `scheme://host[:port]` never matches a browser's `Origin` (and the CORS
    /// middleware refuses to start with one that is not a URI at all).
    pub(super) fn check_abuse_controls(&self, found: &mut Findings) {
        let limit = &self.http.rate_limit;
        if limit.enabled && !(limit.per_second.is_finite() && limit.per_second > 0.0) {
            found.add(
                "http.rate_limit.per_second",
                limit.per_second.to_string(),
                "must be more than 0 (0.5 is one request every two seconds), or set \
                 http.rate_limit.enabled = false",
            );
        }
        if limit.enabled && limit.burst == 0 {
            found.add(
                "http.rate_limit.burst",
                "0",
                "must be at least 1: a budget of 0 refuses every request",
            );
        }
        for (i, origin) in self.http.cors_allowed_origins.iter().enumerate() {
            if let Err(problem) = check_origin(origin) {
                found.add(format!("http.cors_allowed_origins[{i}]"), origin, problem);
            }
        }
    }

    /// A body the API takes must fit in a record on the bus, or its case could be answered
    /// 202 and then fail when the bus refuses its record.
    pub(super) fn check_body_limit(&self, found: &mut Findings) {
        let body = self.http.max_body_bytes as u64;
        let carried = self.bus.max_carried_body_bytes();
        if body == 0 {
            found.add(
                "http.max_body_bytes",
                "0",
                format!("must be at least 1 (and at most {carried}): every POST has a body"),
            );
        } else if body > carried {
            found.add(
                "http.max_body_bytes",
                body.to_string(),
                format!(
                    "is more than one record on the bus can carry: bus.max_record_bytes ({}) \
                     less {} bytes for the envelope is {carried}. Lower it to {carried} or \
                     less, or raise bus.max_record_bytes (at or below the broker's limit)",
                    self.bus.max_record_bytes,
                    crate::settings::ENVELOPE_OVERHEAD_BYTES
                ),
            );
        }
    }

    /// The input limits: a zero would refuse every request that has the field.
    pub(super) fn check_input(&self, found: &mut Findings) {
        for (key, value) in self.input.limits() {
            if value == 0 {
                found.add(
                    key,
                    "0",
                    "must be at least 1: a limit of 0 refuses every request with the field",
                );
            }
        }
    }
}

/// Whether `origin` is what a browser sends as `Origin`: `http(s)://host[:port]`, nothing
/// more. Compared as text, so `https://a.gov.cn/` (a trailing slash) would never match.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "an origin is `https://host` or `https://host:port`: a scheme, a host, \
                         an optional port, in lower case, no path (not even `/`), no `*`";
    let uri: actix_web::http::Uri = origin.parse().map_err(|_| SHAPE)?;
    // Browsers send the scheme and host in lower case, and origins are compared as text.
    let lower_case = origin == origin.to_ascii_lowercase();
    let scheme_ok = lower_case && matches!(uri.scheme_str(), Some("http" | "https"));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty() && h != "*");
    let bare = uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        && uri.query().is_none()
        && origin
            == format!(
                "{}://{}",
                uri.scheme_str().unwrap_or(""),
                uri.authority().map_or("", |a| a.as_str())
            );
    if scheme_ok && host_ok && bare {
        Ok(())
    } else {
        Err(SHAPE)
    }
}
