//! Hash maps and sets keyed by what the service itself issues or configures: case, event and
//! message ids, department, centre and matter codes, topics and partitions.
//!
//! They hash with foldhash instead of the standard library's SipHash-1-3. SipHash resists a
//! caller who picks keys so that they collide (HashDoS); the keys here are ids the intake and the
//! departments issued, ids derived from them, and codes from the configuration, which no API
//! caller chooses, and which every record and every message looks up several times over: SipHash
//! was a few per cent of the CPU the memory bus spends on a case. foldhash is seeded per map, at
//! random, as the standard hasher is.
//!
//! Maps keyed by what a caller sends (the HTTP API's idempotency keys, the rate limiter's
//! clients, the verified tokens' cache) keep the standard hasher.

/// A hash map keyed by an id or a code (see the module's documentation).
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set of ids or codes (see the module's documentation).
pub type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// A concurrent map keyed by an id or a code (see the module's documentation).
pub type SharedMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;
