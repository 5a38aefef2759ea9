//! govfusion fuses a city's one-stop service platform (一网通办) with its three-tier governance
//! platform (一网统管): applications flow from terminals through the intake system to the
//! responsible department; help from other departments is routed as collaboration events through
//! the city, district and street governance centres; the approval flows back to the applicant.
//! Every exchange between systems crosses a message bus in one JSON envelope keyed by case id.
//!
//! # Layout
//!
//! * [`domain`] — ids, tiers, channels, the envelope and the payloads of the wire contract, the
//!   identity number and phone formats, the applicant masked for readers who may not see it.
//! * [`settings`] — the TOML configuration, layered with `GOVFUSION__…` variables, validated.
//! * [`catalog`] — the configured city, indexed for look-ups.
//! * [`crypto`] — the keyring that seals personal data (the applicant block) for the bus.
//! * [`maps`] — the hash maps and sets of what the service issues and configures, with a
//!   faster hasher than the standard one.
//! * [`clock`] — where "now" comes from; a manual clock moves deadlines in tests.
//! * [`calendar`] — the working calendar: working days, due dates, working hours.
//! * [`port`] — what systems and the bus exchange: inbound messages, handling errors, publish.
//! * [`bus`] — the bus interface, the in-memory bus, the Kafka bus (and its embedded mock
//!   cluster) and the bridge actor.
//! * [`actors`] — the systems: terminals, intake, governance centres, departments, supervision.
//! * [`feed`] — the intake feed as the city centre reads it, in process or over HTTP.
//! * [`systems`] — builds the systems of this process's roles, rebuilds their state from the
//!   bus and subscribes them.
//! * [`auth`] — bearer tokens checked against the identity provider's keys; who is calling.
//! * [`http`] — the JSON API, and what each role may do with it.
//! * [`audit`] — the hash-chained audit trail of the API's requests, and its verification.
//! * [`app`] — the service: systems plus HTTP, with one shutdown path.
//! * [`monitoring`] — the Prometheus metrics served at `/metrics`, recorded where things happen.
//! * [`logging`] — the process's log lines, as text or as JSON (`[log] format`).
//! * [`telemetry`] — the spans exported to an OpenTelemetry collector over OTLP/HTTP
//!   (`[telemetry] otlp_endpoint`), off by default.
//! * [`store`] — the case repository: cases and consumer offsets in SQLite or PostgreSQL, with
//!   keyset-paginated lists; the intake system writes every case's row there (`GET /cases`).
//! * [`simulate`] — drives synthetic cases through the whole flow and measures it.
//! * [`bench`] — the bridge's produce throughput against raw rdkafka.

pub mod actors;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod bus;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod crypto;
pub mod domain;
pub mod feed;
pub mod http;
pub mod logging;
pub mod maps;
pub mod monitoring;
pub mod pages;
pub mod port;
pub mod settings;
pub mod simulate;
pub mod store;
pub mod systems;
pub mod telemetry;
