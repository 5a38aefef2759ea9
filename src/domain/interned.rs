//! Texts that many holders read apart and keep together: one allocation for all of them.
//!
//! A case id reaches every system a case passes, and each reads it from its own messages — the
//! envelope's header and the payload alike — so without sharing, an open case's id is kept in
//! about as many allocations as there are maps that name it (departments, centres, the
//! supervision system, each system's handled ids). [`Interned::text`] hands out the text already
//! held by someone, if anyone still holds it, and remembers a new one otherwise.
//!
//! The table holds each text weakly: it never keeps a text alive that nobody else holds. A
//! weak reference does keep the text's allocation until it is let go, so the references whose
//! text nobody holds any more are swept out whenever the table has grown by half since the last
//! sweep: its size stays within a constant factor of the texts held.

use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Shards, each under its own lock, so that threads reading different texts rarely wait.
const SHARDS: usize = 16;

/// A table grows at least this much before its first sweep.
const FIRST_SWEEP: usize = 1024;

/// Texts shared by whoever reads the same one.
pub(super) struct Interned {
    /// The shards, by the text's hash.
    shards: Box<[Mutex<Shard>]>,
    /// The hash of a text.
    hasher: foldhash::fast::FixedState,
}

/// One shard's texts.
#[derive(Default)]
struct Shard {
    /// Each text weakly, with its hash (a text nobody holds cannot be hashed again).
    table: HashTable<(u64, Weak<str>)>,
    /// How many it held after the last sweep.
    after_sweep: usize,
}

impl Interned {
    /// An empty table.
    pub(super) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// `text`, shared with whoever holds the same text, if anyone does.
    pub(super) fn text(&self, text: &str) -> Arc<str> {
        let hash = self.hasher.hash_one(text);
        // Middle bits pick the shard: a table finds its buckets by the low bits and tells
        // entries apart first by the top seven.
        let shard = &self.shards[(hash >> 32) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let held = shard
            .table
            .iter_hash(hash)
            .filter(|(h, _)| *h == hash)
            .find_map(|(_, weak)| weak.upgrade().filter(|held| &**held == text));
        if let Some(held) = held {
            return held;
        }
        let new: Arc<str> = Arc::from(text);
        shard.sweep_if_grown();
        shard
            .table
            .insert_unique(hash, (hash, Arc::downgrade(&new)), |(h, _)| *h);
        new
    }

    /// How many texts the table refers to, held or not yet swept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .table
                    .len()
            })
            .sum()
    }
}

impl Shard {
    /// Lets go the references whose text nobody holds, once the table has grown by half
    /// since the last sweep.
    fn sweep_if_grown(&mut self) {
        let threshold = self.after_sweep + (self.after_sweep / 2).max(FIRST_SWEEP / SHARDS);
        if self.table.len() < threshold {
            return;
        }
        self.table.retain(|(_, weak)| weak.strong_count() > 0);
        self.after_sweep = self.table.len();
        self.table.shrink_to(self.after_sweep * 2, |(h, _)| *h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_read_twice_is_one_allocation_while_someone_holds_it() {
        let interned = Interned::new();
        let first = interned.text("01a2b3c4");
        let second = interned.text(&String::from("01a2b3c4"));
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &interned.text("01a2b3c5")));

        drop((first, second));
        let again = interned.text("01a2b3c4");
        assert_eq!(&*again, "01a2b3c4", "a text nobody held is made anew");
    }

    #[test]
    fn texts_nobody_holds_are_swept_as_the_table_grows() {
        let interned = Interned::new();
        let kept: Vec<Arc<str>> = (0..100)
            .map(|i| interned.text(&format!("kept-{i}")))
            .collect();
        for i in 0..20_000 {
            drop(interned.text(&format!("gone-{i}")));
        }
        assert!(
            interned.len() < 100 + 2 * FIRST_SWEEP,
            "{} references for 100 texts held",
            interned.len()
        );
        for (i, text) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(text, &interned.text(&format!("kept-{i}"))));
        }
    }
}
