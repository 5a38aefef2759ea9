//! How each bus message updates the case the applicant sees.
//!
//! The intake system's consumer group reads every flow topic, so it hears of every step of the
//! cases it issued. [`IntakeSystem::observe`] keeps one history entry per message id and moves
//! the status; one function per message type says what that message changes in the view.
//! Topics are read independently: a function must give the same view whatever order the
//! messages of a case come in, so a field set by a later step is never overwritten by an
//! earlier one.

use super::resident::is_closed;
use super::view::{CaseView, HistoryEntry};
use super::{CaseRecord, IntakeSystem};
use crate::domain::{
    message_ids, Approval, CaseStatus, CentreCode, CollaborationRequest, Envelope, EnvelopeError,
    MessageType, Party, Rating, Receipt, Resumption, Supplement, Suspension, SystemId, Warning,
};
use crate::port::HandleError;
use events::{
    answered, dispatched, escalated, extension_decided, extension_requested, returned, signed,
};
use serde::de::DeserializeOwned;
use std::sync::Arc;

mod events;

/// What one message says about its case: the status it implies and a note for the history.
#[derive(Debug)]
pub(super) struct Observed {
    /// The status the message implies; [`CaseRecord::move_status`] decides whether the case
    /// takes it.
    status: CaseStatus,
    /// What the message said, for its history entry.
    note: Option<String>,
}

impl Observed {
    /// A message that implies `status` and has nothing more to say.
    fn status(status: CaseStatus) -> Self {
        Observed { status, note: None }
    }

    /// A message that implies `status`, with a note for the history.
    fn noted(status: CaseStatus, note: String) -> Self {
        Observed {
            status,
            note: Some(note),
        }
    }
}

impl IntakeSystem {
    /// Records what a bus message says about its case; a message id already seen changes
    /// nothing.
    pub(super) fn observe(&mut self, envelope: &Arc<Envelope>) -> Result<(), HandleError> {
        let Some(record) = self.cases.get_mut(&envelope.case_id) else {
            tracing::debug!(
                case_id = %envelope.case_id, message_id = %envelope.id,
                r#type = envelope.kind.as_str(), system = "intake", trace_id = %envelope.trace_id,
                "message for a case this intake system did not issue"
            );
            // Addressed to this system, which alone can refuse it when unreadable.
            if envelope.target == SystemId::Intake {
                envelope
                    .check_data()
                    .map_err(|error| HandleError::Poison(error.to_string()))?;
            }
            return Ok(());
        };
        if !record.seen.insert(envelope.id.clone()) {
            crate::monitoring::record::repeated("intake".to_owned(), envelope.kind);
            return Ok(());
        }
        let observed = match observe_message(record, envelope, &self.catalog.city) {
            Ok(observed) => observed,
            Err(error) => {
                // Not recorded: a repeat of the message must be read again.
                record.seen.remove(&envelope.id);
                return Err(HandleError::Poison(error.to_string()));
            }
        };
        let was_closed = is_closed(record.view.status);
        record.move_status(envelope.kind, observed.status);
        let closing = (!was_closed && is_closed(record.view.status)).then_some(record.sequence);
        if closing.is_some() && self.ready {
            // Counted as it happens, not again when a restarted process reads it back.
            let elapsed = self.catalog.now() - record.view.application.submitted_at;
            closed(&record.view, elapsed.to_std().unwrap_or_default());
        }
        self.trails.observed(envelope, record.view.status);
        let view = &mut record.view;
        view.on_time = view.decided_on_time();
        // A case's history is kept for as long as the case is open: grown one entry at a time,
        // it holds no spare room.
        view.history.reserve_exact(1);
        view.history.push(HistoryEntry {
            at: envelope.occurred_at,
            step: envelope.kind.into(),
            by: Party::from(&envelope.source),
            officer: envelope.acted_by.clone().map(Box::new),
            to: Party::from(&envelope.target),
            message_id: envelope.id.clone(),
            note: observed.note,
        });
        view.history.sort_by_key(|entry| entry.at);
        if view.status == CaseStatus::Completed {
            for watcher in record.watchers.drain(..) {
                // A watcher that stopped waiting has nothing left to hear.
                let _ = watcher.send(record.view.clone());
            }
        }
        self.changed_soon(&envelope.case_id);
        if let Some(sequence) = closing {
            let marker = sequence.and_then(|s| self.closed_marker(&envelope.case_id, s));
            self.closed_markers.extend(marker);
            self.closed(&envelope.case_id);
        }
        Ok(())
    }
}

/// Counts a case that just closed: completed with its decision and its time since
/// submission, or failed.
fn closed(view: &super::view::CaseView, elapsed: std::time::Duration) {
    match (&view.status, &view.approval) {
        (CaseStatus::Completed, Some(approval)) => {
            crate::monitoring::record::case_completed(approval.outcome.decision, elapsed);
        }
        (CaseStatus::Failed, _) => crate::monitoring::record::case_failed(),
        // `approval.delivered`, which completes a case, carries its approval: a completed
        // case always has one.
        _ => {}
    }
}

impl CaseRecord {
    /// Moves the case to the `status` a message of type `kind` implies, where it should go.
    fn move_status(&mut self, kind: MessageType, status: CaseStatus) {
        let view = &mut self.view;
        match kind {
            MessageType::CaseResumed => {
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
    }
}

/// What one message says about a case, by its type. Updates the view's receipt, events,
/// approval, suspension, warnings and rating. The payload is decoded here, except where only
/// some cases need it.
fn observe_message(
    record: &mut CaseRecord,
    envelope: &Envelope,
    city: &CentreCode,
) -> Result<Observed, EnvelopeError> {
    let view = &mut record.view;
    Ok(match envelope.kind {
        MessageType::ApplicationPublished => Observed::status(CaseStatus::Published),
        MessageType::ApplicationAccepted => accepted(view, envelope.data()?),
        MessageType::CollaborationRequested => {
            // Decoded only for the receipt it repeats, when the acceptance is not read yet.
            let request = decode_if(record.view.receipt.is_none(), envelope)?;
            collaboration_requested(record, request, city)
        }
        MessageType::CollaborationDispatched => {
            dispatched(view, envelope.data()?, &envelope.target)
        }
        MessageType::CollaborationSigned => signed(view, envelope.data()?),
        MessageType::CollaborationReturned => returned(view, envelope.data()?, &envelope.source),
        MessageType::CollaborationExtensionRequested => extension_requested(envelope.data()?),
        MessageType::CollaborationExtensionDecided => extension_decided(view, envelope.data()?),
        MessageType::CollaborationEscalated => escalated(view, envelope.data()?),
        MessageType::SupervisionWarning => warning(view, envelope.data()?),
        MessageType::CollaborationAnswered => answered(view, envelope.data()?),
        MessageType::CollaborationCompleted => Observed::status(CaseStatus::Collaborating),
        MessageType::ApprovalPublished | MessageType::ApprovalDelivered => {
            // `approval.delivered` repeats `approval.published`: decode whichever comes first.
            let decided = decode_if(record.view.approval.is_none(), envelope)?;
            if decided.is_none() && envelope.kind == MessageType::ApprovalDelivered {
                // Addressed to this system, which alone can refuse it when unreadable.
                envelope.check_data()?;
            }
            approval(record, decided, envelope.kind, city)
        }
        MessageType::CaseSuspended => suspended(view, envelope.data()?),
        MessageType::CaseSupplemented => supplemented(envelope.data()?),
        MessageType::CaseResumed => resumed(view, envelope.data()?),
        // Snapshots go to `IntakeSystem::restore`; the intake system's flow groups never read
        // the state topic.
        MessageType::StateSnapshot => Observed::status(view.status),
        MessageType::CaseRated => rated(view, envelope.data()?),
    })
}

/// `application.accepted`: the receipt, unless a later message already told it.
fn accepted(view: &mut CaseView, receipt: Receipt) -> Observed {
    let note = receipt_note(&receipt);
    if view.receipt.is_none() {
        view.receipt = Some(receipt);
    }
    Observed::noted(CaseStatus::Accepted, note)
}

/// `collaboration.requested`: the case waits for collaborators. The request, when decoded,
/// may repeat the receipt.
fn collaboration_requested(
    record: &mut CaseRecord,
    request: Option<CollaborationRequest>,
    city: &CentreCode,
) -> Observed {
    if let Some(receipt) = request.and_then(|request| request.receipt) {
        record.learn_receipt(&receipt, city);
    }
    Observed::status(CaseStatus::Collaborating)
}

/// `supervision.warning`: a case or one of its events is nearly due or overdue.
fn warning(view: &mut CaseView, warning: Warning) -> Observed {
    let level = warning.level;
    let note = match &warning.event_id {
        Some(event) => format!("{level}: event {event} due {}", warning.due_by),
        None => format!("{level}: case due {}", warning.due_by),
    };
    view.warnings.push(warning);
    view.warnings.sort_by_key(|w| w.raised_at);
    Observed::noted(CaseStatus::Accepted, note)
}

/// `approval.published` or `approval.delivered` (`kind`): the decision, when not known yet;
/// delivered completes the case.
fn approval(
    record: &mut CaseRecord,
    decided: Option<Approval>,
    kind: MessageType,
    city: &CentreCode,
) -> Observed {
    if let Some(approval) = decided {
        if let Some(receipt) = &approval.receipt {
            record.learn_receipt(receipt, city);
            // The approval's receipt is the latest: it carries every suspension.
            record.view.receipt = Some(receipt.clone());
        }
        record.view.approval = Some(Box::new(approval));
    }
    Observed::status(if kind == MessageType::ApprovalDelivered {
        CaseStatus::Completed
    } else {
        CaseStatus::Decided
    })
}

/// `case.suspended`: the department asks for supplementary materials (补正).
fn suspended(view: &mut CaseView, suspension: Suspension) -> Observed {
    let note = format!(
        "补正 asked for: {} ({})",
        suspension.materials.join(", "),
        suspension.reason
    );
    if view.approval.is_none() {
        view.suspension = Some(Box::new(suspension));
    }
    Observed::noted(CaseStatus::Suspended, note)
}

/// `case.supplemented`: the applicant supplied them; history only until the case resumes.
fn supplemented(supplement: Supplement) -> Observed {
    Observed::noted(
        CaseStatus::Accepted,
        format!("supplied: {}", supplement.materials.join(", ")),
    )
}

/// `case.resumed`: the suspension it answers is over and the receipt's due date moves.
fn resumed(view: &mut CaseView, resumption: Resumption) -> Observed {
    let note = format!(
        "clock resumed; due date moved by {} working days to {}",
        resumption.added_working_days, resumption.receipt.due_date
    );
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
    Observed::noted(CaseStatus::Accepted, note)
}

/// `case.rated`: the applicant's rating.
fn rated(view: &mut CaseView, rating: Rating) -> Observed {
    let note = format!("rated {} / 5", rating.score);
    if view.rating.is_none() {
        view.rating = Some(Box::new(rating));
    }
    Observed::noted(CaseStatus::Completed, note)
}

impl CaseRecord {
    /// Records a receipt learnt from a later message (a collaboration request or an approval
    /// repeats it) when the acceptance itself has not been read yet — topics are read
    /// independently. The history entry gets the acceptance's own message id, so the real
    /// record is a repeat when it comes.
    fn learn_receipt(&mut self, receipt: &Receipt, city: &CentreCode) {
        let view = &mut self.view;
        if view.receipt.is_some() {
            return;
        }
        view.receipt = Some(receipt.clone());
        let accepted = message_ids::accepted(&view.case_id);
        if self.seen.insert(accepted.clone()) {
            view.history.reserve_exact(1);
            view.history.push(HistoryEntry {
                at: receipt.accepted_at,
                step: MessageType::ApplicationAccepted.into(),
                by: Party::from(&SystemId::Department(receipt.department.clone())),
                officer: None,
                to: Party::from(&SystemId::Governance(city.clone())),
                message_id: accepted,
                note: Some(receipt_note(receipt)),
            });
        }
    }
}

/// The message's payload, decoded only when `needed`: a payload that is not needed cannot
/// fail the message.
fn decode_if<T: DeserializeOwned>(
    needed: bool,
    envelope: &Envelope,
) -> Result<Option<T>, EnvelopeError> {
    needed.then(|| envelope.data()).transpose()
}

/// The history note of an acceptance.
fn receipt_note(receipt: &Receipt) -> String {
    format!("receipt {}, due {}", receipt.receipt_no, receipt.due_date)
}
