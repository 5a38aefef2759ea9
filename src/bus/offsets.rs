//! Which offset of a partition may be committed: the highest one below which every record was
//! handled. Records complete out of order (a skipped record at once, a handled one later); the
//! committed position only ever moves over a contiguous run of finished records.

use std::collections::VecDeque;

/// The records of one partition handed out and not yet committable, oldest first.
#[derive(Debug, Default)]
pub struct PartitionOffsets {
    /// (offset, finished) in delivery order.
    pending: VecDeque<(i64, bool)>,
    /// Bumped on every rewind; completions of an older generation are ignored.
    generation: u64,
}

impl PartitionOffsets {
    /// The current generation, to hand out with a delivery.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Notes a delivery of `offset`, finished already or not.
    pub fn delivered(&mut self, offset: i64, finished: bool) {
        self.pending.push_back((offset, finished));
    }

    /// Marks `offset` of `generation` finished. Returns the last offset of the contiguous
    /// finished run that can now be stored, if it moved.
    pub fn finished(&mut self, offset: i64, generation: u64) -> Option<i64> {
        if generation != self.generation {
            return None;
        }
        if let Some(entry) = self
            .pending
            .iter_mut()
            .find(|(o, done)| *o == offset && !done)
        {
            entry.1 = true;
        }
        self.take_finished()
    }

    /// Pops the finished run at the front; returns its last offset.
    pub fn take_finished(&mut self) -> Option<i64> {
        let mut last = None;
        while let Some(&(offset, true)) = self.pending.front() {
            last = Some(offset);
            self.pending.pop_front();
        }
        last
    }

    /// Forgets every pending delivery (the partition is re-read from an earlier offset or was
    /// taken away); their completions will be ignored.
    pub fn rewind(&mut self) {
        self.pending.clear();
        self.generation += 1;
    }

    /// The lowest offset handed out and not finished (what a rewind must go back to).
    pub fn first_unfinished(&self) -> Option<i64> {
        self.pending.iter().find(|(_, done)| !done).map(|(o, _)| *o)
    }

    /// Deliveries pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_a_contiguous_finished_run() {
        let mut p = PartitionOffsets::default();
        for o in 10..15 {
            p.delivered(o, o == 11);
        }
        assert_eq!(p.finished(12, 0), None, "10 is still open");
        assert_eq!(
            p.finished(10, 0),
            Some(12),
            "10, 11 (skipped) and 12 are done"
        );
        assert_eq!(p.finished(14, 0), None);
        assert_eq!(p.finished(13, 0), Some(14));
        assert!(p.is_empty());
    }

    #[test]
    fn a_rewind_goes_back_to_the_lowest_unfinished_record() {
        let mut p = PartitionOffsets::default();
        for o in 0..4 {
            p.delivered(o, false);
        }
        p.finished(0, 0);
        // 2 fails while 1 is still running: redelivery must start at 1, not 2.
        assert_eq!(p.first_unfinished(), Some(1));
    }

    #[test]
    fn completions_from_before_a_rewind_are_ignored() {
        let mut p = PartitionOffsets::default();
        p.delivered(5, false);
        let old = p.generation();
        p.rewind();
        p.delivered(5, false);
        assert_eq!(p.finished(5, old), None);
        assert_eq!(p.finished(5, p.generation()), Some(5));
    }
}
