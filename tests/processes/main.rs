//! Multi-process tests: the city spread over `govfusion serve` processes with their own roles —
//! intake, governance, two instances of the market department, fire with the street office —
//! sharing one Kafka-protocol broker, while processes are killed, stopped and restarted and the
//! broker freezes or restarts. Every case must complete exactly once.
//!
//! They need a real broker (`GOVFUSION_TEST_KAFKA=host:port`), and for the broker faults a
//! tansu binary the test starts itself (`GOVFUSION_TEST_TANSU`, and
//! `GOVFUSION_TEST_DURABLE_TANSU` for one built with sqlite storage); without them a test prints
//! `SKIPPED` and passes. `.ci/run` provides all three; the durable-broker test runs within the
//! limits of tansu 0.6.0's sqlite engine (README, "Limits of this version").
//!
//! * [`harness`] — processes, the city, and what "exactly once" means.
//! * [`kills`] — kill -9 and SIGTERM of each role mid-run.
//! * [`broker`] — the broker frozen past the clients' timeouts, and a durable broker restarted.

#[path = "../kafka/raw.rs"]
#[allow(dead_code)]
mod raw;

mod broker;
mod harness;
mod kills;
