//! The answers kept against idempotency keys: bounded in number (the oldest answer is forgotten
//! first) and in time (each answer is forgotten `ttl` after it was given). A key whose request
//! is still being handled is never forgotten, by either bound: forgetting it would let a retry
//! be handled a second time while the first is still at work. When every key kept is still in
//! flight, a new key is refused ([`Begin::Full`]) rather than taken past the bound.
//!
//! One mutex over a map and a queue of the answered keys, oldest answer first: every operation
//! is a few map look-ups, never an `await`, so the lock is held for microseconds and a plain
//! `std::sync::Mutex` serves every HTTP worker.
//!
//! The store lives in the process: a restart forgets every key.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What an idempotency key is scoped to: the same key on another endpoint is another key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Who asked: the authenticated caller (role, scope and account). One caller's key never
    /// answers another's request.
    pub client: String,
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request path, without the query string.
    pub path: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
}

/// A SHA-256 digest of a request body: what tells a retry from a reuse of the key.
pub type Fingerprint = [u8; 32];

/// An answer as it was first sent, to be sent again. Kept in exact-size buffers: the store
/// holds up to `http.idempotency_max_entries` of them for a day, and a header map's table and
/// a body read into a growing buffer would keep several times what the answer needs.
#[derive(Debug)]
pub struct Stored {
    /// The status of the first answer.
    pub status: StatusCode,
    /// Its headers (content type, location, …).
    pub headers: Box<[(HeaderName, HeaderValue)]>,
    /// Its body.
    pub body: Bytes,
}

impl Stored {
    /// The answer of `status`, `headers` and `body`, copied to exact size.
    pub fn of(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        Self {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            body: Bytes::copy_from_slice(body),
        }
    }
}

/// What [`Store::begin`] found for a key.
#[derive(Debug)]
pub enum Begin {
    /// The key is new: handle the request, then [`Store::finish`] with this ticket.
    Started(Ticket),
    /// The request was handled before: answer this again.
    Replay(Arc<Stored>),
    /// The first request with this key is still being handled.
    InFlight,
    /// The key was used with another body.
    Mismatch,
    /// The key is new, but the store holds its most entries and every one is still in flight:
    /// none can be forgotten to make room. Nothing was taken; the client may retry later.
    Full,
}

/// Names one use of a key, so that only the request that took the key can finish it: a stray
/// or repeated [`Store::finish`] touches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// One key's entry.
#[derive(Debug)]
struct Entry {
    /// Which use of the key this is.
    ticket: Ticket,
    /// The body of the first request.
    fingerprint: Fingerprint,
    /// The answer, once there is one; until then the entry is in flight and never forgotten.
    answer: Option<Arc<Stored>>,
}

/// The map and the order of insertion, under one lock.
#[derive(Debug, Default)]
struct Inner {
    /// Every live entry. A key is shared with `answered`, not copied: its four strings are
    /// most of what an entry holds besides the answer.
    entries: HashMap<Arc<Key>, Entry>,
    /// The answered entries with the time of their answer, oldest first: exactly the entries
    /// that may be forgotten. An entry joins when answered and leaves only when forgotten, and
    /// an entry in flight is never in it, so it never names an entry that is gone.
    answered: VecDeque<(Instant, Arc<Key>)>,
    /// The next ticket to hand out.
    next_ticket: u64,
}

/// The idempotency store shared by every HTTP worker.
#[derive(Debug)]
pub struct Store {
    /// The entries.
    inner: Mutex<Inner>,
    /// How long an answer is kept after it was given.
    ttl: Duration,
    /// Most entries kept at once.
    max_entries: usize,
}

impl Store {
    /// An empty store keeping at most `max_entries` (at least one), each for `ttl`.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            inner: Mutex::default(),
            ttl,
            max_entries: max_entries.max(1),
        }
    }

    /// Looks the key up at `now`; a new key is taken (in flight) with the body's fingerprint,
    /// forgetting the oldest answer if the store is full.
    pub fn begin(&self, key: &Key, fingerprint: Fingerprint, now: Instant) -> Begin {
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        if let Some(entry) = inner.entries.get(key) {
            return match &entry.answer {
                _ if entry.fingerprint != fingerprint => Begin::Mismatch,
                Some(answer) => Begin::Replay(Arc::clone(answer)),
                None => Begin::InFlight,
            };
        }
        if inner.entries.len() >= self.max_entries {
            match inner.answered.pop_front() {
                Some((_, oldest)) => {
                    inner.entries.remove(&oldest);
                }
                None => return Begin::Full,
            }
        }
        let ticket = Ticket(inner.next_ticket);
        inner.next_ticket += 1;
        let entry = Entry {
            ticket,
            fingerprint,
            answer: None,
        };
        inner.entries.insert(Arc::new(key.clone()), entry);
        Begin::Started(ticket)
    }

    /// Ends the use `ticket` of `key` at `now`: keeps `answer` for retries (for `ttl` from
    /// now), or with `None` forgets the key so that a retry is handled afresh (a server error,
    /// or a request that ended without an answer).
    pub fn finish(&self, key: &Key, ticket: Ticket, answer: Option<Stored>, now: Instant) {
        let mut inner = self.lock();
        let in_flight = |e: &&mut Entry| e.ticket == ticket && e.answer.is_none();
        let Some(entry) = inner.entries.get_mut(key).filter(in_flight) else {
            return;
        };
        match answer {
            Some(answer) => {
                entry.answer = Some(Arc::new(answer));
                // The entry was just found: its key is there to share.
                if let Some((shared, _)) = inner.entries.get_key_value(key) {
                    let shared = Arc::clone(shared);
                    inner.answered.push_back((now, shared));
                }
            }
            // In flight, so not in `answered`: removing it from the map is all.
            None => {
                inner.entries.remove(key);
            }
        }
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the answers given `ttl` or more before `now`, oldest first; entries in flight
    /// are not in the queue, so they stay.
    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some((answered, _)) = inner.answered.front() {
            if now.saturating_duration_since(*answered) < self.ttl {
                break;
            }
            if let Some((_, key)) = inner.answered.pop_front() {
                inner.entries.remove(&key);
            }
        }
    }

    /// The entries, even after a panic elsewhere: nothing under the lock can panic between
    /// changing the map and the queue (inserts, removes and pushes that only allocate), so a
    /// poisoned lock holds nothing half-done.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Key {
        Key {
            client: "officer:market:li".into(),
            method: "POST".into(),
            path: "/api/v1/x".into(),
            key: k.into(),
        }
    }

    fn answer(status: u16, body: &'static str) -> Stored {
        Stored::of(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    fn started(begin: Begin) -> Ticket {
        match begin {
            Begin::Started(ticket) => ticket,
            other => panic!("expected a new key, got {other:?}"),
        }
    }

    #[test]
    fn a_retry_gets_the_first_answer_and_another_body_is_refused() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        assert!(matches!(
            store.begin(&key("a"), [1; 32], now),
            Begin::InFlight
        ));
        store.finish(&key("a"), ticket, Some(answer(202, "first")), now);

        match store.begin(&key("a"), [1; 32], now) {
            Begin::Replay(stored) => {
                assert_eq!(stored.status, 202);
                assert_eq!(stored.body, "first");
            }
            other => panic!("expected a replay, got {other:?}"),
        }
        assert!(matches!(
            store.begin(&key("a"), [2; 32], now),
            Begin::Mismatch
        ));
        // The same key on another endpoint is another key.
        let elsewhere = Key {
            path: "/api/v1/y".into(),
            ..key("a")
        };
        started(store.begin(&elsewhere, [2; 32], now));
        // And so is the same key of another caller.
        let someone_else = Key {
            client: "officer:market:wang".into(),
            ..key("a")
        };
        started(store.begin(&someone_else, [2; 32], now));
    }

    #[test]
    fn a_forgotten_answer_lets_the_retry_be_handled_again() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), ticket, None, now);
        started(store.begin(&key("a"), [1; 32], now));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), ticket, Some(answer(202, "first")), now);

        let later = now + Duration::from_secs(61);
        started(store.begin(&key("a"), [2; 32], later));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn past_the_bound_the_oldest_is_forgotten() {
        let store = Store::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        for k in ["a", "b", "c"] {
            let ticket = started(store.begin(&key(k), [1; 32], now));
            store.finish(&key(k), ticket, Some(answer(202, "ok")), now);
        }
        assert_eq!(store.len(), 2);
        started(store.begin(&key("a"), [1; 32], now));
        assert!(matches!(
            store.begin(&key("c"), [1; 32], now),
            Begin::Replay(_)
        ));
    }

    #[test]
    fn the_bound_never_forgets_a_key_in_flight() {
        // Arrange: a store of two, holding one key in flight and one answered.
        let store = Store::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        let in_flight = started(store.begin(&key("a"), [1; 32], now));
        let ticket = started(store.begin(&key("b"), [1; 32], now));
        store.finish(&key("b"), ticket, Some(answer(202, "b")), now);

        // Act: a third key makes room by forgetting the answered one, not the older in flight.
        started(store.begin(&key("c"), [1; 32], now));

        // Assert: "a" is still in flight and keeps its answer when done; "b" is forgotten.
        assert!(matches!(
            store.begin(&key("a"), [1; 32], now),
            Begin::InFlight
        ));
        // Both kept keys are in flight: a fourth is refused, not taken past the bound.
        assert!(matches!(store.begin(&key("d"), [1; 32], now), Begin::Full));
        store.finish(&key("a"), in_flight, Some(answer(201, "a")), now);
        assert!(matches!(
            store.begin(&key("a"), [1; 32], now),
            Begin::Replay(_)
        ));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_key_in_flight_outlives_the_ttl_and_its_answer_is_kept_from_then() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));

        let later = now + Duration::from_secs(120);
        assert!(matches!(
            store.begin(&key("a"), [1; 32], later),
            Begin::InFlight
        ));
        store.finish(&key("a"), ticket, Some(answer(202, "late")), later);
        assert!(matches!(
            store.begin(&key("a"), [1; 32], later + Duration::from_secs(59)),
            Begin::Replay(_)
        ));
    }

    #[test]
    fn a_stray_or_second_finish_touches_nothing() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), Ticket(ticket.0 + 1), None, now);
        store.finish(&key("a"), ticket, Some(answer(200, "first")), now);
        store.finish(&key("a"), ticket, None, now);
        assert!(matches!(
            store.begin(&key("a"), [1; 32], now),
            Begin::Replay(_)
        ));
    }

    #[test]
    fn an_answered_key_is_kept_once_and_shared_with_the_queue_of_answers() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), ticket, Some(answer(202, "first")), now);

        let inner = store.lock();
        let (kept, _) = inner.entries.get_key_value(&key("a")).unwrap();
        let (_, queued) = inner.answered.front().unwrap();
        assert!(Arc::ptr_eq(kept, queued));
    }
}
