//! The intake system (收件系统).
//!
//! It issues a case id for every submission, keeps the application until the city centre takes
//! it from the feed ([`TakeNewApplications`], read with a cursor), follows each case on the bus
//! (its consumer group reads every topic) and answers the applicant's self-query
//! ([`GetCase`]). A case is complete when the city centre hands the approval over
//! (`approval.delivered`).

use crate::bus::bridge::{HandleError, Inbound};
use crate::catalog::{Catalog, LookupError};
use crate::domain::{
    Applicant, Application, Approval, CaseId, CaseStatus, Channel, CollaborationEvent,
    CollaborationOutcome, CollaborationRequest, CollaborationResult, Envelope, MessageId,
    MessageType, Receipt, Region, SystemId, Tier,
};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a person fills in at a terminal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationForm {
    /// The matter applied for.
    pub matter_code: String,
    /// Who applies.
    pub applicant: Applicant,
    /// Where.
    pub region: Region,
    /// Materials handed in, by name or code.
    #[serde(default)]
    pub materials: Vec<String>,
    /// Free-form form fields.
    #[serde(default)]
    pub form: serde_json::Value,
}

/// A terminal hands in an application.
#[derive(Message)]
#[rtype(result = "Result<CaseId, LookupError>")]
pub struct Submit {
    /// What was filled in.
    pub form: ApplicationForm,
    /// The terminal.
    pub terminal_id: String,
    /// Its channel.
    pub channel: Channel,
}

/// The city centre reads new applications: those with a sequence number above `after`,
/// oldest first. Waits until there is at least one.
#[derive(Message)]
#[rtype(result = "Vec<FedApplication>")]
pub struct TakeNewApplications {
    /// The last sequence number already taken.
    pub after: u64,
    /// Most applications to return.
    pub max: usize,
}

/// One application from the feed.
#[derive(Debug, Clone)]
pub struct FedApplication {
    /// Its position in the feed (1, 2, …).
    pub sequence: u64,
    /// The application.
    pub application: Application,
    /// The case's trace id.
    pub trace_id: String,
}

/// The applicant's self-query.
#[derive(Message)]
#[rtype(result = "Option<CaseView>")]
pub struct GetCase(pub CaseId);

/// Resolves when the case is completed (or at once if it already is); `None` for an unknown
/// case.
#[derive(Message)]
#[rtype(result = "Option<oneshot::Receiver<CaseView>>")]
pub struct AwaitCompletion(pub CaseId);

/// A case as the applicant sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseView {
    /// Case id.
    pub case_id: CaseId,
    /// Where the case stands.
    pub status: CaseStatus,
    /// The application.
    pub application: Application,
    /// The receipt, once accepted.
    pub receipt: Option<Receipt>,
    /// Collaboration events, in dispatch order.
    pub collaboration_events: Vec<EventView>,
    /// The approval, once decided.
    pub approval: Option<Approval>,
    /// Every step, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// A collaboration event as the applicant sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventView {
    /// Event id.
    pub event_id: String,
    /// Collaborating department code.
    pub department: String,
    /// Tier at which it is handled.
    pub tier: Tier,
    /// The centres it passed, by name (e.g. 重庆市 → 渝中区 → 解放碑街道).
    pub tier_path: Vec<String>,
    /// `routing` (on its way down), `dispatched` (at the department) or `answered`.
    pub status: String,
    /// The answer, once given.
    pub result: Option<EventResultView>,
}

/// A collaborating department's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventResultView {
    /// Agree or disagree.
    pub outcome: CollaborationOutcome,
    /// Opinion.
    pub opinion: String,
    /// When.
    pub answered_at: DateTime<Utc>,
}

/// One step of a case's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The message type (or `submitted`).
    pub step: String,
    /// Who did it.
    pub by: String,
    /// To whom.
    pub to: String,
    /// The bus message id.
    pub message_id: String,
}

/// A case the intake system follows.
struct CaseRecord {
    view: CaseView,
    /// Message ids already in the history.
    seen: HashSet<MessageId>,
    /// Waiting for completion.
    watchers: Vec<oneshot::Sender<CaseView>>,
}

/// The intake system.
pub struct IntakeSystem {
    /// The city's matters and regions.
    catalog: Arc<Catalog>,
    /// Every case, by id.
    cases: HashMap<CaseId, CaseRecord>,
    /// The feed: case ids in submission order (sequence = index + 1), with trace ids.
    feed: Vec<(CaseId, String)>,
    /// A feed reader waiting for the next submission.
    feed_waiter: Option<(TakeNewApplications, oneshot::Sender<Vec<FedApplication>>)>,
}

impl IntakeSystem {
    /// An empty intake system.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            cases: HashMap::new(),
            feed: Vec::new(),
            feed_waiter: None,
        }
    }

    fn take(&self, after: u64, max: usize) -> Vec<FedApplication> {
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(self.feed.len());
        self.feed[start..]
            .iter()
            .take(max.max(1))
            .enumerate()
            .filter_map(|(i, (case_id, trace_id))| {
                let record = self.cases.get(case_id)?;
                Some(FedApplication {
                    sequence: (start + i + 1) as u64,
                    application: record.view.application.clone(),
                    trace_id: trace_id.clone(),
                })
            })
            .collect()
    }

    /// Records what a bus message says about its case.
    fn observe(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        let city = self.catalog.city.clone();
        let Some(record) = self.cases.get_mut(&envelope.case_id) else {
            tracing::debug!(case_id = %envelope.case_id, "message for a case this intake system did not issue");
            return Ok(());
        };
        if !record.seen.insert(envelope.id.clone()) {
            return Ok(());
        }
        let poison = |e: crate::domain::EnvelopeError| HandleError::Poison(e.to_string());
        let view = &mut record.view;
        let status = match envelope.kind {
            MessageType::ApplicationPublished => CaseStatus::Published,
            MessageType::ApplicationAccepted => {
                view.receipt = Some(envelope.data().map_err(poison)?);
                CaseStatus::Accepted
            }
            MessageType::CollaborationRequested => {
                // Decoded only for the receipt it repeats, when the acceptance is not read yet.
                if view.receipt.is_none() {
                    let request: CollaborationRequest = envelope.data().map_err(poison)?;
                    if let Some(receipt) = &request.receipt {
                        learn_receipt(view, &mut record.seen, receipt, &city);
                    }
                }
                CaseStatus::Collaborating
            }
            MessageType::CollaborationDispatched => {
                let event: CollaborationEvent = envelope.data().map_err(poison)?;
                let at_department = envelope.target.to_string().starts_with("department/");
                let entry = event_view(
                    view,
                    &event.event_id.to_string(),
                    &event.department,
                    event.tier,
                );
                entry.tier = event.tier;
                if event.route.len() >= entry.tier_path.len() {
                    entry.tier_path = event.route.iter().map(|h| h.name.clone()).collect();
                }
                if entry.result.is_none() {
                    entry.status = if at_department {
                        "dispatched"
                    } else {
                        "routing"
                    }
                    .into();
                }
                CaseStatus::Collaborating
            }
            MessageType::CollaborationAnswered => {
                let result: CollaborationResult = envelope.data().map_err(poison)?;
                // The last centre of the route sits at the department's tier.
                let tier = result.route.last().map_or(Tier::City, |hop| hop.tier);
                let entry =
                    event_view(view, &result.event_id.to_string(), &result.department, tier);
                entry.status = "answered".into();
                if entry.tier_path.is_empty() {
                    entry.tier_path = result.route.iter().map(|h| h.name.clone()).collect();
                }
                entry.result = Some(EventResultView {
                    outcome: result.outcome,
                    opinion: result.opinion,
                    answered_at: result.answered_at,
                });
                CaseStatus::Collaborating
            }
            MessageType::CollaborationCompleted => CaseStatus::Collaborating,
            MessageType::ApprovalPublished | MessageType::ApprovalDelivered => {
                // `approval.delivered` repeats `approval.published`: decode whichever comes first.
                if view.approval.is_none() {
                    let approval: Approval = envelope.data().map_err(poison)?;
                    if let Some(receipt) = &approval.receipt {
                        learn_receipt(view, &mut record.seen, receipt, &city);
                    }
                    view.approval = Some(approval);
                }
                if envelope.kind == MessageType::ApprovalDelivered {
                    CaseStatus::Completed
                } else {
                    CaseStatus::Decided
                }
            }
        };
        // Topics are read independently, so messages of one case may be observed out of order:
        // the status only ever moves forward.
        view.status = view.status.max(status);
        view.history.push(HistoryEntry {
            at: envelope.occurred_at,
            step: envelope.kind.as_str().to_owned(),
            by: envelope.source.to_string(),
            to: envelope.target.to_string(),
            message_id: envelope.id.to_string(),
        });
        view.history.sort_by_key(|entry| entry.at);
        if view.status == CaseStatus::Completed {
            for watcher in record.watchers.drain(..) {
                let _ = watcher.send(record.view.clone());
            }
        }
        Ok(())
    }
}

/// Records a receipt learnt from a later message (a collaboration request or an approval
/// repeats it) when the acceptance itself has not been read yet — topics are read
/// independently. The history entry gets the acceptance's own message id, so the real record is
/// a repeat when it comes.
fn learn_receipt(
    view: &mut CaseView,
    seen: &mut HashSet<MessageId>,
    receipt: &Receipt,
    city: &str,
) {
    if view.receipt.is_some() {
        return;
    }
    view.receipt = Some(receipt.clone());
    let accepted = MessageId::from_string(format!("{}/accepted", view.case_id));
    if seen.insert(accepted.clone()) {
        view.history.push(HistoryEntry {
            at: receipt.accepted_at,
            step: MessageType::ApplicationAccepted.as_str().to_owned(),
            by: format!("department/{}", receipt.department),
            to: SystemId::Governance(city.to_owned()).to_string(),
            message_id: accepted.to_string(),
        });
    }
}

/// The view of an event, created on first sight.
fn event_view<'a>(
    view: &'a mut CaseView,
    event_id: &str,
    department: &str,
    tier: Tier,
) -> &'a mut EventView {
    let index = match view
        .collaboration_events
        .iter()
        .position(|e| e.event_id == event_id)
    {
        Some(index) => index,
        None => {
            view.collaboration_events.push(EventView {
                event_id: event_id.to_owned(),
                department: department.to_owned(),
                tier,
                tier_path: Vec::new(),
                status: "routing".into(),
                result: None,
            });
            view.collaboration_events.len() - 1
        }
    };
    &mut view.collaboration_events[index]
}

impl Actor for IntakeSystem {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16_384);
    }
}

impl Handler<Submit> for IntakeSystem {
    type Result = Result<CaseId, LookupError>;

    fn handle(&mut self, msg: Submit, _: &mut Self::Context) -> Self::Result {
        let form = msg.form;
        self.catalog.matter(&form.matter_code)?;
        self.catalog.check_region(&form.region)?;
        let case_id = CaseId::generate();
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let now = Utc::now();
        let application = Application {
            case_id: case_id.clone(),
            matter_code: form.matter_code,
            applicant: form.applicant,
            region: form.region,
            materials: form.materials,
            form: form.form,
            terminal_id: msg.terminal_id.clone(),
            channel: msg.channel,
            submitted_at: now,
        };
        let view = CaseView {
            case_id: case_id.clone(),
            status: CaseStatus::Submitted,
            application,
            receipt: None,
            collaboration_events: Vec::new(),
            approval: None,
            history: vec![HistoryEntry {
                at: now,
                step: "submitted".into(),
                by: format!("terminal/{}", msg.terminal_id),
                to: "intake".into(),
                message_id: format!("{case_id}/submitted"),
            }],
        };
        tracing::info!(%case_id, terminal = %msg.terminal_id, "application received");
        self.cases.insert(
            case_id.clone(),
            CaseRecord {
                view,
                seen: HashSet::new(),
                watchers: Vec::new(),
            },
        );
        self.feed.push((case_id.clone(), trace_id));
        if let Some((request, waiter)) = self.feed_waiter.take() {
            let batch = self.take(request.after, request.max);
            if let Err(unsent) = waiter.send(batch) {
                // The reader gave up waiting; it will ask again with the same cursor.
                drop(unsent);
            }
        }
        Ok(case_id)
    }
}

impl Handler<TakeNewApplications> for IntakeSystem {
    type Result = ResponseFuture<Vec<FedApplication>>;

    fn handle(&mut self, msg: TakeNewApplications, _: &mut Self::Context) -> Self::Result {
        let batch = self.take(msg.after, msg.max);
        if !batch.is_empty() {
            return Box::pin(async move { batch });
        }
        let (tx, rx) = oneshot::channel();
        self.feed_waiter = Some((msg, tx));
        Box::pin(async move { rx.await.unwrap_or_default() })
    }
}

impl Handler<GetCase> for IntakeSystem {
    type Result = Option<CaseView>;

    fn handle(&mut self, msg: GetCase, _: &mut Self::Context) -> Self::Result {
        self.cases.get(&msg.0).map(|r| r.view.clone())
    }
}

impl Handler<AwaitCompletion> for IntakeSystem {
    type Result = Option<oneshot::Receiver<CaseView>>;

    fn handle(&mut self, msg: AwaitCompletion, _: &mut Self::Context) -> Self::Result {
        let record = self.cases.get_mut(&msg.0)?;
        let (tx, rx) = oneshot::channel();
        if record.view.status == CaseStatus::Completed {
            let _ = tx.send(record.view.clone());
        } else {
            record.watchers.push(tx);
        }
        Some(rx)
    }
}

impl Handler<Inbound> for IntakeSystem {
    type Result = Result<(), HandleError>;

    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        self.observe(&msg.0)
    }
}
