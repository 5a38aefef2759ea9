//! The consuming half of the bridge: [`Subscribe`] starts a consumer group whose records are
//! decoded into envelopes and handed to the system the `target` header names. A record that
//! cannot be decoded, or that its system declares poisoned, is written to `dead-letters` with
//! the reason and its origin in headers, and consumption goes on. A dead letter the bus refuses
//! for good (the record was near the bus's limit, and the `dlq.*` headers took it over) is
//! written again without the payload, with `dlq.size` instead: a record that cannot be
//! dead-lettered whole must not stop its partition forever.
//!
//! A decoded record is handed to its system inside its `message` span, which carries the
//! case's trace (see [`crate::bus::trace`]).

use super::letter::{dead_letter, Payload};
use super::{Bridge, BridgeStats, PublishRecords};
use crate::bus::{headers, Delivery, Dispatch, HandlerFailed, Record, Subscription, Topic};
use crate::domain::Envelope;
use crate::maps::Map;
use crate::monitoring::record::{self, Handled};
use crate::port::{HandleError, Inbound};
use actix::prelude::*;
use futures::future::BoxFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tracing::Instrument as _;

/// Start a consumer group; its records go to the systems named by their `target`.
#[derive(Message)]
#[rtype(result = "Result<crate::bus::SubscriptionHandle, crate::bus::BusError>")]
pub struct Subscribe {
    /// Consumer group name.
    pub group: String,
    /// Topics to consume.
    pub topics: Vec<Topic>,
    /// Which system gets which record.
    pub routes: Routes,
    /// The arbiter the consumers run on (best: the one the routed systems run on).
    pub arbiter: Option<actix_rt::ArbiterHandle>,
    /// Told of every record finished, to follow a group that rebuilds state from the start.
    pub catch_up: Option<Arc<crate::bus::CatchUp>>,
    /// The consumer receives nothing until this turns true (see [`Subscription::after`]).
    pub after: Option<tokio::sync::watch::Receiver<bool>>,
    /// How its consumer takes its partitions.
    pub membership: crate::bus::Membership,
    /// Where a consumer alone starts and whom it tells its progress (see
    /// [`Subscription::resume`]).
    pub resume: Option<crate::bus::Resume>,
    /// Told of every record a system handled (neither skipped nor dead-lettered), with the
    /// system's id, before the record counts as handled: the state group keeps the snapshots
    /// it read this way.
    pub keep: Option<KeepHandled>,
}

/// See [`Subscribe::keep`]: given a handled record and the id of the system that handled it;
/// the record counts as handled once the future resolves.
pub type KeepHandled = Arc<dyn Fn(&Delivery, &str) -> BoxFuture<'static, ()> + Send + Sync>;

/// Who receives a consumer group's records.
#[derive(Clone)]
pub enum Routes {
    /// By the record's `target` (e.g. `department/market`); other targets are skipped.
    ByTarget(Map<String, Recipient<Inbound>>),
    /// Every record goes to each of these observers, decoded once, under the names the metrics
    /// give them (the intake system follows every case this way, as `intake`); it counts as
    /// handled once every one of them handled it.
    All(Vec<(String, Recipient<Inbound>)>),
}

impl Routes {
    /// Every record to one observer, named `system` in the metrics.
    pub fn all(system: impl Into<String>, recipient: Recipient<Inbound>) -> Self {
        Routes::All(vec![(system.into(), recipient)])
    }
}

/// A system a record goes to: its name in the metrics, and its recipient.
type Receiver = (String, Recipient<Inbound>);

/// [`Routes`] as a subscription's handler looks them up: the receivers of each route built
/// once, so a delivery takes its own at the cost of a reference count.
enum Receivers {
    /// See [`Routes::ByTarget`].
    ByTarget(Map<String, Arc<[Receiver]>>),
    /// See [`Routes::All`].
    All(Arc<[Receiver]>),
}

impl Receivers {
    fn of(routes: Routes) -> Self {
        match routes {
            Routes::ByTarget(map) => Receivers::ByTarget(
                map.into_iter()
                    .map(|(system, recipient)| (system.clone(), Arc::from([(system, recipient)])))
                    .collect(),
            ),
            Routes::All(observers) => Receivers::All(Arc::from(observers)),
        }
    }

    /// The systems a record for `target` goes to (none: it is for a system of no route).
    fn route(&self, target: Option<&str>) -> Option<Arc<[Receiver]>> {
        match self {
            Receivers::All(observers) => Some(observers.clone()),
            Receivers::ByTarget(map) => target.and_then(|t| map.get(t)).cloned(),
        }
    }
}

impl Handler<Subscribe> for Bridge {
    type Result = Result<crate::bus::SubscriptionHandle, crate::bus::BusError>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Self::Context) -> Self::Result {
        let bridge = ctx.address();
        let routes = Arc::new(Receivers::of(msg.routes));
        let stats = self.stats.clone();
        let catch_up = msg.catch_up;
        let keep = msg.keep;
        let handler: crate::bus::RecordHandler = Arc::new(move |delivery: Delivery| {
            let dispatch = dispatch(&bridge, &stats, &routes, keep.as_ref(), delivery.clone());
            let Some(catch_up) = catch_up.clone() else {
                return dispatch;
            };
            let (topic, partition, offset) =
                (delivery.record.topic, delivery.partition, delivery.offset);
            match dispatch {
                Dispatch::Skip => {
                    catch_up.record(topic, partition, offset);
                    Dispatch::Skip
                }
                Dispatch::Handle(handling) => Dispatch::Handle(Box::pin(async move {
                    let result = handling.await;
                    if result.is_ok() {
                        catch_up.record(topic, partition, offset);
                    }
                    result
                })),
            }
        });
        self.bus.subscribe(Subscription {
            group: msg.group,
            topics: msg.topics,
            handler,
            arbiter: msg.arbiter,
            membership: msg.membership,
            after: msg.after,
            resume: msg.resume,
        })
    }
}

/// Hands a record to the systems its routes name, decoded once: skipped when it is for none of
/// them, to dead-letters when it has no target, is not an envelope or a system declares it
/// poisoned. A record the systems handled is then told to `keep`, if given.
fn dispatch(
    bridge: &Addr<Bridge>,
    stats: &Arc<BridgeStats>,
    routes: &Receivers,
    keep: Option<&KeepHandled>,
    delivery: Delivery,
) -> Dispatch {
    // Route by header first, so a system never decodes a record meant for another.
    let target = delivery.record.header(headers::TARGET);
    let Some(receivers) = routes.route(target) else {
        if target.is_some() {
            return Dispatch::Skip;
        }
        let (bridge, stats) = (bridge.clone(), stats.clone());
        return Dispatch::Handle(Box::pin(async move {
            let reason = "record has no `target` header";
            let written = dead_letter_and_continue(&bridge, &stats, &delivery, reason).await;
            counted(["none"], &delivery, written, Handled::DeadLettered)
        }));
    };
    let (bridge, stats) = (bridge.clone(), stats.clone());
    let keep = keep.cloned();
    Dispatch::Handle(Box::pin(async move {
        let systems = || receivers.iter().map(|(system, _)| system.as_str());
        let envelope = match Envelope::from_slice(&delivery.record.payload) {
            Ok(envelope) => Arc::new(envelope),
            Err(error) => {
                let reason = error.to_string();
                let written = dead_letter_and_continue(&bridge, &stats, &delivery, &reason).await;
                return counted(systems(), &delivery, written, Handled::DeadLettered);
            }
        };
        let span = crate::bus::trace::handling_span(&delivery, &envelope);
        async {
            let answers = futures::future::join_all(
                receivers
                    .iter()
                    .map(|(_, recipient)| recipient.send(Inbound::new(envelope.clone()))),
            )
            .await;
            let (mut poisoned, mut poison) = (Vec::new(), None);
            for (system, answer) in systems().zip(answers) {
                let failed = match answer {
                    Ok(Ok(())) => continue,
                    Ok(Err(HandleError::Poison(reason))) => {
                        poisoned.push(system);
                        poison = Some(reason);
                        continue;
                    }
                    // Delivered again, to every observer: those that handled it drop the
                    // repeat by its message id.
                    Ok(Err(HandleError::Retry(reason))) => HandlerFailed(reason),
                    Err(mailbox) => HandlerFailed(format!("system unavailable: {mailbox}")),
                };
                return counted([system], &delivery, Err(failed), Handled::Failed);
            }
            if let Some(reason) = poison {
                // Those that took it handled it; those that declared it poisoned dead-letter it.
                let took = systems().filter(|system| !poisoned.contains(system));
                count(took, &delivery, Handled::Done);
                let written = dead_letter_and_continue(&bridge, &stats, &delivery, &reason).await;
                return counted(poisoned, &delivery, written, Handled::DeadLettered);
            }
            if let (Some(keep), Some(target)) = (keep, delivery.record.header(headers::TARGET)) {
                keep(&delivery, target).await;
            }
            counted(systems(), &delivery, Ok(()), Handled::Done)
        }
        .instrument(span)
        .await
    }))
}

/// Counts what became of a delivery at each of `systems` (a dead letter that could not be
/// written counts as a failure: the record comes again) and hands `result` back.
fn counted<'a>(
    systems: impl IntoIterator<Item = &'a str>,
    delivery: &Delivery,
    result: Result<(), HandlerFailed>,
    handled: Handled,
) -> Result<(), HandlerFailed> {
    let handled = if result.is_err() {
        Handled::Failed
    } else {
        handled
    };
    count(systems, delivery, handled);
    result
}

/// Counts that each of `systems` `handled` the delivery.
fn count<'a>(systems: impl IntoIterator<Item = &'a str>, delivery: &Delivery, handled: Handled) {
    for system in systems {
        record::message(system, delivery.record.header(headers::TYPE), handled);
    }
}

/// Writes a dead letter; the delivery counts as handled only once the dead letter is on the bus.
/// When the bus refuses the dead letter for good, it is written without the payload instead.
pub async fn dead_letter_and_continue(
    bridge: &Addr<Bridge>,
    stats: &BridgeStats,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), HandlerFailed> {
    let record = &delivery.record;
    tracing::warn!(
        topic = %record.topic, partition = delivery.partition,
        offset = delivery.offset, group = %delivery.group, reason,
        case_id = %record.key, message_id = record.header(headers::ID),
        r#type = record.header(headers::TYPE), system = record.header(headers::TARGET),
        trace_id = record.header(headers::TRACE_ID),
        "record cannot be handled; moving it to dead-letters"
    );
    let whole = dead_letter(&delivery.record, reason, Some(delivery), Payload::Kept);
    let Some(refusal) = write_letter(bridge, stats, whole).await? else {
        return Ok(());
    };
    tracing::warn!(
        topic = %record.topic, partition = delivery.partition,
        offset = delivery.offset, group = %delivery.group, %refusal,
        case_id = %record.key, message_id = record.header(headers::ID),
        r#type = record.header(headers::TYPE), system = record.header(headers::TARGET),
        trace_id = record.header(headers::TRACE_ID),
        "the bus refused the dead letter; writing it without the payload"
    );
    // Sending the same letter again could never pass: leave out what made it too large.
    let reason = format!("{reason}; the payload is left out: the bus refused it ({refusal})");
    let lean = dead_letter(&delivery.record, &reason, Some(delivery), Payload::LeftOut);
    match write_letter(bridge, stats, lean).await? {
        None => Ok(()),
        Some(refusal) => Err(HandlerFailed(format!(
            "dead letter refused even without its payload: {refusal}"
        ))),
    }
}

/// Publishes one dead letter: `None` once it is on the bus, the reason when the bus refused it
/// for good; an error when it may pass on a later try (the delivery is retried then).
async fn write_letter(
    bridge: &Addr<Bridge>,
    stats: &BridgeStats,
    letter: Record,
) -> Result<Option<String>, HandlerFailed> {
    match bridge.send(PublishRecords(vec![letter])).await {
        Ok(Ok(())) => {
            stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
        Ok(Err(error)) if error.permanent => Ok(Some(error.reason)),
        Ok(Err(error)) => Err(HandlerFailed(format!("dead-letter write failed: {error}"))),
        Err(error) => Err(HandlerFailed(format!("bridge unavailable: {error}"))),
    }
}
