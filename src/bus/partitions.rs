//! Which partition a key goes to, and which partitions a consumer alone reads.

use std::fmt;

/// How a bus chooses a key's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// The in-memory bus's: [`partition_for`].
    Fnv1a,
    /// Kafka's (librdkafka's `murmur2_random`, the Java client's default): the positive part of
    /// the key's murmur2 hash, modulo the partition count.
    Murmur2,
}

impl Partitioner {
    /// The partition of `partitions` that `key` goes to.
    pub fn partition(self, key: &str, partitions: u32) -> u32 {
        match self {
            Partitioner::Fnv1a => partition_for(key, partitions),
            Partitioner::Murmur2 => (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions.max(1),
        }
    }
}

/// The partition a key goes to on the in-memory bus: FNV-1a of the key, modulo the partition
/// count.
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % partitions.max(1)
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`, seed `0x9747b28c`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    // The Java client hashes the length as a 32-bit int; a key is far shorter.
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partitions a consumer alone reads: instance `instance` of `instances` reads every
/// partition whose number, modulo `instances`, is `instance`. Several processes that split a
/// topic this way read each partition once between them, without a group to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Which of the instances this is, from 0.
    pub instance: u32,
    /// How many instances split the partitions.
    pub instances: u32,
}

impl Share {
    /// Every partition: the share of the only instance.
    pub const ALL: Share = Share {
        instance: 0,
        instances: 1,
    };

    /// Whether `partition` is in this share.
    pub fn takes(&self, partition: u32) -> bool {
        partition % self.instances.max(1) == self.instance
    }
}

impl fmt::Display for Share {
    /// `instance/instances`, e.g. `1/2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.instances)
    }
}

#[cfg(test)]
mod tests {
    use super::{murmur2, Partitioner, Share};

    /// The values of the Java client's own test of `Utils.murmur2`.
    #[test]
    fn murmur2_gives_the_java_clients_hashes() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, java) in cases {
            assert_eq!(
                murmur2(key) as i32,
                java,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn a_kafka_partition_is_the_positive_hash_modulo_the_count() {
        // -973932308 & 0x7fffffff = 1173551340; modulo 8 is 4.
        assert_eq!(Partitioner::Murmur2.partition("21", 8), 4);
    }

    #[test]
    fn the_shares_of_the_instances_take_each_partition_once() {
        let shares = [
            Share {
                instance: 0,
                instances: 3,
            },
            Share {
                instance: 1,
                instances: 3,
            },
            Share {
                instance: 2,
                instances: 3,
            },
        ];
        for partition in 0..8 {
            let takers = shares.iter().filter(|s| s.takes(partition)).count();
            assert_eq!(takers, 1, "partition {partition}");
        }
        assert!((0..8).all(|p| Share::ALL.takes(p)));
    }
}
