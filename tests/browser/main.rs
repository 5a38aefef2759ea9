//! The people's screens in a real browser (issue 17): Debian's Chromium, headless, driven over
//! WebDriver by chromedriver (`GOVFUSION_TEST_CHROMEDRIVER`), against a real service on the
//! in-memory bus. Every test is `#[ignore = "needs …"]`: a plain `cargo test` reports them as
//! ignored, and `cargo test -- --include-ignored` (`.ci/run`, which installs Chromium) runs
//! them. Each saves screenshots at desktop and phone width under `target/screenshots/`.
//!
//! * [`driver`] — chromedriver and a browser session, and the screenshots.
//! * [`portal`] — a citizen applies through the form, by mouse and by keyboard alone, and
//!   follows the case to its outcome.
//! * [`operations`] — the dashboard shows the bus live, marks an overdue event red, and
//!   reassigns a returned event.
//! * [`workbench`] — an officer decides a case in the workbench, and the citizen's open page
//!   shows the outcome without a reload.

#[path = "../common/mod.rs"]
mod common;

mod driver;
mod operations;
mod portal;
mod workbench;

/// How long a wait looks before the test fails: a bound, not a performance claim.
const POLL_FOR: std::time::Duration = std::time::Duration::from_secs(30);
