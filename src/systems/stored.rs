//! What start-up takes back from the case repository and the state store: the intake's open
//! cases and the supervision system's open records, the systems' snapshots as the store kept
//! them (and where the state group resumes), where each view group resumes, and the periodic
//! clean-up of closed markers past the flow topics' retention.

use super::Systems;
use crate::actors::intake::TakeBack;
use crate::actors::supervisor::TakeBackRecords;
use crate::bus::bridge::{dead_letter_and_continue, envelope_record, KeepHandled};
use crate::bus::{Delivery, OffsetSink, Record, Resume, Topic};
use crate::domain::{Envelope, SystemId};
use crate::maps::Map;
use crate::port::{HandleError, Inbound};
use crate::store::supervision::SupervisedRecords;
use crate::store::{CaseRepository, CaseRow, StateRow, StoredOffset, StoredSnapshot};
use actix::prelude::*;
use anyhow::Context as _;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// How often the closed markers past the flow topics' retention are deleted from the store.
const FORGET_CLOSED_EVERY: Duration = Duration::from_secs(3600);

/// How many open cases the intake system, and the supervision system, are handed at a time at
/// start.
const TAKE_BACK_PAGE: u32 = 1_000;

impl Systems {
    /// Before phase 1: the intake system takes back the open cases of its case repository, and
    /// the supervision system its open records, so that the snapshots and the records after
    /// the stored offsets meet them as they stood.
    pub(super) async fn take_back_open_cases(&self) -> anyhow::Result<()> {
        let Some(repository) = self.resumable() else {
            return Ok(());
        };
        if self.roles.intake {
            // A page at a time: the intake keeps no more than its limit of them in memory, and
            // the rows read need not be all in memory at once either.
            let taken = in_pages(
                |after: Option<CaseRow>| async move {
                    repository
                        .open_cases(after.as_ref(), TAKE_BACK_PAGE)
                        .await
                        .context("Failed to read the open cases from the case repository")
                },
                |page| async move {
                    self.intake
                        .send(TakeBack(page))
                        .await
                        .context("the intake system stopped during start-up")
                },
            )
            .await?;
            tracing::info!(
                cases = taken,
                "open cases taken back from the case repository"
            );
        }
        if self.roles.governance {
            // A page at a time, so that the rows read are never all in memory at once: the
            // supervisor keeps every open case, but as its records, not as rows.
            let taken = in_pages(
                |after: Option<SupervisedRecords>| async move {
                    let after = after.map(|records| records.case_id);
                    repository
                        .open_supervision(after.as_deref(), TAKE_BACK_PAGE)
                        .await
                        .context(
                            "Failed to read the open supervision records from the case repository",
                        )
                },
                |page| async move {
                    self.supervisor
                        .send(TakeBackRecords(page))
                        .await
                        .context("the supervision system stopped during start-up")
                },
            )
            .await?;
            tracing::info!(
                cases = taken,
                "open supervision records taken back from the case repository"
            );
        }
        Ok(())
    }

    /// The case repository the views resume from: none when there is none, or when the bus
    /// ends with the process (the cases it left open will never move again, and a new bus's
    /// offsets are not those the repository holds).
    pub(super) fn resumable(&self) -> Option<&crate::store::CaseRepository> {
        self.repository
            .as_ref()
            .filter(|_| self.bus.outlives_process())
    }

    /// With a store and `store.keep_state`, on a bus that outlives the process: hands every system of `owners` the
    /// snapshots of the cases it holds open, as the store kept them, and answers where the
    /// state group resumes and how it keeps what it reads. The store's offsets are those of
    /// this very set of systems (`{prefix}.state[{systems}]`): another set's rows may lag
    /// behind them. Like the views' offsets, they belong to the topic they were read from: a
    /// city whose topics are deleted and made anew starts with a new store.
    pub(super) async fn kept_state(
        &self,
        owners: &Map<String, Recipient<Inbound>>,
    ) -> anyhow::Result<Option<KeptState>> {
        let (Some(store), Some(writer)) = (&self.store, &self.case_writer) else {
            return Ok(None);
        };
        if !self.settings.store.keep_state {
            return Ok(None);
        }
        let prefix = self.settings.bus.topic_prefix.clone();
        let topic = Topic::State.name(&prefix);
        let mut systems: Vec<String> = owners.keys().cloned().collect();
        // Each of several intake processes resumes from its own offsets.
        let share = self.intake_share.share();
        if share.instances > 1 {
            for system in &mut systems {
                if *system == SystemId::Intake.to_string() {
                    system.push_str(&format!("#{share}"));
                }
            }
        }
        systems.sort_unstable();
        let group = format!("{topic}[{}]", systems.join(","));
        let stored = store
            .offsets(&group)
            .await
            .context("Failed to read where the state group stopped (case repository)")?;
        let from = stored
            .into_iter()
            .filter(|((name, _), _)| *name == topic)
            .filter_map(|((_, partition), next)| {
                let partition = u32::try_from(partition).ok()?;
                Some(((Topic::State, partition), u64::try_from(next).ok()?))
            })
            .collect();
        let taken_back = self.take_back_state(store, &topic, &group, owners).await?;
        self.state_taken_back
            .store(taken_back, std::sync::atomic::Ordering::Relaxed);
        let offsets = writer.clone();
        let stored_as = group.clone();
        let store: OffsetSink = Arc::new(move |topic: Topic, partition: u32, next: u64| {
            offsets.offset(StoredOffset {
                group: stored_as.clone(),
                topic: topic.name(&prefix),
                partition: i32::try_from(partition).unwrap_or(i32::MAX),
                next: i64::try_from(next).unwrap_or(i64::MAX),
            });
        });
        let rows = writer.clone();
        let keep: KeepHandled = Arc::new(move |delivery: &Delivery, system: &str| {
            let row = StateRow::of(
                &topic,
                system,
                &delivery.record,
                i32::try_from(delivery.partition).unwrap_or(i32::MAX),
                i64::try_from(delivery.offset).unwrap_or(i64::MAX),
            );
            let rows = rows.clone();
            Box::pin(async move {
                rows.room().await;
                rows.write_state(row);
            })
        });
        Ok(Some(KeptState {
            resume: Resume { from, store },
            keep,
        }))
    }

    /// Hands each system of `owners` the snapshots of its open cases from `store`, and the
    /// intake system its last closed feed position, as the state group `group` would have;
    /// answers how many.
    async fn take_back_state(
        &self,
        store: &CaseRepository,
        topic: &str,
        group: &str,
        owners: &Map<String, Recipient<Inbound>>,
    ) -> anyhow::Result<u64> {
        let mut taken_back = 0;
        for (system, recipient) in owners {
            let mut snapshots = store
                .open_snapshots(topic, system)
                .await
                .with_context(|| format!("Failed to read the open cases of {system} (store)"))?;
            if *system == SystemId::Intake.to_string() {
                let share = self.intake_share.share();
                let position = store
                    .last_closed_position(topic, system, share.instances, share.instance)
                    .await
                    .context("Failed to read the intake system's last feed position (store)")?;
                snapshots.extend(position);
            }
            for snapshot in snapshots {
                taken_back += 1;
                self.hand_back(system, recipient, group, snapshot).await?;
            }
        }
        Ok(taken_back)
    }

    /// Hands `system` one snapshot from the store, as the state group `group` would have read
    /// it: one the system refuses (its personal data sealed with a key removed since, say) goes
    /// to dead-letters with the reason, and the system goes on without the case. One it cannot
    /// take yet fails start-up, which says why.
    async fn hand_back(
        &self,
        system: &str,
        recipient: &Recipient<Inbound>,
        group: &str,
        snapshot: StoredSnapshot,
    ) -> anyhow::Result<()> {
        let decoded = Envelope::from_slice(&snapshot.payload);
        let refusal = match &decoded {
            Ok(envelope) => {
                let envelope = Arc::new(envelope.clone());
                match recipient.send(Inbound::new(envelope.clone())).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(HandleError::Poison(reason))) => reason,
                    Ok(Err(HandleError::Retry(reason))) => anyhow::bail!(
                        "{system} could not take back case {} yet: {reason}",
                        envelope.case_id
                    ),
                    Err(error) => anyhow::bail!("{system} stopped during start-up: {error}"),
                }
            }
            Err(error) => error.to_string(),
        };
        let mut record = match &decoded {
            Ok(envelope) => envelope_record(envelope),
            Err(_) => Record {
                topic: Topic::State,
                key: system.to_owned(),
                headers: vec![(crate::bus::headers::TARGET.into(), system.to_owned())],
                payload: Bytes::new(),
            },
        };
        record.payload = Bytes::from(snapshot.payload);
        let delivery = Delivery {
            record: Arc::new(record),
            group: Arc::from(group),
            partition: u32::try_from(snapshot.partition).unwrap_or_default(),
            offset: u64::try_from(snapshot.offset).unwrap_or_default(),
        };
        dead_letter_and_continue(&self.bridge, &self.bridge_stats, &delivery, &refusal)
            .await
            .map_err(|error| anyhow::anyhow!("{system}: a refused snapshot: {error}"))
    }

    /// Where the view group of `view` (`intake`, `supervision`) resumes: where the case
    /// repository says its last transaction left it, with the group's progress written there
    /// with the rows, under the stable name `{prefix}.{view}.view`. None when the views do
    /// not resume ([`resumable`](Self::resumable)).
    pub(super) async fn view_resume(&self, view: &str) -> anyhow::Result<Option<Resume>> {
        let (Some(repository), Some(writer)) = (self.resumable(), &self.case_writer) else {
            return Ok(None);
        };
        let prefix = self.settings.bus.topic_prefix.clone();
        let group = format!("{prefix}.{view}.view");
        let stored = repository.offsets(&group).await.with_context(|| {
            format!("Failed to read where the {view} view stopped (case repository)")
        })?;
        let topics: Map<String, Topic> = Topic::flow()
            .into_iter()
            .map(|topic| (topic.name(&prefix), topic))
            .collect();
        let from = stored
            .into_iter()
            .filter_map(|((name, partition), next)| {
                let partition = u32::try_from(partition).ok()?;
                Some(((*topics.get(&name)?, partition), u64::try_from(next).ok()?))
            })
            .collect();
        let writer = writer.clone();
        let store: OffsetSink = Arc::new(move |topic: Topic, partition: u32, next: u64| {
            writer.offset(StoredOffset {
                group: group.clone(),
                topic: topic.name(&prefix),
                partition: i32::try_from(partition).unwrap_or(i32::MAX),
                next: i64::try_from(next).unwrap_or(i64::MAX),
            });
        });
        Ok(Some(Resume { from, store }))
    }

    /// Now and every [`FORGET_CLOSED_EVERY`] while the process runs, with a store on a bus that
    /// outlives the process: deletes the closed markers of cases closed longer ago than the
    /// flow topics' retention, whose messages can no longer be delivered.
    pub(super) fn forget_old_closed_markers(&self) {
        let keeps_state = self.settings.store.keep_state && self.bus.outlives_process();
        let Some(store) = self.store.clone().filter(|_| keeps_state) else {
            return;
        };
        let (catalog, stopping) = (self.catalog.clone(), self.stopping.clone());
        actix_rt::spawn(async move {
            while !stopping.load(std::sync::atomic::Ordering::Acquire) {
                let horizon = catalog.now() - catalog.flow_retention;
                match store.forget_closed_states(horizon).await {
                    Ok(0) => {}
                    Ok(forgotten) => {
                        tracing::info!(forgotten, %horizon, "closed markers past the retention deleted");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "deleting old closed markers failed; trying again later");
                    }
                }
                tokio::time::sleep(FORGET_CLOSED_EVERY).await;
            }
        });
    }
}

/// How the state group resumes from the store and keeps what it reads there.
pub(super) struct KeptState {
    /// Where it resumes, and where its offsets go.
    pub(super) resume: Resume,
    /// Where the snapshots it read go.
    pub(super) keep: KeepHandled,
}

/// Reads pages of at most [`TAKE_BACK_PAGE`] items with `read` (given the last item of the page
/// before, `None` for the first) and hands each to `hand`, until a page is not full; how many
/// items there were in all.
async fn in_pages<T, Read, Hand>(
    read: impl Fn(Option<T>) -> Read,
    hand: impl Fn(Vec<T>) -> Hand,
) -> anyhow::Result<usize>
where
    T: Clone,
    Read: std::future::Future<Output = anyhow::Result<Vec<T>>>,
    Hand: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut after = None;
    let mut taken = 0;
    loop {
        let page = read(after).await?;
        let full = page.len() == TAKE_BACK_PAGE as usize;
        taken += page.len();
        after = page.last().cloned();
        hand(page).await?;
        if !full {
            return Ok(taken);
        }
    }
}
