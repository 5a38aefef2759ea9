//! The `data` of each message type. Payloads are self-contained where they can be: a
//! collaboration request carries the whole application, and the city centre's
//! `collaboration.completed` carries it back with every answer, so the requesting department
//! needs no memory of the case to finish it.

use super::{CaseId, Channel, EventId, Tier};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    /// Person's or company's name.
    pub name: String,
    /// Resident id or unified social credit code.
    pub id_number: String,
    /// Contact phone.
    pub phone: String,
}

/// Where the case is: the district and street codes of the governance tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// District centre code (region code), e.g. `500103`.
    pub district: String,
    /// Street centre code (region code), e.g. `500103001`.
    pub street: String,
}

/// An application (办件申请数据) as published on the bus (`application.published`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// Case id issued by the intake system.
    pub case_id: CaseId,
    /// The matter (事项) applied for.
    pub matter_code: String,
    /// Who applied.
    pub applicant: Applicant,
    /// Where.
    pub region: Region,
    /// The materials handed in, by name or code.
    pub materials: Vec<String>,
    /// Free-form application form.
    pub form: serde_json::Value,
    /// The terminal it came from.
    pub terminal_id: String,
    /// The terminal's channel.
    pub channel: Channel,
    /// When the intake system received it.
    pub submitted_at: DateTime<Utc>,
}

/// The acceptance receipt (受理回执), data of `application.accepted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// Receipt number, unique per case.
    pub receipt_no: String,
    /// Accepting department code.
    pub department: String,
    /// The matter accepted.
    pub matter_code: String,
    /// When the department accepted.
    pub accepted_at: DateTime<Utc>,
    /// Promised handling time in days (承诺时限).
    pub promised_days: u32,
    /// The promised deadline: `accepted_at` plus `promised_days` calendar days.
    pub due_by: DateTime<Utc>,
}

/// A department asked to collaborate, and at which tier the event is handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collaborator {
    /// Collaborating department code.
    pub department: String,
    /// The tier where that department sits.
    pub tier: Tier,
}

/// Data of `collaboration.requested` (协同请求信号).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollaborationRequest {
    /// Requesting department code.
    pub requester: String,
    /// The application, so the centre can route by region without asking anyone.
    pub application: Application,
    /// Who must help.
    pub collaborators: Vec<Collaborator>,
    /// The receipt issued at acceptance, repeated so that a reader who sees the request before
    /// the acceptance (topics are read independently) still has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// One centre an event passed through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// Centre code.
    pub code: String,
    /// Centre name (the region's Chinese name).
    pub name: String,
    /// Centre tier.
    pub tier: Tier,
}

/// Data of `collaboration.dispatched` (协同事件): one piece of help routed to one department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollaborationEvent {
    /// Event id, unique per (case, collaborating department).
    pub event_id: EventId,
    /// The case.
    pub case_id: CaseId,
    /// Requesting department code.
    pub requester: String,
    /// Collaborating department code.
    pub department: String,
    /// Tier at which the collaborating department handles it.
    pub tier: Tier,
    /// The case's region.
    pub region: Region,
    /// The matter.
    pub matter_code: String,
    /// The materials handed in, for the collaborator's review.
    pub materials: Vec<String>,
    /// The centres the event passed, top first.
    pub route: Vec<Hop>,
}

/// A collaborating department's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollaborationOutcome {
    /// No objection: the approval may go ahead.
    Agree,
    /// Objection: the approval must be rejected.
    Disagree,
}

/// Data of `collaboration.answered` (协同处置结果).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollaborationResult {
    /// The event answered.
    pub event_id: EventId,
    /// The case.
    pub case_id: CaseId,
    /// The answering department.
    pub department: String,
    /// Agree or disagree.
    pub outcome: CollaborationOutcome,
    /// The department's opinion, shown to the requester and the applicant.
    pub opinion: String,
    /// The centres the event passed on the way down.
    pub route: Vec<Hop>,
    /// When the department answered.
    pub answered_at: DateTime<Utc>,
}

/// Data of `collaboration.completed`: every answer, fed back to the requesting department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollaborationCompleted {
    /// Requesting department code.
    pub requester: String,
    /// The application, echoed from the request.
    pub application: Application,
    /// One answer per collaborating department, in the order requested.
    pub results: Vec<CollaborationResult>,
}

/// Approved or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// 准予.
    Approved,
    /// 不予.
    Rejected,
}

/// The result data (结果数据) of an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Approved or rejected.
    pub decision: Decision,
    /// Why: missing materials, a collaborator's objection, the officer's opinion.
    pub reasons: Vec<String>,
}

/// One process step (过程数据) of an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalStep {
    /// What happened, e.g. `accepted`, `materials_checked`, `collaboration_completed`, `decided`.
    pub step: String,
    /// Who did it (a system id or an officer).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Details.
    pub note: String,
}

/// Data of `approval.published` and `approval.delivered` (审批数据).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Deciding department code.
    pub department: String,
    /// The matter.
    pub matter_code: String,
    /// The receipt number issued at acceptance.
    pub receipt_no: String,
    /// The receipt itself, repeated so the approval is self-contained: topics are read
    /// independently, and a reader may see the approval before the acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Process data.
    pub steps: Vec<ApprovalStep>,
    /// Result data.
    pub outcome: Outcome,
}
