//! The audit trail actor: seals each [`Audit`] into this process's chain in the order it
//! arrives, and publishes the sealed records through the bridge, one batch at a time so that
//! they reach the partition in chain order.

use super::chain::{seal, Link};
use super::Entry;
use crate::bus::bridge::PublishRecords;
use crate::bus::{headers, Record, Topic};
use actix::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Record one request in the trail. Answered once the entry is sealed and queued, not when
/// it is on the bus; [`AuditDesk::record`] does not wait for the answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Audit(pub Entry);

/// Resolves once every record sealed so far is on the bus or lost, with the number lost since
/// the start: shutdown asks it before draining the bridge.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Flush;

/// Counters of the trail, readable without asking the actor.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Records sealed.
    pub sealed: AtomicU64,
    /// Records the bus took.
    pub published: AtomicU64,
    /// Records that never reached the bus (logged as errors): verify shows them as gaps.
    pub lost: AtomicU64,
}

/// What the HTTP layer holds of the trail.
#[derive(Clone)]
pub struct AuditDesk {
    /// Where entries go.
    pub record: Recipient<Audit>,
    /// Waits for the trail to reach the bus.
    pub flush: Recipient<Flush>,
    /// The trail's counters.
    pub stats: Arc<AuditStats>,
    /// The writer id on this process's records.
    pub writer: String,
    /// Whether `X-Forwarded-For` names the caller's address (`audit.trust_forwarded_for`).
    pub trust_forwarded_for: bool,
}

impl AuditDesk {
    /// Queues `entry` in the trail's mailbox, in the order of the calls, without waiting for
    /// the trail to seal it: the trail runs on the thread of the intake system and the
    /// terminals, and a request would otherwise wait its turn there before it is answered. When the mailbox is full, the call
    /// waits until the trail has sealed the entry, as every call did before. A trail that
    /// cannot take the entry is logged and counted, never the request's failure.
    pub async fn record(&self, entry: Entry) {
        let (error, action) = match self.record.try_send(Audit(entry)) {
            Ok(()) => return,
            Err(SendError::Full(audit)) => {
                let action = audit.0.action.clone();
                match self.record.send(audit).await {
                    Ok(()) => return,
                    Err(error) => (error, action),
                }
            }
            Err(SendError::Closed(audit)) => (MailboxError::Closed, audit.0.action),
        };
        self.stats.lost.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%error, %action, "audit record lost: the audit trail is not running");
    }
}

/// A writer id for this process: host, process id and a time-ordered uuid (two processes, or
/// two services started in one test process, never share a chain).
pub fn writer_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    )
}

/// The audit trail of this process.
pub struct AuditTrail {
    /// Where the chain stands.
    link: Link,
    /// Where sealed records are published.
    bridge: Recipient<PublishRecords>,
    /// Sealed records not yet handed to the bridge, in chain order.
    pending: Vec<Record>,
    /// Whether a batch is with the bridge.
    sending: bool,
    /// [`Flush`] waiters.
    flushed: Vec<oneshot::Sender<u64>>,
    /// Counters.
    stats: Arc<AuditStats>,
}

impl AuditTrail {
    /// A trail for `writer` publishing through `bridge`.
    pub fn new(writer: impl Into<String>, bridge: Recipient<PublishRecords>) -> Self {
        Self {
            link: Link::genesis(writer),
            bridge,
            pending: Vec::new(),
            sending: false,
            flushed: Vec::new(),
            stats: Arc::default(),
        }
    }

    /// The trail's counters.
    pub fn stats(&self) -> Arc<AuditStats> {
        self.stats.clone()
    }

    /// Hands the pending records to the bridge unless a batch is already out; answers flush
    /// waiters when nothing is left.
    fn send_next(&mut self, ctx: &mut Context<Self>) {
        if self.sending {
            return;
        }
        if self.pending.is_empty() {
            let lost = self.stats.lost.load(Ordering::Relaxed);
            for waiter in self.flushed.drain(..) {
                let _ = waiter.send(lost);
            }
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let count = batch.len() as u64;
        let last_seq = self.link.seq;
        self.sending = true;
        // One batch at a time: the next is sent only when this one is answered, so a later
        // record can never reach the partition before an earlier one.
        let publish = self.bridge.send(PublishRecords(batch));
        ctx.spawn(publish.into_actor(self).map(move |answer, trail, ctx| {
            let failure = match answer {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(error) => Some(format!("the bridge did not answer: {error}")),
            };
            match failure {
                None => {
                    trail.stats.published.fetch_add(count, Ordering::Relaxed);
                }
                Some(reason) => {
                    trail.stats.lost.fetch_add(count, Ordering::Relaxed);
                    tracing::error!(
                        records = count,
                        last_seq,
                        writer = %trail.link.writer,
                        %reason,
                        "audit records lost: the bus did not take them; verify will report \
                         the gap in this writer's chain"
                    );
                }
            }
            trail.sending = false;
            trail.send_next(ctx);
        }));
    }
}

impl Actor for AuditTrail {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Requests may come in bursts from every HTTP worker; each entry is small.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Audit> for AuditTrail {
    type Result = ();

    fn handle(&mut self, msg: Audit, ctx: &mut Self::Context) {
        let record = seal(&mut self.link, msg.0);
        self.stats.sealed.fetch_add(1, Ordering::Relaxed);
        let payload = match crate::bus::payload::encode(&record) {
            Ok(payload) => payload,
            Err(error) => {
                // Cannot happen for a record that was just hashed from the same serialization;
                // counted so that it would not go unseen.
                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, seq = record.seq, "audit record lost: cannot encode it");
                return;
            }
        };
        self.pending.push(Record {
            topic: Topic::Audit,
            key: record.writer.clone(),
            headers: vec![
                (
                    headers::ID.into(),
                    format!("{}/{}", record.writer, record.seq),
                ),
                (headers::TYPE.into(), "audit.record".into()),
            ],
            payload,
        });
        self.send_next(ctx);
    }
}

impl Handler<Flush> for AuditTrail {
    type Result = ResponseFuture<u64>;

    fn handle(&mut self, _: Flush, ctx: &mut Self::Context) -> Self::Result {
        let (done, wait) = oneshot::channel();
        self.flushed.push(done);
        self.send_next(ctx);
        let stats = self.stats.clone();
        Box::pin(async move {
            wait.await
                .unwrap_or_else(|_| stats.lost.load(Ordering::Relaxed))
        })
    }
}
