//! The intake system (收件系统).
//!
//! It issues a case id for every submission, keeps the application until the city centre takes
//! it from the feed ([`TakeNewApplications`], read with a cursor), follows each case on the bus
//! (its consumer group reads every topic) and answers the applicant's self-query
//! ([`GetCase`]). A case is complete when the city centre hands the approval over
//! (`approval.delivered`).
//!
//! It is also where the applicant acts on a case after submitting it: supplying the materials a
//! department asked for while the case is suspended ([`SupplementCase`], published as
//! `case.supplemented`) and rating a completed case once ([`RateCase`], `case.rated`).

use super::{publish, Versions};
use crate::bus::bridge::{HandleError, Inbound, Publish};
use crate::catalog::{Catalog, LookupError};
use crate::domain::{message_ids, EventStatus, HistoryStep, StepKind};
use crate::domain::{
    Applicant, Application, Approval, CaseId, CaseStatus, Channel, CollaborationEvent,
    CollaborationOutcome, CollaborationRequest, CollaborationResult, Envelope, EnvelopeHead,
    Escalation, EventReturn, EventReturned, EventSigned, ExtensionDecision, ExtensionRequest,
    MessageId, MessageType, Rating, Receipt, Region, Resumption, Supplement, Suspension, SystemId,
    Tier, Warning, WarningLevel,
};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
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
#[rtype(result = "Result<Submission, SubmitRefused>")]
pub struct Submit {
    /// What was filled in.
    pub form: ApplicationForm,
    /// The terminal.
    pub terminal_id: String,
    /// Its channel.
    pub channel: Channel,
}

/// A submission taken: its case id, and whether its record was on the bus when answered.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    /// The new case.
    pub case_id: CaseId,
    /// True once the application is on the bus and survives this process. False when the bus
    /// did not take it within `service.submit_timeout_ms`: it is kept and published as soon as
    /// the bus takes it.
    pub durable: bool,
}

/// Why a submission was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitRefused {
    /// The application names a matter or region the city does not have.
    #[error(transparent)]
    Unknown(#[from] LookupError),
    /// The intake system is still rebuilding its cases after a start.
    #[error("the intake system is starting up (rebuilding its cases); try again shortly")]
    Starting,
}

/// The state of the intake system has been rebuilt: take submissions and feed them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MarkReady;

/// What the intake system writes to the state topic for each case: enough to feed it again
/// and to rebuild its view by reading the flow topics.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntakeCaseState {
    /// Its feed position.
    sequence: u64,
    /// The application as submitted.
    application: Application,
    /// The case's trace id.
    trace_id: String,
    /// The terminal it came from.
    terminal_id: String,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The applicant supplies the materials a department asked for (补正).
#[derive(Message)]
#[rtype(result = "Result<Supplement, CaseActionError>")]
pub struct SupplementCase {
    /// The case.
    pub case_id: CaseId,
    /// The terminal used.
    pub terminal_id: String,
    /// The materials supplied.
    pub materials: Vec<String>,
}

/// The applicant rates a completed case (好差评).
#[derive(Message)]
#[rtype(result = "Result<Rating, CaseActionError>")]
pub struct RateCase {
    /// The case.
    pub case_id: CaseId,
    /// The terminal used.
    pub terminal_id: String,
    /// 1 to 5.
    pub score: u8,
    /// Optional comment.
    pub comment: String,
}

/// Why the applicant's action on a case was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaseActionError {
    /// No such case.
    #[error("{0}")]
    NotFound(String),
    /// The case is not in a state that allows it (not suspended, not completed, rated).
    #[error("{0}")]
    Conflict(String),
    /// Not published; nothing changed, try again.
    #[error("{0}")]
    Unavailable(String),
}

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
    /// Whether it was decided by the receipt's due date, once decided.
    pub on_time: Option<bool>,
    /// The open request for supplementary materials, while the case is suspended.
    pub suspension: Option<Suspension>,
    /// Deadline warnings raised on the case and its events, oldest first.
    pub warnings: Vec<Warning>,
    /// The applicant's rating, once given.
    pub rating: Option<Rating>,
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
    /// `routing` (on its way down), `dispatched` (at the department), `signed` (the department
    /// took it on), `returned` (the department returned it; being re-routed or waiting for a
    /// centre to reassign it) or `answered`.
    pub status: EventStatus,
    /// When the current department must answer by.
    pub deadline: Option<DateTime<Utc>>,
    /// Extensions granted.
    pub extensions: u32,
    /// Returns (退单): who returned it and why.
    pub returns: Vec<EventReturn>,
    /// The centre it was escalated to (督办), if it was.
    pub escalated_to: Option<String>,
    /// The answer, once given.
    pub result: Option<EventResultView>,
    /// How far the event has come: (returns so far, stage), so that messages read out of
    /// order never move it back.
    #[serde(skip)]
    progress: (usize, u8),
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
    pub step: HistoryStep,
    /// Who did it.
    pub by: String,
    /// To whom.
    pub to: String,
    /// The bus message id.
    pub message_id: MessageId,
    /// What it said, where there is more to say: a reason, materials, a new due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A case the intake system follows.
struct CaseRecord {
    view: CaseView,
    /// Message ids already in the history.
    seen: HashSet<MessageId>,
    /// Waiting for completion.
    watchers: Vec<oneshot::Sender<CaseView>>,
    /// The suspension whose supplement was sent, while its resumption is not yet seen.
    supplement_sent: Option<u32>,
    /// A rating is being published.
    rating_sent: bool,
}

/// The intake system.
pub struct IntakeSystem {
    /// The city's matters and regions, and the clock.
    catalog: Arc<Catalog>,
    /// Where the applicant's supplements and ratings go.
    bridge: Recipient<Publish>,
    /// Every case, by id.
    cases: HashMap<CaseId, CaseRecord>,
    /// The feed: case ids and trace ids by sequence (1, 2, …).
    feed: BTreeMap<u64, (CaseId, String)>,
    /// Sequences whose record is on the bus; the feed hands out only these.
    durable: HashSet<u64>,
    /// Every sequence up to this one is durable: the end of what the feed hands out.
    durable_upto: u64,
    /// A feed reader waiting for the next submission.
    feed_waiter: Option<(TakeNewApplications, oneshot::Sender<Vec<FedApplication>>)>,
    /// Versions of the case snapshots.
    versions: Versions,
    /// State rebuilt: submissions are taken.
    ready: bool,
    /// Submissions waiting to hear that their record is on the bus.
    durable_waiters: HashMap<u64, oneshot::Sender<()>>,
    /// How long a submission waits for its record to be on the bus.
    submit_timeout: std::time::Duration,
}

impl IntakeSystem {
    /// An empty intake system; it takes submissions once told its state is rebuilt
    /// ([`MarkReady`]).
    pub fn new(
        catalog: Arc<Catalog>,
        bridge: Recipient<Publish>,
        submit_timeout: std::time::Duration,
    ) -> Self {
        Self {
            catalog,
            bridge,
            cases: HashMap::new(),
            feed: BTreeMap::new(),
            durable: HashSet::new(),
            durable_upto: 0,
            feed_waiter: None,
            versions: Versions::default(),
            ready: false,
            durable_waiters: HashMap::new(),
            submit_timeout,
        }
    }

    /// Durable applications after `after`, oldest first.
    fn take(&self, after: u64, max: usize) -> Vec<FedApplication> {
        if after >= self.durable_upto {
            return Vec::new();
        }
        self.feed
            .range(after + 1..=self.durable_upto)
            .take(max.max(1))
            .filter_map(|(&sequence, (case_id, trace_id))| {
                let record = self.cases.get(case_id)?;
                Some(FedApplication {
                    sequence,
                    application: record.view.application.clone(),
                    trace_id: trace_id.clone(),
                })
            })
            .collect()
    }

    /// The record of `sequence` is on the bus: the feed may hand it out, and everything durable
    /// after it, and a waiting reader gets it.
    fn mark_durable(&mut self, sequence: u64) {
        if let Some(waiter) = self.durable_waiters.remove(&sequence) {
            let _ = waiter.send(());
        }
        if sequence <= self.durable_upto {
            return;
        }
        self.durable.insert(sequence);
        while self.durable.remove(&(self.durable_upto + 1)) {
            self.durable_upto += 1;
        }
        if let Some((request, waiter)) = self.feed_waiter.take() {
            let batch = self.take(request.after, request.max);
            if batch.is_empty() {
                self.feed_waiter = Some((request, waiter));
            } else if let Err(unsent) = waiter.send(batch) {
                // The reader gave up waiting; it will ask again with the same cursor.
                drop(unsent);
            }
        }
    }

    /// A new case record, with its `submitted` history entry.
    fn new_record(application: Application, terminal_id: &str) -> CaseRecord {
        let case_id = application.case_id.clone();
        let view = CaseView {
            case_id: case_id.clone(),
            status: CaseStatus::Submitted,
            history: vec![HistoryEntry {
                at: application.submitted_at,
                step: HistoryStep::SUBMITTED,
                by: format!("terminal/{terminal_id}"),
                to: "intake".into(),
                message_id: message_ids::submitted(&case_id),
                note: None,
            }],
            application,
            receipt: None,
            collaboration_events: Vec::new(),
            approval: None,
            on_time: None,
            suspension: None,
            warnings: Vec::new(),
            rating: None,
        };
        CaseRecord {
            view,
            seen: HashSet::new(),
            watchers: Vec::new(),
            supplement_sent: None,
            rating_sent: false,
        }
    }

    /// Takes back a case from its snapshot on the state topic.
    fn restore(&mut self, envelope: &Envelope) -> Result<(), HandleError> {
        let state: Option<IntakeCaseState> = self
            .versions
            .newer(envelope)
            .map_err(|e| HandleError::Poison(e.to_string()))?;
        let Some(state) = state else {
            return Ok(());
        };
        let case_id = state.application.case_id.clone();
        self.cases
            .entry(case_id.clone())
            .or_insert_with(|| Self::new_record(state.application, &state.terminal_id));
        self.feed.insert(state.sequence, (case_id, state.trace_id));
        self.mark_durable(state.sequence);
        Ok(())
    }

    /// Publishes a case's snapshot until the bus takes it, then marks it durable.
    fn persist(&mut self, snapshot: Envelope, sequence: u64, ctx: &mut Context<Self>) {
        if !self.catalog.persist_state {
            // Nothing outlives this process on this bus: kept is as durable as it gets.
            self.mark_durable(sequence);
            return;
        }
        let sent = publish(&self.bridge, vec![snapshot.clone()]);
        ctx.spawn(sent.into_actor(self).map(move |sent, intake, ctx| match sent {
            Ok(()) => intake.mark_durable(sequence),
            Err(error) => {
                tracing::warn!(%error, sequence, "submission not yet on the bus; sending it again");
                ctx.run_later(std::time::Duration::from_millis(500), move |intake, ctx| {
                    intake.persist(snapshot, sequence, ctx);
                });
            }
        }));
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
        let view = &mut record.view;
        let (status, note) = match observe_message(view, &mut record.seen, envelope, &city) {
            Ok(observed) => observed,
            Err(error) => {
                record.seen.remove(&envelope.id);
                return Err(HandleError::Poison(error.to_string()));
            }
        };
        match envelope.kind {
            MessageType::CaseResumed => {
                record.supplement_sent = None;
                if view.status == CaseStatus::Suspended {
                    view.status = CaseStatus::Accepted;
                }
            }
            // A suspension stops the case where it stands; it moves on when resumed.
            MessageType::CaseSuspended if view.status < CaseStatus::Decided => {
                view.status = CaseStatus::Suspended;
            }
            // Topics are read independently, so messages of one case may be observed out of
            // order: otherwise the status only ever moves forward.
            _ if view.status == CaseStatus::Suspended && status < CaseStatus::Decided => {}
            _ => view.status = view.status.max(status),
        }
        view.on_time = on_time(view);
        view.history.push(HistoryEntry {
            at: envelope.occurred_at,
            step: envelope.kind.into(),
            by: envelope.source.to_string(),
            to: envelope.target.to_string(),
            message_id: envelope.id.clone(),
            note,
        });
        view.history.sort_by_key(|entry| entry.at);
        if view.status == CaseStatus::Completed {
            for watcher in record.watchers.drain(..) {
                let _ = watcher.send(record.view.clone());
            }
        }
        Ok(())
    }

    /// Publishes one message of the intake system about `case_id`.
    fn publish_one<T: Serialize>(
        &self,
        id: MessageId,
        kind: MessageType,
        case_id: &CaseId,
        target: SystemId,
        trace_id: String,
        data: &T,
    ) -> impl std::future::Future<Output = Result<(), HandleError>> + 'static {
        let envelope = Envelope::new_at(
            EnvelopeHead {
                id,
                kind,
                case_id: case_id.clone(),
                source: SystemId::Intake,
                target,
                trace_id,
            },
            data,
            self.catalog.now(),
        );
        publish(&self.bridge, vec![envelope])
    }

    /// The trace id of a case: that of its feed entry.
    fn trace_id(&self, case_id: &CaseId) -> String {
        self.feed
            .values()
            .find(|(id, _)| id == case_id)
            .map(|(_, trace)| trace.clone())
            .unwrap_or_default()
    }
}

/// What one message says about a case: the status it implies and a note for the history.
/// Updates the view's receipt, events, approval, suspension, warnings and rating.
fn observe_message(
    view: &mut CaseView,
    seen: &mut HashSet<MessageId>,
    envelope: &Envelope,
    city: &str,
) -> Result<(CaseStatus, Option<String>), crate::domain::EnvelopeError> {
    let mut note = None;
    let status = match envelope.kind {
        MessageType::ApplicationPublished => CaseStatus::Published,
        MessageType::ApplicationAccepted => {
            let receipt: Receipt = envelope.data()?;
            note = Some(format!(
                "receipt {}, due {}",
                receipt.receipt_no, receipt.due_date
            ));
            if view.receipt.is_none() {
                view.receipt = Some(receipt);
            }
            CaseStatus::Accepted
        }
        MessageType::CollaborationRequested => {
            // Decoded only for the receipt it repeats, when the acceptance is not read yet.
            if view.receipt.is_none() {
                let request: CollaborationRequest = envelope.data()?;
                if let Some(receipt) = &request.receipt {
                    learn_receipt(view, seen, receipt, city);
                }
            }
            CaseStatus::Collaborating
        }
        MessageType::CollaborationDispatched => {
            let event: CollaborationEvent = envelope.data()?;
            let at_department = matches!(envelope.target, SystemId::Department(_));
            let entry = event_view(view, &event);
            if event.route.len() >= entry.tier_path.len() || entry.progress.0 < event.returns.len()
            {
                entry.tier_path = event.route.iter().map(|h| h.name.clone()).collect();
            }
            let stage = if at_department { 2 } else { 1 };
            if entry.advance((event.returns.len(), stage)) {
                entry.status = if at_department {
                    EventStatus::Dispatched
                } else {
                    EventStatus::Routing
                };
                entry.department = event.department.clone();
                entry.tier = event.tier;
                entry.deadline = Some(event.deadline);
                entry.extensions = event.extensions;
                entry.returns = event.returns.clone();
                entry.escalated_to = None;
            }
            CaseStatus::Collaborating
        }
        MessageType::CollaborationSigned => {
            let signed: EventSigned = envelope.data()?;
            note = Some(format!("signed by {}", signed.signed_by));
            let entry = event_view(view, &signed.event);
            if entry.advance((signed.event.returns.len(), 3)) {
                entry.status = EventStatus::Signed;
            }
            CaseStatus::Collaborating
        }
        MessageType::CollaborationReturned => {
            let returned: EventReturned = envelope.data()?;
            let event = &returned.event;
            if let Some(last) = event.returns.last() {
                note = Some(match envelope.source {
                    SystemId::Department(_) => {
                        format!(
                            "returned by department {}: {}",
                            last.department, last.reason
                        )
                    }
                    _ => format!(
                        "passed up for reassignment (returned by department {}: {})",
                        last.department, last.reason
                    ),
                });
            }
            let entry = event_view(view, event);
            if entry.advance((event.returns.len(), 0)) {
                entry.status = EventStatus::Returned;
                entry.returns = event.returns.clone();
            }
            CaseStatus::Collaborating
        }
        MessageType::CollaborationExtensionRequested => {
            let request: ExtensionRequest = envelope.data()?;
            note = Some(format!(
                "{} asks for {} more working days: {}",
                request.event.department, request.days, request.reason
            ));
            CaseStatus::Collaborating
        }
        MessageType::CollaborationExtensionDecided => {
            let decision: ExtensionDecision = envelope.data()?;
            note = Some(format!(
                "extension {}: {}",
                if decision.approved {
                    "approved"
                } else {
                    "refused"
                },
                decision.reason
            ));
            if decision.approved {
                if let Some(entry) = view
                    .collaboration_events
                    .iter_mut()
                    .find(|e| e.event_id == decision.event_id.as_str())
                {
                    entry.deadline = Some(decision.deadline);
                    entry.extensions = decision.extensions;
                }
            }
            CaseStatus::Collaborating
        }
        MessageType::CollaborationEscalated => {
            let escalation: Escalation = envelope.data()?;
            note = Some(format!(
                "{} did not answer by {}; escalated to {}",
                escalation.department, escalation.deadline, escalation.escalated_to
            ));
            if let Some(entry) = view
                .collaboration_events
                .iter_mut()
                .find(|e| e.event_id == escalation.event_id.as_str())
            {
                entry.escalated_to = Some(escalation.escalated_to);
            }
            CaseStatus::Collaborating
        }
        MessageType::SupervisionWarning => {
            let warning: Warning = envelope.data()?;
            let level = match warning.level {
                WarningLevel::Yellow => "yellow",
                WarningLevel::Red => "red",
            };
            note = Some(match &warning.event_id {
                Some(event) => format!("{level}: event {event} due {}", warning.due_by),
                None => format!("{level}: case due {}", warning.due_by),
            });
            view.warnings.push(warning);
            view.warnings.sort_by_key(|w| w.raised_at);
            CaseStatus::Accepted
        }
        MessageType::CollaborationAnswered => {
            let result: CollaborationResult = envelope.data()?;
            // The last centre of the route sits at the department's tier.
            let tier = result.route.last().map_or(Tier::City, |hop| hop.tier);
            let entry = event_view_by_id(view, result.event_id.as_str(), &result.department, tier);
            entry.progress = (usize::MAX, u8::MAX);
            entry.status = EventStatus::Answered;
            entry.department = result.department.clone();
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
                let approval: Approval = envelope.data()?;
                if let Some(receipt) = &approval.receipt {
                    learn_receipt(view, seen, receipt, city);
                    // The approval's receipt is the latest: it carries every suspension.
                    view.receipt = Some(receipt.clone());
                }
                view.approval = Some(approval);
            }
            if envelope.kind == MessageType::ApprovalDelivered {
                CaseStatus::Completed
            } else {
                CaseStatus::Decided
            }
        }
        MessageType::CaseSuspended => {
            let suspension: Suspension = envelope.data()?;
            note = Some(format!(
                "补正 asked for: {} ({})",
                suspension.materials.join(", "),
                suspension.reason
            ));
            if view.approval.is_none() {
                view.suspension = Some(suspension);
            }
            CaseStatus::Suspended
        }
        MessageType::CaseSupplemented => {
            let supplement: Supplement = envelope.data()?;
            note = Some(format!("supplied: {}", supplement.materials.join(", ")));
            CaseStatus::Accepted
        }
        MessageType::CaseResumed => {
            let resumption: Resumption = envelope.data()?;
            note = Some(format!(
                "clock resumed; due date moved by {} working days to {}",
                resumption.added_working_days, resumption.receipt.due_date
            ));
            if view
                .suspension
                .as_ref()
                .is_some_and(|s| s.sequence == resumption.sequence)
            {
                view.suspension = None;
            }
            if view.approval.is_none() {
                view.receipt = Some(resumption.receipt);
            }
            CaseStatus::Accepted
        }
        // Snapshots go to `IntakeSystem::restore`; the intake system's flow groups never read
        // the state topic.
        MessageType::StateSnapshot => view.status,
        MessageType::CaseRated => {
            let rating: Rating = envelope.data()?;
            note = Some(format!("rated {} / 5", rating.score));
            if view.rating.is_none() {
                view.rating = Some(rating);
            }
            CaseStatus::Completed
        }
    };
    Ok((status, note))
}

/// Whether a decided case met its receipt's deadline.
fn on_time(view: &CaseView) -> Option<bool> {
    let approval = view.approval.as_ref()?;
    let receipt = view.receipt.as_ref()?;
    let decided = approval
        .steps
        .iter()
        .rev()
        .find(|s| s.step == StepKind::Decided)?;
    Some(decided.at < receipt.due_by)
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
    let accepted = message_ids::accepted(&view.case_id);
    if seen.insert(accepted.clone()) {
        view.history.push(HistoryEntry {
            at: receipt.accepted_at,
            step: MessageType::ApplicationAccepted.into(),
            by: format!("department/{}", receipt.department),
            to: SystemId::Governance(city.to_owned()).to_string(),
            message_id: accepted,
            note: Some(format!(
                "receipt {}, due {}",
                receipt.receipt_no, receipt.due_date
            )),
        });
    }
}

/// The view of an event, created on first sight.
fn event_view<'a>(view: &'a mut CaseView, event: &CollaborationEvent) -> &'a mut EventView {
    event_view_by_id(view, event.event_id.as_str(), &event.department, event.tier)
}

/// The view of an event by id, created on first sight.
fn event_view_by_id<'a>(
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
                status: EventStatus::Routing,
                deadline: None,
                extensions: 0,
                returns: Vec::new(),
                escalated_to: None,
                result: None,
                progress: (0, 0),
            });
            view.collaboration_events.len() - 1
        }
    };
    &mut view.collaboration_events[index]
}

impl EventView {
    /// Moves the event's progress to `to` if that is not behind where it stands; says whether
    /// it moved. An answer is final.
    fn advance(&mut self, to: (usize, u8)) -> bool {
        if self.result.is_some() || to < self.progress {
            return false;
        }
        self.progress = to;
        true
    }
}

impl Actor for IntakeSystem {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16_384);
    }
}

impl Handler<Submit> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Submission, SubmitRefused>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) -> Self::Result {
        if !self.ready {
            return Box::pin(fut::ready(Err(SubmitRefused::Starting)));
        }
        let form = msg.form;
        let checked = self
            .catalog
            .matter(&form.matter_code)
            .map(|_| ())
            .and_then(|()| self.catalog.check_region(&form.region));
        if let Err(error) = checked {
            return Box::pin(fut::ready(Err(error.into())));
        }
        let case_id = CaseId::generate();
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let application = Application {
            case_id: case_id.clone(),
            matter_code: form.matter_code,
            applicant: form.applicant,
            region: form.region,
            materials: form.materials,
            form: form.form,
            terminal_id: msg.terminal_id.clone(),
            channel: msg.channel,
            submitted_at: self.catalog.now(),
        };
        let sequence = self.feed.keys().next_back().map_or(1, |last| last + 1);
        let state = IntakeCaseState {
            sequence,
            application: application.clone(),
            trace_id: trace_id.clone(),
            terminal_id: msg.terminal_id.clone(),
        };
        let version = self.versions.next(&case_id);
        let snapshot = super::snapshot_envelope(
            SystemId::Intake,
            &case_id,
            version,
            &state,
            application.submitted_at,
        );
        tracing::info!(%case_id, terminal = %msg.terminal_id, sequence, "application received");
        self.cases.insert(
            case_id.clone(),
            Self::new_record(application, &msg.terminal_id),
        );
        self.feed.insert(sequence, (case_id.clone(), trace_id));
        // Answer once the record is on the bus, or when waiting longer is not worth it.
        let (tx, rx) = oneshot::channel();
        self.durable_waiters.insert(sequence, tx);
        self.persist(snapshot, sequence, ctx);
        let timeout = self.submit_timeout;
        Box::pin(
            async move {
                let durable = matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())));
                Ok(Submission { case_id, durable })
            }
            .into_actor(self),
        )
    }
}

impl Handler<MarkReady> for IntakeSystem {
    type Result = ();

    fn handle(&mut self, _: MarkReady, _: &mut Self::Context) {
        // Every application restored is on the bus. A position missing among them belonged to
        // a submission whose record never reached the bus before the process died (it was
        // never answered as durable): the feed moves past it instead of waiting for it.
        if let Some(&last) = self.feed.keys().next_back() {
            self.durable_upto = self.durable_upto.max(last);
            self.durable.clear();
        }
        self.ready = true;
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

impl Handler<SupplementCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Supplement, CaseActionError>>;

    fn handle(&mut self, msg: SupplementCase, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id;
        let trace_id = self.trace_id(&case_id);
        let now = self.catalog.now();
        let Some(record) = self.cases.get_mut(&case_id) else {
            return Box::pin(fut::ready(Err(CaseActionError::NotFound(format!(
                "no case `{case_id}`"
            )))));
        };
        let suspension = match (&record.view.suspension, record.supplement_sent) {
            (Some(s), Some(sent)) if s.sequence == sent => {
                return Box::pin(fut::ready(Err(CaseActionError::Conflict(format!(
                    "case {case_id}: the supplementary materials were already sent; the department resumes the case"
                )))))
            }
            (Some(s), _) => s.clone(),
            (None, _) => {
                return Box::pin(fut::ready(Err(CaseActionError::Conflict(format!(
                    "case {case_id} is not suspended: no department asked for supplementary materials"
                )))))
            }
        };
        record.supplement_sent = Some(suspension.sequence);
        let supplement = Supplement {
            sequence: suspension.sequence,
            materials: msg.materials,
            terminal_id: msg.terminal_id,
            supplemented_at: now,
        };
        let sent = self.publish_one(
            message_ids::supplemented(&case_id, suspension.sequence),
            MessageType::CaseSupplemented,
            &case_id,
            SystemId::Department(suspension.department.clone()),
            trace_id,
            &supplement,
        );
        Box::pin(
            sent.into_actor(self)
                .map(move |sent, intake, _| match sent {
                    Ok(()) => Ok(supplement),
                    Err(error) => {
                        if let Some(record) = intake.cases.get_mut(&case_id) {
                            record.supplement_sent = None;
                        }
                        Err(CaseActionError::Unavailable(format!(
                            "supplement not published, nothing changed: {error}"
                        )))
                    }
                }),
        )
    }
}

impl Handler<RateCase> for IntakeSystem {
    type Result = ResponseActFuture<Self, Result<Rating, CaseActionError>>;

    fn handle(&mut self, msg: RateCase, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id;
        let trace_id = self.trace_id(&case_id);
        let now = self.catalog.now();
        let Some(record) = self.cases.get_mut(&case_id) else {
            return Box::pin(fut::ready(Err(CaseActionError::NotFound(format!(
                "no case `{case_id}`"
            )))));
        };
        if record.view.rating.is_some() || record.rating_sent {
            return Box::pin(fut::ready(Err(CaseActionError::Conflict(format!(
                "case {case_id} is already rated; a case is rated once"
            )))));
        }
        let department = match (&record.view.approval, record.view.status) {
            (Some(approval), CaseStatus::Completed) => approval.department.clone(),
            _ => {
                return Box::pin(fut::ready(Err(CaseActionError::Conflict(format!(
                    "case {case_id} is not completed yet; only a completed case can be rated"
                )))))
            }
        };
        record.rating_sent = true;
        let rating = Rating {
            department: department.clone(),
            score: msg.score,
            comment: msg.comment,
            terminal_id: msg.terminal_id,
            rated_at: now,
        };
        let sent = self.publish_one(
            message_ids::rated(&case_id),
            MessageType::CaseRated,
            &case_id,
            SystemId::Department(department),
            trace_id,
            &rating,
        );
        Box::pin(sent.into_actor(self).map(move |sent, intake, _| {
            let record = intake.cases.get_mut(&case_id);
            match sent {
                Ok(()) => {
                    if let Some(record) = record {
                        record.view.rating.get_or_insert_with(|| rating.clone());
                    }
                    Ok(rating)
                }
                Err(error) => {
                    if let Some(record) = record {
                        record.rating_sent = false;
                    }
                    Err(CaseActionError::Unavailable(format!(
                        "rating not published, nothing changed: {error}"
                    )))
                }
            }
        }))
    }
}

impl Handler<Inbound> for IntakeSystem {
    type Result = Result<(), HandleError>;

    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        if msg.0.kind == MessageType::StateSnapshot {
            return self.restore(&msg.0);
        }
        self.observe(&msg.0)
    }
}
