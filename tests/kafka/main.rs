//! Kafka tests: the whole service on the Kafka bus — librdkafka's mock cluster started in the
//! test process (`embedded`, always run) and a real Kafka-protocol broker. The tests that need
//! the broker are `#[ignore = "needs GOVFUSION_TEST_KAFKA …"]`: a plain `cargo test` reports
//! them as ignored; `cargo test -- --include-ignored` runs them and fails them when
//! `GOVFUSION_TEST_KAFKA=host:port` is missing (`.ci/run` provides the broker).
//! Every test uses its own topic prefix, so tests sharing one broker never see each other's
//! records. Raw rdkafka clients read and write the topics as an outside system would. The
//! user-visible flows themselves are `tests/api/flow.rs`, which `.ci/run` runs again on each
//! Kafka bus kind (`GOVFUSION_TEST_BUS=embedded|kafka`).
//!
//! * [`common`] — shared by every test binary: `TestApp`, the requests a client makes, waiting,
//!   raw rdkafka clients (`raw`, independent of govfusion's bus code).
//! * [`helpers`] — `spawn_app()` on a Kafka bus, and "exactly once" as its topics show it.
//! * [`broker_faults`] — failing produce requests and brokers going down lose and repeat nothing.
//! * [`consumer_restart`] — a consumer group resumes after its committed offsets.
//! * [`oversized`] — a record too large for the producer or the broker is dead-lettered (or
//!   its application refused with 413), and cases go on.
//! * [`poison`] — an unreadable record goes to dead-letters with its origin in headers.
//! * [`external_department`] — an outside system plays a department through Kafka alone,
//!   opening the sealed applicant from the documented format; no topic holds it in clear.
//! * [`partition_order`] — one case's records share a partition and keep their causal order.

#[path = "../common/mod.rs"]
mod common;
use common::raw;

mod broker_faults;
mod consumer_restart;
mod external_department;
mod helpers;
mod oversized;
mod partition_order;
mod poison;

/// How long a wait of [`common::poll`] looks before the test fails. A bound on waiting, not a
/// performance claim: generous, because a client that lost its broker reconnects with a
/// backoff of up to 10 s.
const POLL_FOR: std::time::Duration = std::time::Duration::from_secs(40);
