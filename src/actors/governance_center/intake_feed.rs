//! The city centre reads the intake system's feed of new applications — each intake process's,
//! when the city runs several — and publishes each to its responsible department. The feed position travels in the city's snapshot, written once
//! the applications are on the bus, so nothing is skipped or taken twice across restarts.

use super::messages::{BuildPublished, StartFeed};
use super::state::feed_key;
use super::GovernanceCenter;
use crate::actors::intake::FedApplication;
use crate::actors::{BusSystem, KeepsState};
use crate::domain::{message_ids, Envelope, MessageType, SystemId, Tier};
use crate::feed::FeedSource;
use crate::port::{send_until_taken, Publish, Sent};
use actix::prelude::*;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Most applications taken from the feed at once.
const FEED_BATCH: usize = 500;

impl Handler<StartFeed> for GovernanceCenter {
    type Result = ();

    fn handle(&mut self, msg: StartFeed, ctx: &mut Self::Context) {
        // Only the city takes applications from the intake system.
        if self.centre.tier != Tier::City {
            return;
        }
        for (instance, source) in (0..).zip(msg.0) {
            let cursor = self.feed_cursors.get(&instance).copied().unwrap_or(0);
            let feed = run_feed(source, instance, cursor, ctx.address(), self.bridge.clone());
            ctx.spawn(feed.into_actor(self));
        }
    }
}

impl Handler<BuildPublished> for GovernanceCenter {
    type Result = MessageResult<BuildPublished>;

    fn handle(&mut self, msg: BuildPublished, _: &mut Self::Context) -> Self::Result {
        let BuildPublished(fed, last, instance) = msg;
        let mut envelopes: Vec<Envelope> =
            fed.iter().filter_map(|fed| self.published(fed)).collect();
        let cursor = self.feed_cursors.entry(instance).or_default();
        *cursor = (*cursor).max(last);
        envelopes.extend(self.snapshot_of(&feed_key(instance)));
        MessageResult(envelopes)
    }
}

impl GovernanceCenter {
    /// The envelope that publishes a new application to its responsible department.
    fn published(&self, fed: &FedApplication) -> Option<Envelope> {
        let application = &fed.application;
        let Ok(matter) = self.catalog.matter(&application.matter_code) else {
            tracing::error!(case_id = %application.case_id, matter = %application.matter_code, "fed application names an unknown matter; skipped");
            return None;
        };
        Some(self.sender().message(
            message_ids::published(&application.case_id),
            MessageType::ApplicationPublished,
            &application.case_id,
            SystemId::Department(matter.department.clone()),
            &fed.trace_id,
            application,
        ))
    }
}

/// Reads the intake feed forever: take what is new after the cursor, publish it, then the new
/// cursor in the city's snapshot, and move on — so nothing is skipped or taken twice, across
/// restarts of either side.
///
/// A batch's snapshot is sent once its applications are on the bus, and once the snapshot
/// before it is: the cursor a snapshot on the bus names never runs ahead of the applications
/// on the bus. The feed does not wait for the snapshot itself, though: the next batch is taken
/// and published while it is on its way, so a batch costs one acknowledgement, not two in a
/// row.
async fn run_feed(
    feed: FeedSource,
    instance: u32,
    mut cursor: u64,
    centre: Addr<GovernanceCenter>,
    bridge: Recipient<Publish>,
) {
    tracing::info!(instance, cursor, "reading the intake feed");
    // The last batch's snapshot, queued and on its way: its answer is awaited before the next
    // snapshot is sent.
    let mut last_snapshot: Option<Pin<Box<dyn Future<Output = Sent>>>> = None;
    loop {
        let batch = match feed.take(cursor, FEED_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(instance, %error, "intake feed unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // The feed waits for something new before it answers empty: asking again at once does
        // not spin.
        let Some(last) = batch.last().map(|fed| fed.sequence) else {
            continue;
        };
        // The centre is gone: the system is stopping.
        let Ok(envelopes) = centre.send(BuildPublished(batch, last, instance)).await else {
            return;
        };
        let (snapshots, applications): (Vec<_>, Vec<_>) = envelopes
            .into_iter()
            .partition(|e| e.kind == MessageType::StateSnapshot);
        if !applications.is_empty() {
            report(send_until_taken(&bridge, applications).await);
        }
        if let Some(previous) = last_snapshot.take() {
            report(previous.await);
        }
        if !snapshots.is_empty() {
            // Queued now (`send_until_taken` queues its first round when called).
            last_snapshot = Some(Box::pin(send_until_taken(&bridge, snapshots)));
        }
        cursor = last;
    }
}

/// Logs a record of the feed the bus refused for good. It is in dead-letters, and sending it
/// again would only be refused again: the others, and the snapshot with the new cursor, go on,
/// and so does the feed.
fn report(sent: Sent) {
    if let Sent::Refused(refusal) = sent {
        tracing::error!(reason = %refusal.reason, "the bus refused a record of the feed for good; moving on");
    }
}
