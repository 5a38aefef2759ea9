//! Reading the whole audit topic, as it is now, from any bus.

use super::{verify_with, BrokenLink, Start, Summary};
use crate::bus::kafka::KafkaBus;
use crate::bus::{Bus, CatchUp, Delivery, Dispatch, Membership, Share, Subscription, Topic};
use crate::settings::{BusKind, Settings};
use anyhow::Context as _;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every record of the audit topic below the end offsets it has when called, in topic order
/// (by partition, then offset): what [`super::verify`] takes. Reads without joining a
/// consumer group ([`Membership::Alone`]), so it commits nothing and needs no group ACL.
/// Fails if the topic is not read to its end within `limit`.
pub async fn read_topic(bus: &dyn Bus, limit: Duration) -> anyhow::Result<Vec<Bytes>> {
    let end = bus.end_offsets(vec![Topic::Audit]).await?;
    let catch_up = CatchUp::new(end.clone());
    if catch_up.total() == 0 {
        return Ok(Vec::new());
    }
    let read: Arc<Mutex<BTreeMap<(u32, u64), Bytes>>> = Arc::default();
    let (caught_up, mut reached) = tokio::sync::watch::channel(false);
    let handler = {
        let read = read.clone();
        let catch_up = catch_up.clone();
        Arc::new(move |delivery: Delivery| {
            let below_end = end
                .get(&(Topic::Audit, delivery.partition))
                .is_some_and(|&end| delivery.offset < end);
            if below_end {
                read.lock().unwrap_or_else(|e| e.into_inner()).insert(
                    (delivery.partition, delivery.offset),
                    delivery.record.payload.clone(),
                );
                catch_up.record(Topic::Audit, delivery.partition, delivery.offset);
                if catch_up.remaining() == 0 {
                    caught_up.send_replace(true);
                }
            }
            Dispatch::Skip
        })
    };
    let mut subscription = Subscription::new(
        format!("govfusion.audit-reader.{}", uuid::Uuid::new_v4().simple()),
        vec![Topic::Audit],
        handler,
    );
    subscription.membership = Membership::Alone(Share::ALL);
    let mut handle = bus.subscribe(subscription)?;
    let finished = tokio::time::timeout(limit, reached.wait_for(|done| *done)).await;
    handle.stopped().await;
    anyhow::ensure!(
        matches!(finished, Ok(Ok(_))),
        "the audit topic was not read to its end within {limit:?}: {} of {} record(s) read",
        catch_up.total() - catch_up.remaining(),
        catch_up.total()
    );
    let records = std::mem::take(&mut *read.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(records.into_values().collect())
}

/// Reads the audit topic of the Kafka cluster `settings` name and verifies every writer's chain
/// (`govfusion audit verify`). The outer error is a failure to read; the inner one the first
/// broken link. Creates no topic: an auditor's account may only read.
pub async fn verify_configured(
    settings: &Settings,
    start: Start,
    limit: Duration,
) -> anyhow::Result<Result<Summary, BrokenLink>> {
    anyhow::ensure!(
        settings.bus.kind == BusKind::Kafka,
        "audit verify reads a Kafka cluster, and this configuration's bus is `{:?}`: an \
         in-memory bus and the embedded cluster live inside the serving process. Point it at \
         the cluster with bus.kind = \"kafka\" and bus.brokers (for an embedded cluster, the \
         bootstrap address `serve` logs as `connected to Kafka`)",
        settings.bus.kind
    );
    let mut bus_settings = settings.bus.clone();
    bus_settings.kafka.create_topics = false;
    let bus = KafkaBus::connect(&bus_settings)
        .await
        .context("Failed to connect to the Kafka cluster")?;
    let records = read_topic(&bus, limit)
        .await
        .with_context(|| format!("Failed to read {}", bus.topic_name(Topic::Audit)))?;
    Ok(verify_with(records, start))
}
