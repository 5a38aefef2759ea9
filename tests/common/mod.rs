//! What the test binaries share. Each `main.rs` includes it with
//! `#[path = "../common/mod.rs"] mod common;` and declares at its root how long its waits look,
//! `const POLL_FOR: Duration`, which [`poll`] reads: a service on the in-memory bus answers in
//! milliseconds, one on a broker after a reconnect in seconds.
//!
//! * [`app`] — a real service on `127.0.0.1:0` (`TestApp`) and the requests its users make.
//! * [`callers`] — who a test acts as: tokens minted with the tests' development key.
//! * [`env`] — the variables naming a broker or a tansu binary, and the tests that need them.
//! * [`once`] — "exactly once" as the bus shows it: one message id per cause.
//! * [`records`] — bus records a test writes as an outside system would.
//! * [`raw`] — raw rdkafka clients, independent of govfusion's bus code.
//!
//! Each binary uses part of this module; what one leaves unused is not dead in another.
#![allow(dead_code)]

pub mod app;
pub mod callers;
pub mod env;
pub mod once;
pub mod raw;
pub mod records;

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Calls `probe` every [`POLL_EVERY`] until it gives `Ok`; panics with `what` and the last
/// `Err` (a description of what was seen) after the binary's `POLL_FOR`: a bound on waiting,
/// not a performance claim.
pub async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let limit = crate::POLL_FOR;
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("gave up after {limit:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// The case statuses, in the only order a case moves through them.
pub const STATUS_ORDER: [&str; 7] = [
    "submitted",
    "published",
    "accepted",
    "suspended",
    "collaborating",
    "decided",
    "completed",
];

/// Where `status` stands in [`STATUS_ORDER`]; panics on a name that is not a case status.
pub fn status_rank(status: &str) -> usize {
    STATUS_ORDER
        .iter()
        .position(|known| *known == status)
        .unwrap_or_else(|| panic!("`{status}` is not a case status"))
}

/// Logs to the test output when `RUST_LOG` asks for it.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
