//! [`Resume`]: where a consumer alone starts, and whom it tells how far it got.

use super::Topic;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where a consumer alone resumes and whom it tells how far it got: a group that keeps its
/// offsets in the same transaction as what it writes (the case repository's view groups)
/// starts where its last transaction left it instead of at the start of every partition.
#[derive(Clone)]
pub struct Resume {
    /// The next offset to read of each partition; a partition not named starts at its
    /// beginning.
    pub from: HashMap<(Topic, u32), u64>,
    /// Told the next offset to read of a partition once the record before it and every
    /// earlier one were handled; called in offset order per partition.
    pub store: OffsetSink,
}

impl Resume {
    /// One group reading for several that each resume as given: it starts each partition at
    /// the earliest of their offsets (a partition one of them does not name, at its
    /// beginning), and tells each of them its progress. None when none of them resumes; all
    /// of them or none do, as they keep their offsets in the same place.
    pub fn together(resumes: Vec<Option<Resume>>) -> Option<Resume> {
        let resumes: Vec<Resume> = resumes.into_iter().flatten().collect();
        let (first, rest) = resumes.split_first()?;
        let from = first
            .from
            .iter()
            .filter_map(|(at, next)| {
                rest.iter()
                    .map(|other| other.from.get(at).copied())
                    .try_fold(*next, |lowest, other| Some(lowest.min(other?)))
                    .map(|lowest| (*at, lowest))
            })
            .collect();
        let sinks: Vec<OffsetSink> = resumes.iter().map(|r| r.store.clone()).collect();
        let store: OffsetSink = Arc::new(move |topic: Topic, partition: u32, next: u64| {
            for sink in &sinks {
                sink(topic, partition, next);
            }
        });
        Some(Resume { from, store })
    }
}

/// Receives a partition's next offset to read: `(topic, partition, next_offset)`.
pub type OffsetSink = Arc<dyn Fn(Topic, u32, u64) + Send + Sync>;

impl fmt::Debug for Resume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resume")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A resume from `from`, whose sink notes what it is told in `told`.
    fn resume(from: &[(u32, u64)], told: &Arc<Mutex<Vec<(u32, u64)>>>) -> Resume {
        let told = told.clone();
        Resume {
            from: from
                .iter()
                .map(|(partition, next)| ((Topic::Approvals, *partition), *next))
                .collect(),
            store: Arc::new(move |_, partition, next| told.lock().unwrap().push((partition, next))),
        }
    }

    #[test]
    fn together_they_start_each_partition_at_the_earlier_offset_and_both_are_told() {
        // Arrange: partition 0 known to both, 1 to the first alone.
        let (first, second) = (Arc::default(), Arc::default());
        let resumes = vec![
            Some(resume(&[(0, 40), (1, 7)], &first)),
            Some(resume(&[(0, 25)], &second)),
        ];

        // Act
        let together = Resume::together(resumes).expect("both resume");
        (together.store)(Topic::Approvals, 0, 41);

        // Assert: partition 1 starts at its beginning, as the second would.
        let from: Vec<_> = together.from.into_iter().collect();
        assert_eq!(from, [((Topic::Approvals, 0), 25)]);
        assert_eq!(*first.lock().unwrap(), [(0, 41)]);
        assert_eq!(*second.lock().unwrap(), [(0, 41)]);
        assert!(Resume::together(vec![None, None]).is_none());
    }
}
