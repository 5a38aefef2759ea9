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

/// A few ids kept as a set, in a list grown one at a time: what one case holds at one system
/// (the messages it handled, the events that help it), a handful each. A hash set's first entry
/// takes a table of four, and every open case holds one; a lookup here is a pass over a few.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FewIds<T>(Vec<T>);

impl<T> Default for FewIds<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: PartialEq> FewIds<T> {
    /// Whether `id` is kept.
    pub fn contains(&self, id: &T) -> bool {
        self.0.contains(id)
    }

    /// Keeps `id`; whether it was not kept yet.
    pub fn insert(&mut self, id: T) -> bool {
        if self.contains(&id) {
            return false;
        }
        self.0.reserve_exact(1);
        self.0.push(id);
        true
    }

    /// Lets `id` go; whether it was kept.
    pub fn remove(&mut self, id: &T) -> bool {
        let Some(at) = self.0.iter().position(|kept| kept == id) else {
            return false;
        };
        self.0.swap_remove(at);
        true
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ids kept, in no particular order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T: PartialEq> FromIterator<T> for FewIds<T> {
    fn from_iter<I: IntoIterator<Item = T>>(ids: I) -> Self {
        let ids = ids.into_iter();
        let mut few = Self(Vec::with_capacity(ids.size_hint().0));
        for id in ids {
            few.insert(id);
        }
        // Room made for repeats that were not kept.
        few.0.shrink_to_fit();
        few
    }
}

impl<T> IntoIterator for FewIds<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a FewIds<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::FewIds;

    #[test]
    fn few_ids_keep_each_id_once_and_let_it_go() {
        let mut ids: FewIds<&str> = ["a", "b", "a"].into_iter().collect();
        assert_eq!(ids.len(), 2, "a repeat is kept once");
        assert!(ids.insert("c"));
        assert!(!ids.insert("b"));
        assert!(ids.contains(&"c"));
        assert!(ids.remove(&"a"));
        assert!(!ids.remove(&"a"));
        assert!(!ids.contains(&"a"));
        let mut left: Vec<&str> = ids.iter().copied().collect();
        left.sort_unstable();
        assert_eq!(left, ["b", "c"]);
        assert!(!ids.is_empty());
    }
}
