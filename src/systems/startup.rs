//! Start-up's three phases (see the module docs of [`super`]): every consumer group subscribed at
//! once, the state rebuilt, then the views, then the flow started. What each phase takes back
//! from the case repository and the state store is in `stored.rs`.

use super::{group, Group, Phase, Rebuilt, Systems};
use crate::actors::governance_center::StartFeed;
use crate::actors::intake::MarkReady;
use crate::auth::service_token::ServiceToken;
use crate::bus::bridge::{Routes, Subscribe};
use crate::bus::{CatchUp, EndOffsets, Membership, Resume, Share, Topic};
use crate::domain::SystemId;
use crate::feed::FeedSource;
use crate::maps::Map;
use crate::port::Inbound;
use actix::prelude::*;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

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
