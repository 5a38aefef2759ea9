//! What happens on the bus, as the operations dashboard shows it live (issue 17): from the
//! first watcher on, a consumer group of this process reads the flow topics from where they
//! ended then, and every message read is told to whoever listens, as a [`Happened`] — its
//! type, case, sender and addressee, and time, never what it carries (no personal data).

use super::{Group, Systems};
use crate::bus::bridge::Routes;
use crate::bus::{OffsetSink, Resume, Topic};
use crate::port::{HandleError, Inbound};
use actix::prelude::*;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many happenings a slow listener may fall behind before it skips some.
pub const LIVE_BACKLOG: usize = 1024;

/// One message on the bus.
#[derive(Debug, Clone, Serialize)]
pub struct Happened {
    /// When it happened (the message's `occurred_at`).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Its type, e.g. `collaboration.dispatched`.
    pub kind: String,
    /// Its case.
    pub case_id: String,
    /// Who sent it, e.g. `governance/500103`.
    pub source: String,
    /// Whom it is for.
    pub target: String,
}

/// Tells every listener of each message it is handed.
pub struct LiveFeed {
    /// The listeners.
    listeners: broadcast::Sender<Arc<Happened>>,
}

impl Actor for LiveFeed {
    type Context = Context<Self>;
}

impl Handler<Inbound> for LiveFeed {
    type Result = Result<(), HandleError>;

    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        let envelope = msg.0;
        let happened = Happened {
            at: envelope.occurred_at,
            kind: envelope.kind.as_str().to_owned(),
            case_id: envelope.case_id.to_string(),
            source: envelope.source.to_string(),
            target: envelope.target.to_string(),
        };
        // Nobody listening is no failure: the message is read all the same.
        let _ = self.listeners.send(Arc::new(happened));
        Ok(())
    }
}

impl Systems {
    /// The live feed: every message on the flow topics from now on. The first watcher starts
    /// the consumer group that follows them from where they end; until then no group reads
    /// them for it, and nothing is decoded for nobody.
    pub async fn watch_live(&self) -> anyhow::Result<broadcast::Receiver<Arc<Happened>>> {
        // Subscribed before the first receiver exists: it hears from the end on.
        let watching = self.live.subscribe();
        self.live_followed
            .get_or_try_init(|| self.follow_live(self.live.clone()))
            .await?;
        Ok(watching)
    }

    /// Starts following the flow topics from where they end now, for `listeners`. Its offsets
    /// are kept nowhere: a restart follows from the end again.
    async fn follow_live(&self, listeners: broadcast::Sender<Arc<Happened>>) -> anyhow::Result<()> {
        let from = self.end_offsets(Topic::flow()).await?.target();
        let forget: OffsetSink = Arc::new(|_, _, _| {});
        let group = Group::new(self.live_group.clone(), Topic::flow()).resuming(Some(Resume {
            from,
            store: forget,
        }));
        let feed = LiveFeed { listeners }.start().recipient();
        self.subscribe(group, Routes::all("live", feed), None).await
    }
}
