//! Kafka tests: the whole service on the Kafka bus — librdkafka's mock cluster started in the
//! test process (`embedded`, always run) and a real Kafka-protocol broker (`kafka`, run when
//! `GOVFUSION_TEST_KAFKA=host:port` names one; otherwise those tests print `SKIPPED` and pass).
//! Every test uses its own topic prefix, so tests sharing one broker never see each other's
//! records. Raw rdkafka clients read and write the topics as an outside system would.
//!
//! * [`helpers`] — `spawn_app()` on a Kafka bus, and the requests a client makes.
//! * [`raw`] — raw rdkafka producer and topic reader, independent of govfusion's bus code.
//! * [`flows`] — the user-visible flows of `tests/api/flow.rs`, on each Kafka bus kind.
//! * [`broker_faults`] — failing produce requests and brokers going down lose and repeat nothing.
//! * [`consumer_restart`] — a consumer group resumes after its committed offsets.
//! * [`poison`] — an unreadable record goes to dead-letters with its origin in headers.
//! * [`external_department`] — an outside system plays a department through Kafka alone.
//! * [`partition_order`] — one case's records share a partition and keep their causal order.

mod broker_faults;
mod consumer_restart;
mod external_department;
mod flows;
mod helpers;
mod partition_order;
mod poison;
mod raw;
