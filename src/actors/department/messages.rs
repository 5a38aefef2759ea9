//! What staff send a department (through the HTTP API), what they get back, and why the
//! department may refuse. An act that is not refused is never undone: it answers
//! [`Acted`], saying whether its message was on the bus yet.

use crate::actors::acts::Acted;
use crate::crypto::CryptoError;
use crate::domain::{
    Applicant, Application, Approval, CaseId, CollaborationEvent, CollaborationOutcome,
    CollaborationResult, Decision, DepartmentCode, EventId, EventReturned, EventSigned,
    ExtensionRequest, InboxStage, Officer, Receipt, Suspension,
};
use actix::prelude::*;
use serde::Serialize;

/// Staff decide a case waiting in a manual department's inbox.
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<Approval>, StaffError>")]
pub struct Decide {
    /// The case.
    pub case_id: CaseId,
    /// Approve or reject.
    pub decision: Decision,
    /// The officer's opinion; becomes the outcome's reason.
    pub opinion: String,
    /// The officer acting.
    pub officer: Officer,
}

/// Staff ask the applicant for supplementary materials (补正); the case's clock stops.
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<Suspension>, StaffError>")]
pub struct RequestSupplement {
    /// The case.
    pub case_id: CaseId,
    /// Materials the applicant must supply.
    pub materials: Vec<String>,
    /// Why.
    pub reason: String,
    /// The officer acting.
    pub officer: Officer,
}

/// Staff answer a collaboration event waiting in a manual department's inbox.
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<CollaborationResult>, StaffError>")]
pub struct AnswerCollaboration {
    /// The event.
    pub event_id: EventId,
    /// Agree or disagree.
    pub outcome: CollaborationOutcome,
    /// The department's opinion.
    pub opinion: String,
    /// The officer acting.
    pub officer: Officer,
}

/// Staff sign for a collaboration event (签收): it is theirs and they are on it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<EventSigned>, StaffError>")]
pub struct SignEvent {
    /// The event.
    pub event_id: EventId,
    /// The officer acting.
    pub officer: Officer,
}

/// Staff return an event that is not theirs (退单).
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<EventReturned>, StaffError>")]
pub struct ReturnEvent {
    /// The event.
    pub event_id: EventId,
    /// Why it is not theirs.
    pub reason: String,
    /// The officer acting.
    pub officer: Officer,
}

/// Staff ask the dispatching centre for more time on an event (延期申请).
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<ExtensionRequest>, StaffError>")]
pub struct RequestExtension {
    /// The event.
    pub event_id: EventId,
    /// Working days asked for.
    pub days: u32,
    /// Why.
    pub reason: String,
    /// The officer acting.
    pub officer: Officer,
}

/// What waits for staff, with each case's applicant opened; `Err` if one cannot be (never for
/// a case the department took in: each was checked to open when it came, and the keys do not
/// change while the process runs).
#[derive(Message)]
#[rtype(result = "Result<Inbox, CryptoError>")]
pub struct GetInbox;

/// A department's inbox: cases to decide and collaboration events to answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inbox {
    /// Department code.
    pub department: DepartmentCode,
    /// Cases waiting for a decision, and cases suspended for supplementary materials.
    pub cases: Vec<InboxCase>,
    /// Collaboration events waiting for an answer.
    pub collaborations: Vec<InboxEvent>,
}

/// A case waiting for staff.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxCase {
    /// `awaiting_decision` or `suspended`.
    pub stage: InboxStage,
    /// The application, its applicant opened for the department's staff.
    pub application: Application<Applicant>,
    /// The receipt issued, with the current due date.
    pub receipt: Receipt,
    /// Required materials the application lacks.
    pub missing_materials: Vec<String>,
    /// The collaborators' answers, if the matter needed any.
    pub collaboration_results: Vec<CollaborationResult>,
}

/// A collaboration event waiting for staff.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxEvent {
    /// The event, with its current deadline.
    #[serde(flatten)]
    pub event: CollaborationEvent,
    /// Whether staff signed for it.
    pub signed: bool,
    /// Whether an extension request is waiting for the centre's decision.
    pub extension_pending: bool,
}

/// Why staff's request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StaffError {
    /// No such case or event at this department.
    #[error("{0}")]
    NotFound(String),
    /// The case or event is not in a state that allows this (already decided, returned, …).
    #[error("{0}")]
    Conflict(String),
}
