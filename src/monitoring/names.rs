//! Every metric the process exports: its name (Prometheus conventions: the `govfusion_`
//! prefix, `_total` on counters, base units in the name) and its help text. README "Operating
//! it" has the same list with the labels.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Counter `{method, route, status}`: HTTP requests answered, by route pattern.
pub const HTTP_REQUESTS: &str = "govfusion_http_requests_total";
/// Histogram `{method, route, status}`: time to answer an HTTP request.
pub const HTTP_DURATION: &str = "govfusion_http_request_duration_seconds";
/// Counter `{channel}`: applications the intake system took (a case id issued).
pub const CASES_SUBMITTED: &str = "govfusion_cases_submitted_total";
/// Counter `{outcome}`: cases completed, `approved` or `rejected`.
pub const CASES_COMPLETED: &str = "govfusion_cases_completed_total";
/// Counter: cases that failed (their application could not be handed on).
pub const CASES_FAILED: &str = "govfusion_cases_failed_total";
/// Histogram `{outcome}`: time from submission to completion.
pub const CASE_DURATION: &str = "govfusion_case_duration_seconds";
/// Counter `{system, type}`: bus messages a system finished.
pub const MESSAGES_HANDLED: &str = "govfusion_messages_handled_total";
/// Counter `{system, type}`: bus messages a system could not finish yet (delivered again).
pub const MESSAGES_FAILED: &str = "govfusion_messages_failed_total";
/// Counter `{system, type}`: bus messages a system had already handled, come again
/// (redelivered after a rewind or a restart, or published twice): dropped or answered as before.
pub const MESSAGES_REPEATED: &str = "govfusion_messages_repeated_total";
/// Counter `{system, type}`: records a system could not read or refused, written to
/// dead-letters.
pub const MESSAGES_DEAD_LETTERED: &str = "govfusion_messages_dead_lettered_total";
/// Gauge: records queued in the bridge, waiting for their batch.
pub const BRIDGE_QUEUED: &str = "govfusion_bridge_queued_records";
/// Histogram: records per batch the bridge sent.
pub const BRIDGE_BATCH_RECORDS: &str = "govfusion_bridge_batch_records";
/// Histogram: time from a batch's first send to the bus's answer, retries included.
pub const BRIDGE_SEND_DURATION: &str = "govfusion_bridge_send_duration_seconds";
/// Counter: batch sends that failed and were tried again.
pub const BRIDGE_RETRIES: &str = "govfusion_bridge_retries_total";
/// Counter: batches that failed for good (every retry failed).
pub const BRIDGE_FAILED_BATCHES: &str = "govfusion_bridge_failed_batches_total";
/// Counter: records the bus refused for good (too large, invalid), dead-lettered.
pub const BRIDGE_REFUSED: &str = "govfusion_bridge_refused_records_total";
/// Gauge `{group, topic, partition}`: records on the partition the group has not committed.
pub const CONSUMER_LAG: &str = "govfusion_consumer_lag_records";
/// Gauge `{group, topic, partition}`: records handed out and not yet committed (running, or
/// finished behind one still running).
pub const CONSUMER_IN_FLIGHT: &str = "govfusion_consumer_in_flight_records";
/// Counter `{group}`: partitions rewound after a failed handler (their records come again).
pub const CONSUMER_REWINDS: &str = "govfusion_consumer_rewinds_total";
/// Gauge `{department}`: collaboration events at the department not answered yet.
pub const DEPARTMENT_OPEN_EVENTS: &str = "govfusion_department_open_collaboration_events";
/// Gauge `{department, item}`: the department's cases and events past their deadline.
pub const DEPARTMENT_OVERDUE: &str = "govfusion_department_overdue_items";
/// Gauge `{centre, tier}`: collaboration events routed through the centre not answered yet.
pub const CENTRE_OPEN_EVENTS: &str = "govfusion_centre_open_collaboration_events";
/// Gauge `{centre, tier}`: those of them past their deadline.
pub const CENTRE_OVERDUE: &str = "govfusion_centre_overdue_events";
/// Gauge `{held}`: the cases the intake system keeps whole in memory (`in_memory`, open and
/// closed) and the open ones it keeps only where they stand (`out_of_memory`).
pub const INTAKE_CASES: &str = "govfusion_intake_cases";
/// Gauge: 1 when the process should get traffic (`/readyz` answers 200), else 0.
pub const READY: &str = "govfusion_ready";
/// Gauge `{phase}`: 1 for the start-up phase the process is in, 0 for the others.
pub const STARTUP_PHASE: &str = "govfusion_startup_phase";

/// Gives every metric its help text and unit, for the `# HELP` lines.
pub(super) fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route pattern");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_counter!(CASES_SUBMITTED, "Applications taken by the intake system");
    describe_counter!(CASES_COMPLETED, "Cases completed, by outcome");
    describe_counter!(
        CASES_FAILED,
        "Cases that failed: their application was not handed on"
    );
    describe_histogram!(
        CASE_DURATION,
        Unit::Seconds,
        "Time from submission to completion"
    );
    describe_counter!(MESSAGES_HANDLED, "Bus messages a system finished");
    describe_counter!(
        MESSAGES_FAILED,
        "Bus messages a system could not finish yet; delivered again"
    );
    describe_counter!(
        MESSAGES_REPEATED,
        "Bus messages a system had already handled, come again"
    );
    describe_counter!(
        MESSAGES_DEAD_LETTERED,
        "Records a system could not read or refused, written to dead-letters"
    );
    describe_gauge!(
        BRIDGE_QUEUED,
        "Records queued in the bridge for their batch"
    );
    describe_histogram!(BRIDGE_BATCH_RECORDS, "Records per batch sent to the bus");
    describe_histogram!(
        BRIDGE_SEND_DURATION,
        Unit::Seconds,
        "Time to get a batch onto the bus, retries included"
    );
    describe_counter!(
        BRIDGE_RETRIES,
        "Batch sends that failed and were tried again"
    );
    describe_counter!(BRIDGE_FAILED_BATCHES, "Batches that failed for good");
    describe_counter!(BRIDGE_REFUSED, "Records the bus refused for good");
    describe_gauge!(
        CONSUMER_LAG,
        "Records on the partition not committed by the group"
    );
    describe_gauge!(CONSUMER_IN_FLIGHT, "Records handed out, not yet committed");
    describe_counter!(
        CONSUMER_REWINDS,
        "Partitions rewound after a failed handler"
    );
    describe_gauge!(
        DEPARTMENT_OPEN_EVENTS,
        "Collaboration events at the department not answered yet"
    );
    describe_gauge!(
        DEPARTMENT_OVERDUE,
        "Open items of the department past their deadline"
    );
    describe_gauge!(
        CENTRE_OPEN_EVENTS,
        "Collaboration events routed through the centre not answered yet"
    );
    describe_gauge!(
        CENTRE_OVERDUE,
        "Open events of the centre past their deadline"
    );
    describe_gauge!(
        INTAKE_CASES,
        "Cases the intake system keeps whole in memory, and open cases it keeps only where they stand"
    );
    describe_gauge!(READY, "1 when the process should get traffic");
    describe_gauge!(STARTUP_PHASE, "1 for the start-up phase the process is in");
}
