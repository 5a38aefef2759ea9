//! Which cases an intake process issues and follows when the city runs several
//! (`service.intake_instances`; README, "Running across several machines").
//!
//! Instance `i` of `n` issues only case ids whose partition is in its share of the partitions
//! (partition modulo `n` is `i`), so that every record of its cases lands on a partition it
//! reads: it alone feeds them to the city centre, follows them on the bus and writes their
//! rows to the case repository. Its feed positions are those that, modulo `n`, are `i` (`n + i`,
//! `2n + i`, …), so that the positions of every instance can be told apart in the store. A
//! case of another instance is answered from the case repository, read afresh each time and
//! never kept, since this process does not follow it.

use crate::bus::{Partitioner, Share};
use crate::domain::CaseId;

/// An intake process's share of the cases.
#[derive(Debug, Clone, Copy)]
pub struct IntakeShare {
    /// Which partitions are its own.
    share: Share,
    /// How many partitions each topic has.
    partitions: u32,
    /// How the bus chooses a case's partition.
    partitioner: Partitioner,
}

impl IntakeShare {
    /// Every case: the only intake process.
    pub fn whole() -> Self {
        Self {
            share: Share::ALL,
            partitions: 1,
            partitioner: Partitioner::Fnv1a,
        }
    }

    /// The cases whose partition, of `partitions` chosen by `partitioner`, is in `share`.
    pub fn new(share: Share, partitions: u32, partitioner: Partitioner) -> Self {
        Self {
            share,
            partitions,
            partitioner,
        }
    }

    /// Its share of the partitions.
    pub fn share(&self) -> Share {
        self.share
    }

    /// Whether `case_id` is one of its cases.
    pub fn owns(&self, case_id: &CaseId) -> bool {
        self.share.instances <= 1
            || self.share.takes(
                self.partitioner
                    .partition(case_id.as_str(), self.partitions),
            )
    }

    /// A new case id of its own.
    pub(super) fn issue(&self) -> CaseId {
        loop {
            // One in `instances` ids is its own: a few tries on average.
            let case_id = CaseId::generate();
            if self.owns(&case_id) {
                return case_id;
            }
        }
    }

    /// The feed position before its first: no position of its own is at or below it.
    pub(super) fn origin(&self) -> u64 {
        u64::from(self.share.instance)
    }

    /// How far apart its feed positions are.
    pub(super) fn step(&self) -> u64 {
        u64::from(self.share.instances.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::IntakeShare;
    use crate::bus::{Partitioner, Share};

    #[test]
    fn each_instance_issues_ids_of_its_own_partitions_only() {
        let shares: Vec<IntakeShare> = (0..3)
            .map(|instance| {
                let share = Share {
                    instance,
                    instances: 3,
                };
                IntakeShare::new(share, 8, Partitioner::Murmur2)
            })
            .collect();
        for (i, share) in shares.iter().enumerate() {
            for _ in 0..50 {
                let case_id = share.issue();
                let partition = Partitioner::Murmur2.partition(case_id.as_str(), 8);
                assert_eq!(partition % 3, i as u32, "{case_id}");
                let owners = shares.iter().filter(|s| s.owns(&case_id)).count();
                assert_eq!(owners, 1, "{case_id}");
            }
        }
        assert!(IntakeShare::whole().owns(&shares[1].issue()));
    }
}
