//! API tests: each test starts the whole service (every system, the in-memory bus and the HTTP
//! listener on a free port) and talks to it as a terminal, an applicant or a department's staff
//! would.
//!
//! * [`common`] — shared by every test binary: `TestApp`, the requests a client makes, waiting.
//! * [`helpers`] — `spawn_app()` on the bus `GOVFUSION_TEST_BUS` names, a clock tests move.
//! * [`figures_by_sql`] — the supervision figures by SQL equal the supervisor's own, on
//!   SQLite and on PostgreSQL.
//! * [`flow`] — cases through the whole fusion: plain, with collaboration, with staff decisions.
//! * [`abuse`] — a client past its rate limit gets 429 while another is served; security
//!   headers on every response; CORS only for the configured origins.
//! * [`access`] — 401 without a token, 403 outside a grant, tokens that fail a check, keys
//!   that rotate at the identity provider, an applicant's own cases.
//! * [`audit`] — who did what: a record per POST and per clear read, hash-chained, verified.
//! * [`bad_input`] — every kind of bad request gets a clear JSON refusal, and the service stays up.
//! * [`case_list`] — `GET /cases` from the case repository: pages, an officer's department,
//!   filters, 403 and 422, no personal data in the database, every case after a restart.
//! * [`bus_faults`] — duplicate, failed, delayed and poisoned bus traffic loses nothing.
//! * [`deadlines`] — working-day due dates, on time or late, suspensions (补正), the calendar.
//! * [`event_lifecycle`] — sign, return and re-route, extend, escalate and reassign an event.
//! * [`idempotency`] — `Idempotency-Key` on POSTs; a body that never arrives gets 408.
//! * [`masking`] — the applicant in clear to the applicant, their terminal and the handling
//!   department's officers, masked for every other reader; `no-store` on what carries it.
//! * [`oidc`] — the screens' sign-in at an identity provider: the code flow with PKCE, a
//!   forged return and a mismatched verifier refused.
//! * [`openapi`] — the committed OpenAPI document is the generated one, served without a
//!   token, OpenAPI 3.1 with every reference resolved; every route served is in it and every
//!   route in it is served.
//! * [`oversized`] — an application too large for the bus gets 413; a record the bus refuses
//!   anyway is dead-lettered, blocks nothing, and readiness says so until it passes; a
//!   shutdown that could not deliver records fails, saying how many.
//! * [`pages`] — the screens' pages: Chinese HTML under a policy of their own, the session
//!   cookie, a form from another site refused, the API's refusal shown in words.
//! * [`personal_data`] — no topic holds the applicant in clear, flow, state or dead-letters;
//!   the API shows it; after a key rotation old cases still open.
//! * [`restart`] — on a durable in-memory bus the service is stopped and started again: state
//!   restored, groups resumed, redelivered and lost-snapshot records have no second effect.
//! * [`stalled`] — a case a department lost is listed as stalled and completes once re-driven;
//!   a completed one is neither listed nor re-driven.
//! * [`staff_acts`] — a person's act the bus refuses is kept and sent until it is on the bus;
//!   the same request again answers the same.
//! * [`supervision`] — yellow and red warnings, the department and centre figures, ratings.
//! * [`supervision_restart`] — after a restart supervision reads no flow record again, gives
//!   the same figures, raises each warning once, and holds only the cases still open.
//! * [`traces`] — every record of a case names the case's trace in a W3C `traceparent`, each
//!   hop with a span id of its own; an outside system's record without one is handled.
//! * [`validation`] — identity numbers, phones and the `[input]` limits: 422 naming the field;
//!   a body not labelled JSON gets 415.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod access;
mod audit;
mod bad_input;
mod bus_faults;
mod case_list;
mod closing;
mod deadlines;
mod event_lifecycle;
mod figures_by_sql;
mod flow;
mod helpers;
mod idempotency;
mod masking;
mod oidc;
mod openapi;
mod oversized;
mod pages;
mod personal_data;
mod repository;
mod restart;
mod staff_acts;
mod stalled;
mod supervision;
mod supervision_memory;
mod supervision_restart;
mod traces;
mod validation;

/// How long a wait of [`common::poll`] looks before the test fails. A bound on waiting, not a
/// performance claim.
const POLL_FOR: std::time::Duration = std::time::Duration::from_secs(10);
