//! Start-up's three phases (see the module docs of [`super`]): every consumer group subscribed at
//! once, the state rebuilt, then the views, then the flow started.

use super::{Group, Phase, Rebuilt, Systems};
use crate::actors::governance_center::StartFeed;
use crate::actors::intake::{MarkReady, TakeBack};
use crate::actors::supervisor::TakeBackRecords;
use crate::auth::service_token::ServiceToken;
use crate::bus::bridge::{Routes, Subscribe};
use crate::bus::{CatchUp, Membership, OffsetSink, Resume, Topic};
use crate::domain::SystemId;
use crate::feed::FeedSource;
use crate::port::Inbound;
use crate::store::StoredOffset;
use actix::prelude::*;
use anyhow::Context as _;
use std::collections::HashMap;
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
            let open = repository
                .open_cases()
                .await
                .context("Failed to read the open cases from the case repository")?;
            self.intake
                .send(TakeBack(open))
                .await
                .context("the intake system stopped during start-up")?;
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
            return Ok(CatchUp::new(HashMap::new()));
        }
        let mut owners: HashMap<String, Recipient<Inbound>> = HashMap::new();
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
        let state = self.end_offsets(vec![Topic::State]).await?;
        self.set_phase(Phase::State(Some(state.clone())));
        let group = Group::new(self.state_group.clone(), vec![Topic::State]);
        self.subscribe(group, Routes::ByTarget(owners), Some(state.clone()))
            .await?;
        Ok(state)
    }

    /// Phase 2's groups: the intake and supervision systems will read the flow topics, once
    /// the state is back — from the start, or from where the case repository says each
    /// stopped. Answers what each must read.
    async fn subscribe_views(&self) -> anyhow::Result<HashMap<SystemId, Arc<CatchUp>>> {
        let mut readers: Vec<(SystemId, String, Recipient<Inbound>, Option<Resume>)> = Vec::new();
        if self.roles.intake {
            let resume = self.view_resume("intake").await?;
            let reader = self.intake.clone().recipient();
            readers.push((SystemId::Intake, self.intake_group.clone(), reader, resume));
        }
        if self.roles.governance {
            let resume = self.view_resume("supervision").await?;
            let reader = self.supervisor.clone().recipient();
            let group = self.supervision_group.clone();
            readers.push((SystemId::Supervision, group, reader, resume));
        }
        let mut views = HashMap::new();
        for (system, group, reader, resume) in readers {
            let ends = self.end_offsets(Topic::flow()).await?;
            let view = match &resume {
                Some(resume) => CatchUp::resumed(ends.target(), &resume.from),
                None => ends,
            };
            let group = Group::new(group, Topic::flow())
                .after_state()
                .resuming(resume);
            self.subscribe(
                group,
                Routes::All(system.clone(), reader),
                Some(view.clone()),
            )
            .await?;
            views.insert(system, view);
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
        let topics: HashMap<String, Topic> = Topic::flow()
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

    /// The shared groups of centres and departments, from their committed offsets; they
    /// handle records once the state is back.
    async fn subscribe_flow(&self) -> anyhow::Result<()> {
        let prefix = self.settings.bus.topic_prefix.clone();
        if self.roles.governance {
            let group = Group::new(
                format!("{prefix}.governance"),
                vec![
                    Topic::CollaborationRequests,
                    Topic::CollaborationEvents,
                    Topic::CollaborationResults,
                    Topic::Approvals,
                ],
            );
            self.subscribe(group.shared(), Routes::ByTarget(self.centre_routes()), None)
                .await?;
        }
        for (code, addr) in self.departments.iter() {
            let routes = HashMap::from([(
                SystemId::Department(code.clone()).to_string(),
                addr.clone().recipient(),
            )]);
            let group = Group::new(
                format!("{prefix}.department.{code}"),
                vec![
                    Topic::Applications,
                    Topic::CollaborationEvents,
                    Topic::CollaborationResults,
                    Topic::CaseUpdates,
                ],
            );
            self.subscribe(group.shared(), Routes::ByTarget(routes), None)
                .await?;
        }
        Ok(())
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
            let source = if self.roles.intake {
                FeedSource::Local(self.intake.clone().recipient())
            } else {
                let token = ServiceToken::from_settings(&self.settings.auth)?;
                FeedSource::http(&self.settings.service.intake_feed_url, token)
            };
            city.send(StartFeed(source))
                .await
                .context("the city centre stopped during start-up")?;
        }
        Ok(())
    }

    /// Every centre of this process, by its id on the bus.
    fn centre_routes(&self) -> HashMap<String, Recipient<Inbound>> {
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
    async fn end_offsets(&self, topics: Vec<Topic>) -> anyhow::Result<Arc<CatchUp>> {
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
    /// consumers on this thread, with the bridge and the intake system; the groups of centres
    /// and departments on the worker thread, with the systems they feed.
    async fn subscribe(
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
            _ if !group.shared => Membership::Alone,
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
            })
            .await
            .context("the bridge actor stopped during start-up")?
            .with_context(|| format!("failed to start consumer group {name}"))?;
        self.subscriptions.lock().await.push(handle);
        Ok(())
    }
}
