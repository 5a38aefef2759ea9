//! Start-up's three phases (see the module docs of [`super`]): every consumer group subscribed at
//! once, the state rebuilt, then the views, then the flow started.

use super::{group, Group, Phase, Rebuilt, Systems};
use crate::actors::governance_center::StartFeed;
use crate::actors::intake::{MarkReady, TakeBack};
use crate::actors::supervisor::TakeBackRecords;
use crate::auth::service_token::ServiceToken;
use crate::bus::bridge::{
    dead_letter_and_continue, envelope_record, KeepHandled, Routes, Subscribe,
};
use crate::bus::{
    CatchUp, Delivery, EndOffsets, Membership, OffsetSink, Record, Resume, Share, Topic,
};
use crate::domain::{Envelope, SystemId};
use crate::feed::FeedSource;
use crate::maps::Map;
use crate::port::{HandleError, Inbound};
use crate::store::{CaseRepository, StateRow, StoredOffset, StoredSnapshot};
use actix::prelude::*;
use anyhow::Context as _;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// How often the closed markers past the flow topics' retention are deleted from the store.
const FORGET_CLOSED_EVERY: Duration = Duration::from_secs(3600);

/// How many open cases the intake system is handed at a time at start.
const TAKE_BACK_PAGE: u32 = 1_000;

impl Systems {
    /// Subscribes every group, rebuilds state, then views, then starts the flow (see the
    /// module docs).
    pub(super) async fn bring_up(&self) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        self.take_back_open_cases().await?;
        let state = self.subscribe_state().await?;
        self.subscribe_flow().await?;
        let views = self.subscribe_views().await?;
        self.caught_up(&state).await;
        // The views' and the flow's groups have waited for this (see `Subscription::after`).
        self.state_rebuilt.send_replace(true);
        tracing::info!(
            records = state.total(),
            taken_back = self
                .state_taken_back
                .load(std::sync::atomic::Ordering::Relaxed),
            seconds = started.elapsed().as_secs_f64(),
            "state rebuilt"
        );
        let all: Vec<Arc<CatchUp>> = views.values().cloned().collect();
        self.set_phase(Phase::Views(all.clone()));
        for view in &all {
            self.caught_up(view).await;
        }
        let rebuilt = Rebuilt {
            state_records: state.total(),
            state_taken_back: self
                .state_taken_back
                .load(std::sync::atomic::Ordering::Relaxed),
            intake_view_records: views.get(&SystemId::Intake).map_or(0, |v| v.total()),
            supervision_view_records: views.get(&SystemId::Supervision).map_or(0, |v| v.total()),
        };
        tracing::info!(
            records = all.iter().map(|v| v.total()).sum::<u64>(),
            intake = rebuilt.intake_view_records,
            supervision = rebuilt.supervision_view_records,
            seconds = started.elapsed().as_secs_f64(),
            "intake and supervision views rebuilt"
        );
        *self.rebuilt.lock().unwrap_or_else(|e| e.into_inner()) = Some(rebuilt);
        self.start_flow().await?;
        self.forget_old_closed_markers();
        self.set_phase(Phase::Running);
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "every system runs"
        );
        Ok(())
    }

    /// Before phase 1: the intake system takes back the open cases of its case repository, and
    /// the supervision system its open records, so that the snapshots and the records after
    /// the stored offsets meet them as they stood.
    async fn take_back_open_cases(&self) -> anyhow::Result<()> {
        let Some(repository) = self.resumable() else {
            return Ok(());
        };
        if self.roles.intake {
            // A page at a time: the intake keeps no more than its limit of them in memory, and
            // the rows read need not be all in memory at once either.
            let mut after = None;
            let mut taken = 0;
            loop {
                let page = repository
                    .open_cases(after.as_ref(), TAKE_BACK_PAGE)
                    .await
                    .context("Failed to read the open cases from the case repository")?;
                let full = page.len() == TAKE_BACK_PAGE as usize;
                taken += page.len();
                after = page.last().cloned();
                self.intake
                    .send(TakeBack(page))
                    .await
                    .context("the intake system stopped during start-up")?;
                if !full {
                    break;
                }
            }
            tracing::info!(
                cases = taken,
                "open cases taken back from the case repository"
            );
        }
        if self.roles.governance {
            let open = repository
                .open_supervision()
                .await
                .context("Failed to read the open supervision records from the case repository")?;
            self.supervisor
                .send(TakeBackRecords(open))
                .await
                .context("the supervision system stopped during start-up")?;
        }
        Ok(())
    }

    /// The case repository the views resume from: none when there is none, or when the bus
    /// ends with the process (the cases it left open will never move again, and a new bus's
    /// offsets are not those the repository holds).
    fn resumable(&self) -> Option<&crate::store::CaseRepository> {
        self.repository
            .as_ref()
            .filter(|_| self.bus.outlives_process())
    }

    /// Phase 1 begins: every stateful system of this process will take back its snapshots.
    /// Answers what the group must read before the state is back.
    async fn subscribe_state(&self) -> anyhow::Result<Arc<CatchUp>> {
        if !self.bus.outlives_process() {
            return Ok(CatchUp::new(Default::default()));
        }
        let mut owners: Map<String, Recipient<Inbound>> = Map::default();
        if self.roles.intake {
            owners.insert(
                SystemId::Intake.to_string(),
                self.intake.clone().recipient(),
            );
        }
        owners.extend(self.centre_routes());
        owners.extend(self.departments.iter().map(|(code, department)| {
            (
                SystemId::Department(code.clone()).to_string(),
                department.clone().recipient(),
            )
        }));
        let ends = self.end_offsets(vec![Topic::State]).await?;
        let kept = self.kept_state(&owners).await?;
        let state = match &kept {
            Some(kept) => CatchUp::resumed(ends.target(), &kept.resume.from),
            None => ends,
        };
        self.set_phase(Phase::State(Some(state.clone())));
        let (resume, keep) = kept.map(|kept| (kept.resume, kept.keep)).unzip();
        let group = Group::new(self.state_group.clone(), vec![Topic::State])
            .resuming(resume)
            .keeping(keep);
        self.subscribe(group, Routes::ByTarget(owners), Some(state.clone()))
            .await?;
        Ok(state)
    }

    /// With a store and `store.keep_state`, on a bus that outlives the process: hands every system of `owners` the
    /// snapshots of the cases it holds open, as the store kept them, and answers where the
    /// state group resumes and how it keeps what it reads. The store's offsets are those of
    /// this very set of systems (`{prefix}.state[{systems}]`): another set's rows may lag
    /// behind them. Like the views' offsets, they belong to the topic they were read from: a
    /// city whose topics are deleted and made anew starts with a new store.
    async fn kept_state(
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

    /// Phase 2's groups: the intake and supervision systems will read the flow topics, once
    /// the state is back — from the start, or from where the case repository says each
    /// stopped. A process that runs both, with one intake process in the city, reads for both
    /// with one group (their group names are then one): each record is decoded once and handed
    /// to both. Answers what each must read.
    async fn subscribe_views(&self) -> anyhow::Result<Map<SystemId, Arc<CatchUp>>> {
        let mut readers: Vec<Reader> = Vec::new();
        if self.roles.intake {
            // With several intake processes, each reads the partitions of its own cases.
            let share = self.intake_share.share();
            let resume = self.view_resume("intake").await?;
            let reader = self.intake.clone().recipient();
            let group = self.intake_group.clone();
            readers.push((SystemId::Intake, group, reader, resume, share));
        }
        if self.roles.governance {
            let resume = self.view_resume("supervision").await?;
            let reader = self.supervisor.clone().recipient();
            let group = self.supervision_group.clone();
            readers.push((SystemId::Supervision, group, reader, resume, Share::ALL));
        }
        let mut views = Map::default();
        for (group, readers) in by_group(readers) {
            let share = readers[0].4;
            let ends: EndOffsets = (self.end_offsets(Topic::flow()).await?.target())
                .into_iter()
                .filter(|((_, partition), _)| share.takes(*partition))
                .collect();
            let mut systems = Vec::new();
            let mut observers = Vec::new();
            let mut resumes = Vec::new();
            for (system, _, reader, resume, _) in readers {
                observers.push((system.to_string(), reader));
                resumes.push(resume);
                systems.push(system);
            }
            let resume = Resume::together(resumes);
            let view = match &resume {
                Some(resume) => CatchUp::resumed(ends, &resume.from),
                None => CatchUp::new(ends),
            };
            let group = Group::new(group, Topic::flow())
                .after_state()
                .resuming(resume)
                .reading(share);
            self.subscribe(group, Routes::All(observers), Some(view.clone()))
                .await?;
            for system in systems {
                views.insert(system, view.clone());
            }
        }
        Ok(views)
    }

    /// Where the view group of `view` (`intake`, `supervision`) resumes: where the case
    /// repository says its last transaction left it, with the group's progress written there
    /// with the rows, under the stable name `{prefix}.{view}.view`. None when the views do
    /// not resume ([`resumable`](Self::resumable)).
    async fn view_resume(&self, view: &str) -> anyhow::Result<Option<Resume>> {
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

    /// The shared group of this process's centres and departments ([`group::flow_group`]),
    /// from its committed offsets: one consumer reads the flow for all of them, and hands each
    /// record to the system its `target` header names. They handle records once the state is
    /// back.
    async fn subscribe_flow(&self) -> anyhow::Result<()> {
        let Some(name) = self.flow_group.clone() else {
            return Ok(());
        };
        let mut routes = Map::default();
        if self.roles.governance {
            routes.extend(self.centre_routes());
        }
        for (code, addr) in self.departments.iter() {
            routes.insert(
                SystemId::Department(code.clone()).to_string(),
                addr.clone().recipient(),
            );
        }
        let topics = group::flow_topics(self.roles.governance, !self.departments.is_empty());
        let group = Group::new(name, topics).shared();
        self.subscribe(group, Routes::ByTarget(routes), None).await
    }

    /// Phase 3: the intake system takes submissions and the city centre reads the feed.
    async fn start_flow(&self) -> anyhow::Result<()> {
        if self.roles.intake {
            self.intake
                .send(MarkReady)
                .await
                .context("the intake system stopped during start-up")?;
        }
        if let Some(city) = self.centres.get(&self.catalog.city) {
            city.send(StartFeed(self.feed_sources()?))
                .await
                .context("the city centre stopped during start-up")?;
        }
        Ok(())
    }

    /// Where the city centre reads each intake process's feed, instance 0 first: this
    /// process's intake system directly, another process's over HTTP.
    fn feed_sources(&self) -> anyhow::Result<Vec<FeedSource>> {
        let service = &self.settings.service;
        let own = self.intake_share.share();
        let urls: Vec<&str> = if service.intake_instances > 1 {
            service
                .intake_feed_urls
                .iter()
                .map(String::as_str)
                .collect()
        } else {
            vec![service.intake_feed_url.as_str()]
        };
        let mut sources = Vec::new();
        for (instance, url) in (0..).zip(urls) {
            let share = Share {
                instance,
                instances: service.intake_instances,
            };
            if self.roles.intake && share == own {
                sources.push(FeedSource::Local(self.intake.clone().recipient()));
            } else {
                let token = ServiceToken::from_settings(&self.settings.auth)?;
                sources.push(FeedSource::http(url, token, share));
            }
        }
        Ok(sources)
    }

    /// Every centre of this process, by its id on the bus.
    fn centre_routes(&self) -> Map<String, Recipient<Inbound>> {
        self.centres
            .iter()
            .map(|(code, addr)| {
                (
                    SystemId::Governance(code.clone()).to_string(),
                    addr.clone().recipient(),
                )
            })
            .collect()
    }

    /// Now and every [`FORGET_CLOSED_EVERY`] while the process runs, with a store on a bus that
    /// outlives the process: deletes the closed markers of cases closed longer ago than the
    /// flow topics' retention, whose messages can no longer be delivered.
    fn forget_old_closed_markers(&self) {
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

    /// Where every partition of `topics` ends now, asking again until the bus answers.
    pub(super) async fn end_offsets(&self, topics: Vec<Topic>) -> anyhow::Result<Arc<CatchUp>> {
        let mut attempts = 0;
        loop {
            match self.bus.end_offsets(topics.clone()).await {
                Ok(ends) => return Ok(CatchUp::new(ends)),
                Err(error) if attempts < 30 => {
                    attempts += 1;
                    tracing::warn!(%error, "cannot read where the topics end yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => return Err(error).context("Failed to read the topics' end offsets"),
            }
        }
    }

    /// Waits until a rebuilding group has read what was there when it started.
    async fn caught_up(&self, catch_up: &CatchUp) {
        while catch_up.remaining() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts a consumer group. The groups that rebuild state and views (`catch_up`) run their
    /// consumers on the bridge's thread; the groups of centres and departments on the worker
    /// thread, with the systems they feed.
    pub(super) async fn subscribe(
        &self,
        group: Group,
        routes: Routes,
        catch_up: Option<Arc<CatchUp>>,
    ) -> anyhow::Result<()> {
        let arbiter = catch_up.is_none().then(|| self.worker.handle());
        let after = group.after_state.then(|| self.state_rebuilt.subscribe());
        // A group of this run alone reads every partition without joining; a shared group
        // joins, as a static member when the process has a stable name.
        let membership = match &self.settings.bus.kafka.instance_id {
            _ if !group.shared => Membership::Alone(group.share),
            id if id.is_empty() => Membership::Dynamic,
            id => Membership::Static(id.clone()),
        };
        let name = group.name.clone();
        let handle = self
            .bridge
            .send(Subscribe {
                group: group.name,
                topics: group.topics,
                routes,
                arbiter,
                catch_up,
                after,
                membership,
                resume: group.resume,
                keep: group.keep,
            })
            .await
            .context("the bridge actor stopped during start-up")?
            .with_context(|| format!("failed to start consumer group {name}"))?;
        self.subscriptions.lock().await.push(handle);
        Ok(())
    }
}

/// A system that rebuilds its view from the flow topics: the system, its group, where its
/// records go, where it resumes, and the partitions it reads.
type Reader = (SystemId, String, Recipient<Inbound>, Option<Resume>, Share);

/// `readers` by group name, in the order each group first comes.
fn by_group(readers: Vec<Reader>) -> Vec<(String, Vec<Reader>)> {
    let mut groups: Vec<(String, Vec<Reader>)> = Vec::new();
    for reader in readers {
        match groups.iter_mut().find(|(group, _)| *group == reader.1) {
            Some((_, together)) => together.push(reader),
            None => groups.push((reader.1.clone(), vec![reader])),
        }
    }
    groups
}

/// How the state group resumes from the store and keeps what it reads there.
struct KeptState {
    /// Where it resumes, and where its offsets go.
    resume: Resume,
    /// Where the snapshots it read go.
    keep: KeepHandled,
}
