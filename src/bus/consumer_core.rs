//! The part of a consumer both buses share: records in flight per partition, what may be
//! stored, rewinding a partition after a failed handler, and draining on stop.
//!
//! Delivery guarantee: at least once. A partition's offset is stored only once its record and
//! every record before it on that partition were handled (see [`PartitionOffsets`]). A failed
//! handler pauses **its own partition only**: the partition's unfinished work is forgotten, no
//! record of it is handed out for `redelivery_backoff_ms`, and then the partition is rewound to
//! its lowest unfinished record, which is delivered again with everything after it. The other
//! partitions of the group keep flowing meanwhile.
//!
//! Each bus's consumer loop owns a [`ConsumerCore`] and drives it: it hands it every record it
//! takes from its partitions ([`ConsumerCore::deliver`]), lets it wait for the next completion
//! or end of a pause ([`ConsumerCore::turn`]), and tells it what the bus must do through
//! [`PartitionControl`]: store an offset, pause a partition, rewind it.

use super::offsets::PartitionOffsets;
use super::{Dispatch, HandlerFailed};
use crate::maps::Map;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a stopped consumer waits for its running handlers (on either bus). Bounded, so that
/// a stuck handler cannot hold the shutdown; what is still running then is delivered again
/// after a restart. Well inside the default `service.shutdown_timeout_ms` (30 s), which also
/// has to cover the bridge's drain and the producer's flush.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// What a bus does for the core on one of its partitions.
pub trait PartitionControl {
    /// Names a partition, e.g. (topic, partition number).
    type Key: Clone + Eq + Hash + Debug + Send + 'static;

    /// Stores `last` as handled: the group resumes after it. Called only for a partition the
    /// consumer holds, and only once `last` and every record before it were handled.
    fn store(&mut self, key: &Self::Key, last: i64);

    /// A handler failed on the partition: the bus may stop fetching it. The core hands out
    /// none of its records until [`PartitionControl::rewind`] succeeded anyway.
    fn pause(&mut self, _key: &Self::Key) {}

    /// Makes the partition deliver again from `from` (and resumes fetching it). `false` when
    /// that failed: the partition stays paused and the core tries again after another backoff.
    fn rewind(&mut self, key: &Self::Key, from: i64) -> BoxFuture<'_, bool>;
}

/// A handled (or failed) delivery: which partition, offset and generation, how it went.
type Completion<K> = (K, i64, u64, Result<(), HandlerFailed>);

/// One partition's standing with the core.
#[derive(Default)]
struct Partition {
    /// Records handed out and not yet stored.
    offsets: PartitionOffsets,
    /// Set after a failed handler: when to rewind, and to where.
    paused: Option<Pause>,
}

/// A partition waiting out its redelivery backoff.
#[derive(Clone, Copy)]
struct Pause {
    /// When to rewind.
    until: Instant,
    /// The offset to deliver again from: the lowest unfinished one at the failure.
    from: i64,
}

/// In-flight tracking, rewind and drain for one consumer loop.
pub struct ConsumerCore<K> {
    /// The consumer group, for the logs.
    group: Arc<str>,
    /// Pause before a failed partition is delivered again.
    backoff: Duration,
    /// Every partition that had a record handed out.
    partitions: Map<K, Partition>,
    /// The handlers still running, of every partition.
    in_flight: FuturesUnordered<BoxFuture<'static, Completion<K>>>,
}

impl<K: Clone + Eq + Hash + Debug + Send + 'static> ConsumerCore<K> {
    /// A core for `group` that waits `backoff` before redelivering a failed partition.
    pub fn new(group: Arc<str>, backoff: Duration) -> Self {
        crate::monitoring::record::consumer_started(&group);
        Self {
            group,
            backoff,
            partitions: Map::default(),
            in_flight: FuturesUnordered::new(),
        }
    }

    /// Whether the partition waits out a backoff: records of it must not be handed out (the
    /// rewind delivers them again).
    pub fn is_paused(&self, key: &K) -> bool {
        self.partitions.get(key).is_some_and(|p| p.paused.is_some())
    }

    /// Records of the partition handed out and not yet stored.
    pub fn pending(&self, key: &K) -> usize {
        self.partitions.get(key).map_or(0, |p| p.offsets.len())
    }

    /// Every partition that had a record handed out, with its records handed out and not yet
    /// stored.
    pub fn partitions_pending(&self) -> impl Iterator<Item = (&K, usize)> {
        self.partitions
            .iter()
            .map(|(key, p)| (key, p.offsets.len()))
    }

    /// Handlers still running, over every partition.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Takes the handler's answer for the record at `offset`: a skipped record is finished at
    /// once (and may be stored), a handled one is tracked until its future resolves.
    pub fn deliver<C>(&mut self, control: &mut C, key: K, offset: i64, dispatch: Dispatch)
    where
        C: PartitionControl<Key = K>,
    {
        let track = &mut self.partitions.entry(key.clone()).or_default().offsets;
        match dispatch {
            Dispatch::Skip => {
                track.delivered(offset, true);
                if let Some(last) = track.take_finished() {
                    control.store(&key, last);
                }
            }
            Dispatch::Handle(handled) => {
                let generation = track.generation();
                track.delivered(offset, false);
                self.in_flight.push(
                    handled
                        .map(move |result| (key, offset, generation, result))
                        .boxed(),
                );
            }
        }
    }

    /// Waits for the next handler to finish or the next pause to end, and acts on it: stores
    /// what became storable, pauses a failed partition, rewinds one whose pause is over.
    /// Pends forever when nothing is running or paused. Cancel-safe: a rewind cut short is
    /// done again on the next turn.
    pub async fn turn<C: PartitionControl<Key = K>>(&mut self, control: &mut C) {
        let deadline = self.next_resume();
        tokio::select! {
            Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                self.complete(control, done);
                // Take every other finished handler too before the loop hands out more.
                while let Some(Some(done)) = self.in_flight.next().now_or_never() {
                    self.complete(control, done);
                }
            }
            () = sleep_until(deadline), if deadline.is_some() => self.resume_due(control).await,
            else => futures::future::pending().await,
        }
    }

    /// Forgets a partition's unfinished work (it was taken away): nothing more is stored for
    /// it. The tracker is kept, with a new generation, so that completions of records handed
    /// out before count for nothing if the partition comes back. Returns whether it was paused.
    pub fn forget(&mut self, key: &K) -> bool {
        let Some(partition) = self.partitions.get_mut(key) else {
            return false;
        };
        partition.offsets.rewind();
        partition.paused.take().is_some()
    }

    /// On stop: lets the running handlers finish (for at most [`DRAIN_LIMIT`]) and stores what
    /// they finished. Paused partitions are not rewound: their records come again after a
    /// restart.
    pub async fn drain<C: PartitionControl<Key = K>>(&mut self, control: &mut C) {
        let drain = async {
            while let Some(done) = self.in_flight.next().await {
                self.complete(control, done);
            }
        };
        if tokio::time::timeout(DRAIN_LIMIT, drain).await.is_err() {
            tracing::warn!(group = %self.group, "records still unfinished at shutdown; they will be delivered again");
        }
    }

    /// Acts on one finished handler.
    fn complete<C: PartitionControl<Key = K>>(&mut self, control: &mut C, done: Completion<K>) {
        let (key, offset, generation, result) = done;
        let Some(partition) = self.partitions.get_mut(&key) else {
            return;
        };
        match result {
            Ok(()) => {
                if let Some(last) = partition.offsets.finished(offset, generation) {
                    control.store(&key, last);
                }
            }
            Err(error) if generation == partition.offsets.generation() => {
                tracing::warn!(group = %self.group, partition = ?key, offset, %error,
                    "handler failed; the partition pauses and the record will be delivered again");
                // Go back to the lowest unfinished record (the failed one or an earlier one still
                // running, whose outcome the rewind forgets), so nothing is skipped.
                let from = partition
                    .offsets
                    .first_unfinished()
                    .map_or(offset, |first| first.min(offset));
                partition.offsets.rewind();
                partition.paused = Some(Pause {
                    until: Instant::now() + self.backoff,
                    from,
                });
                crate::monitoring::record::consumer_rewind(&self.group);
                control.pause(&key);
            }
            // A record handed out before the last rewind: it is delivered again anyway.
            Err(_) => {}
        }
    }

    /// When the earliest pause ends.
    fn next_resume(&self) -> Option<Instant> {
        self.partitions
            .values()
            .filter_map(|p| p.paused.map(|pause| pause.until))
            .min()
    }

    /// Rewinds every partition whose pause is over; one whose rewind fails waits again.
    async fn resume_due<C: PartitionControl<Key = K>>(&mut self, control: &mut C) {
        let now = Instant::now();
        let due: Vec<(K, i64)> = self
            .partitions
            .iter()
            .filter_map(|(key, p)| match p.paused {
                Some(pause) if pause.until <= now => Some((key.clone(), pause.from)),
                _ => None,
            })
            .collect();
        for (key, from) in due {
            let rewound = control.rewind(&key, from).await;
            let Some(partition) = self.partitions.get_mut(&key) else {
                continue;
            };
            if rewound {
                partition.paused = None;
            } else {
                tracing::warn!(group = %self.group, partition = ?key, from,
                    "cannot rewind; the partition stays paused and is tried again");
                partition.paused = Some(Pause {
                    until: Instant::now() + self.backoff,
                    from,
                });
            }
        }
    }
}

/// Sleeps until `deadline`; forever when there is none (the branch is disabled then anyway).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => futures::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;

    /// What the core asked of the bus, in order.
    #[derive(Debug, PartialEq)]
    enum Call {
        Store(&'static str, i64),
        Pause(&'static str),
        Rewind(&'static str, i64),
    }

    /// A bus that records the core's calls; its rewinds fail while `refuse_rewinds` > 0.
    #[derive(Default)]
    struct Fake {
        calls: Vec<Call>,
        refuse_rewinds: usize,
    }

    impl PartitionControl for Fake {
        type Key = &'static str;
        fn store(&mut self, key: &&'static str, last: i64) {
            self.calls.push(Call::Store(key, last));
        }
        fn pause(&mut self, key: &&'static str) {
            self.calls.push(Call::Pause(key));
        }
        fn rewind(&mut self, key: &&'static str, from: i64) -> BoxFuture<'_, bool> {
            self.calls.push(Call::Rewind(key, from));
            let ok = self.refuse_rewinds == 0;
            self.refuse_rewinds = self.refuse_rewinds.saturating_sub(1);
            futures::future::ready(ok).boxed()
        }
    }

    /// Hands out `offset` of `key` to a handler that finishes when the sender says how.
    fn hand_out(
        core: &mut ConsumerCore<&'static str>,
        fake: &mut Fake,
        key: &'static str,
        offset: i64,
    ) -> oneshot::Sender<Result<(), HandlerFailed>> {
        let (done, result) = oneshot::channel();
        let handled = async move { result.await.unwrap_or(Ok(())) }.boxed();
        core.deliver(fake, key, offset, Dispatch::Handle(handled));
        done
    }

    fn core() -> ConsumerCore<&'static str> {
        ConsumerCore::new(Arc::from("g"), Duration::from_millis(5))
    }

    #[tokio::test]
    async fn a_failure_pauses_its_partition_only_then_rewinds_it_to_the_lowest_unfinished() {
        let (mut core, mut fake) = (core(), Fake::default());
        let a0 = hand_out(&mut core, &mut fake, "a", 0);
        let a1 = hand_out(&mut core, &mut fake, "a", 1);
        let b0 = hand_out(&mut core, &mut fake, "b", 0);

        // a1 fails while a0 still runs; b0 finishes.
        a1.send(Err(HandlerFailed("injected".into()))).unwrap();
        core.turn(&mut fake).await;
        b0.send(Ok(())).unwrap();
        core.turn(&mut fake).await;
        assert!(core.is_paused(&"a") && !core.is_paused(&"b"));
        // a0 finishing now counts for nothing: the rewind forgot it.
        a0.send(Ok(())).unwrap();
        core.turn(&mut fake).await;
        core.turn(&mut fake).await;

        assert_eq!(
            fake.calls,
            [Call::Pause("a"), Call::Store("b", 0), Call::Rewind("a", 0)]
        );
        assert!(!core.is_paused(&"a"));
    }

    #[tokio::test]
    async fn a_failed_rewind_keeps_the_partition_paused_and_is_tried_again() {
        let (mut core, mut fake) = (core(), Fake::default());
        fake.refuse_rewinds = 1;
        let a3 = hand_out(&mut core, &mut fake, "a", 3);
        a3.send(Err(HandlerFailed("injected".into()))).unwrap();
        core.turn(&mut fake).await;

        core.turn(&mut fake).await;
        assert!(core.is_paused(&"a"), "the first rewind failed");
        core.turn(&mut fake).await;

        assert!(!core.is_paused(&"a"));
        assert_eq!(
            fake.calls,
            [Call::Pause("a"), Call::Rewind("a", 3), Call::Rewind("a", 3)]
        );
    }

    #[tokio::test]
    async fn nothing_is_stored_for_a_forgotten_partition_and_a_drain_stores_the_rest() {
        let (mut core, mut fake) = (core(), Fake::default());
        let a0 = hand_out(&mut core, &mut fake, "a", 0);
        let b0 = hand_out(&mut core, &mut fake, "b", 0);
        assert!(!core.forget(&"a"), "a was not paused");

        a0.send(Ok(())).unwrap();
        b0.send(Ok(())).unwrap();
        core.drain(&mut fake).await;

        assert_eq!(fake.calls, [Call::Store("b", 0)]);
        assert_eq!(core.in_flight(), 0);
    }
}
