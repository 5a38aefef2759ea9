//! The answers kept against idempotency keys: bounded in number (the oldest is forgotten first)
//! and in time (each is forgotten `ttl` after its first request). One mutex over a map and an
//! insertion-ordered queue: every operation is a few map look-ups, never an `await`, so the lock
//! is held for microseconds and a plain `std::sync::Mutex` serves every HTTP worker.
//!
//! The store lives in the process: a restart forgets every key.

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What an idempotency key is scoped to: the same key on another endpoint is another key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request path, without the query string.
    pub path: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
}

/// A SHA-256 digest of a request body: what tells a retry from a reuse of the key.
pub type Fingerprint = [u8; 32];

/// An answer as it was first sent, to be sent again.
#[derive(Debug)]
pub struct Stored {
    /// The status of the first answer.
    pub status: StatusCode,
    /// Its headers (content type, location, …).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
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
}

/// Names one use of a key, so that finishing a request whose entry was since evicted (and the
/// key perhaps taken again) touches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// One key's entry.
#[derive(Debug)]
struct Entry {
    /// Which use of the key this is.
    ticket: Ticket,
    /// The body of the first request.
    fingerprint: Fingerprint,
    /// When the first request came; the entry expires `ttl` later.
    created: Instant,
    /// The answer, once there is one.
    answer: Option<Arc<Stored>>,
}

/// The map and the order of insertion, under one lock.
#[derive(Debug, Default)]
struct Inner {
    /// Every live entry.
    entries: HashMap<Key, Entry>,
    /// Entries by age, oldest first. May name entries already removed (their ticket no longer
    /// matches); those are skipped, and compacted away when they outnumber the live ones.
    order: VecDeque<(Ticket, Key)>,
    /// The next ticket to hand out.
    next_ticket: u64,
}

/// The idempotency store shared by every HTTP worker.
#[derive(Debug)]
pub struct Store {
    /// The entries.
    inner: Mutex<Inner>,
    /// How long an entry lives after its first request.
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

    /// Looks the key up at `now`; a new key is taken (in flight) with the body's fingerprint.
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
        let ticket = Ticket(inner.next_ticket);
        inner.next_ticket += 1;
        inner.entries.insert(
            key.clone(),
            Entry {
                ticket,
                fingerprint,
                created: now,
                answer: None,
            },
        );
        inner.order.push_back((ticket, key.clone()));
        while inner.entries.len() > self.max_entries {
            if !Self::pop_oldest(&mut inner) {
                break;
            }
        }
        Begin::Started(ticket)
    }

    /// Ends the use `ticket` of `key`: keeps `answer` for retries, or with `None` forgets the
    /// key so that a retry is handled afresh (a server error, or a request abandoned).
    pub fn finish(&self, key: &Key, ticket: Ticket, answer: Option<Stored>) {
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(key).filter(|e| e.ticket == ticket) else {
            return;
        };
        match answer {
            Some(answer) => entry.answer = Some(Arc::new(answer)),
            None => {
                inner.entries.remove(key);
                if inner.order.len() > 2 * inner.entries.len() + 64 {
                    let Inner { entries, order, .. } = &mut *inner;
                    order.retain(|(t, k)| entries.get(k).is_some_and(|e| e.ticket == *t));
                }
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

    /// Forgets the entries older than `ttl`, oldest first.
    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some((ticket, key)) = inner.order.front() {
            let live = inner.entries.get(key).filter(|e| e.ticket == *ticket);
            match live {
                Some(entry) if now.saturating_duration_since(entry.created) < self.ttl => break,
                _ => {
                    Self::pop_oldest(inner);
                }
            }
        }
    }

    /// Forgets the oldest entry still kept, skipping what was already removed. False when
    /// nothing is left.
    fn pop_oldest(inner: &mut Inner) -> bool {
        while let Some((ticket, key)) = inner.order.pop_front() {
            if inner.entries.get(&key).is_some_and(|e| e.ticket == ticket) {
                inner.entries.remove(&key);
                return true;
            }
        }
        false
    }

    /// The entries, even after a panic elsewhere: every change under the lock leaves the map
    /// and the queue consistent (at worst the queue names an entry that is gone, which is
    /// skipped), so a poisoned lock holds nothing half-done.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Key {
        Key {
            method: "POST".into(),
            path: "/api/v1/x".into(),
            key: k.into(),
        }
    }

    fn answer(status: u16, body: &'static str) -> Stored {
        Stored {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
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
        store.finish(&key("a"), ticket, Some(answer(202, "first")));

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
    }

    #[test]
    fn a_forgotten_answer_lets_the_retry_be_handled_again() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), ticket, None);
        started(store.begin(&key("a"), [1; 32], now));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let store = Store::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        let ticket = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), ticket, Some(answer(202, "first")));

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
            store.finish(&key(k), ticket, Some(answer(202, "ok")));
        }
        assert_eq!(store.len(), 2);
        started(store.begin(&key("a"), [1; 32], now));
        assert!(matches!(
            store.begin(&key("c"), [1; 32], now),
            Begin::Replay(_)
        ));
    }

    #[test]
    fn finishing_an_evicted_use_touches_the_new_one_not() {
        let store = Store::new(Duration::from_secs(60), 1);
        let now = Instant::now();
        let old = started(store.begin(&key("a"), [1; 32], now));
        started(store.begin(&key("b"), [1; 32], now));
        let new = started(store.begin(&key("a"), [1; 32], now));
        store.finish(&key("a"), old, None);
        assert!(matches!(
            store.begin(&key("a"), [1; 32], now),
            Begin::InFlight
        ));
        store.finish(&key("a"), new, Some(answer(200, "new")));
        assert!(matches!(
            store.begin(&key("a"), [1; 32], now),
            Begin::Replay(_)
        ));
    }
}
