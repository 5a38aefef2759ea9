//! The `data` of each message type. Payloads are self-contained where they can be: a
//! collaboration request carries the whole application, and the city centre's
//! `collaboration.completed` carries it back with every answer, so the requesting department
//! needs no memory of the case to finish it.

use super::{
    CaseId, CentreCode, Channel, DepartmentCode, EventId, MatterCode, ReceiptNo, TerminalId, Tier,
};
use super::{FormFields, SealedApplicant};
use crate::crypto::{CryptoError, Keyring};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Who applied. Its `Debug` shows it masked (see [`Applicant::masked`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    description = "Who applied, in clear: shown to the applicant, the terminal that \
    submitted for them and the handling department; masked for every other reader \
    (`500103********1232`, `138****0000`, `张*`)."
)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// District centre code (region code), e.g. `500103`.
    pub district: CentreCode,
    /// Street centre code (region code), e.g. `500103001`.
    pub street: CentreCode,
}

/// An application (办件申请数据) as published on the bus (`application.published`), with the
/// applicant sealed ([`SealedApplicant`]); `Application<Applicant>` is the same application
/// opened, as the views show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    description = "An application (办件申请数据). On the bus and in the intake feed its \
    `applicant` is sealed (`SealedApplicant`); in a case view or an inbox it is open \
    (`Applicant`)."
)]
pub struct Application<A = SealedApplicant> {
    /// Case id issued by the intake system.
    pub case_id: CaseId,
    /// The matter (事项) applied for.
    pub matter_code: MatterCode,
    /// Who applied: sealed on the bus and in every system's state, open in a view.
    pub applicant: A,
    /// Where.
    pub region: Region,
    /// The materials handed in, by name or code.
    pub materials: Vec<String>,
    /// Free-form application form.
    // Kept as the compact JSON text the intake encoded it to: see `FormFields`.
    #[schema(value_type = Value)]
    pub form: FormFields,
    /// The terminal it came from.
    pub terminal_id: TerminalId,
    /// The terminal's channel.
    pub channel: Channel,
    /// When the intake system received it.
    pub submitted_at: DateTime<Utc>,
    /// The applicant's account (the `sub` of their token) when they submitted it themselves;
    /// absent when a terminal (a window, a kiosk) submitted it for them. Their own cases are
    /// those that carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl<A> Application<A> {
    /// The same application with `applicant` in place of its applicant block.
    fn with_applicant<B>(self, applicant: B) -> Application<B> {
        Application {
            case_id: self.case_id,
            matter_code: self.matter_code,
            applicant,
            region: self.region,
            materials: self.materials,
            form: self.form,
            terminal_id: self.terminal_id,
            channel: self.channel,
            submitted_at: self.submitted_at,
            owner: self.owner,
        }
    }
}

impl Application {
    /// The application with its applicant opened, for a view: the one way a system gets the
    /// applicant in clear.
    pub fn opened(&self, keyring: &Keyring) -> Result<Application<Applicant>, CryptoError> {
        let applicant = self.applicant.open(keyring, &self.case_id)?;
        Ok(self.clone().with_applicant(applicant))
    }

    /// Whether the applicant opens with `keyring`: a system that will show it checks when the
    /// application comes in, so that one it could never show is refused at once (and
    /// dead-lettered with the reason) rather than failing a view later.
    pub fn check_sealed(&self, keyring: &Keyring) -> Result<(), CryptoError> {
        self.applicant.open(keyring, &self.case_id).map(drop)
    }
}

impl Application<Applicant> {
    /// The application with its applicant sealed under the keyring's current key, for the bus.
    pub fn sealed(self, keyring: &Keyring) -> Result<Application, CryptoError> {
        let sealed = self.applicant.seal(keyring, &self.case_id)?;
        Ok(self.with_applicant(sealed))
    }
}

/// The acceptance receipt (受理回执), data of `application.accepted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// Receipt number, unique per case.
    pub receipt_no: ReceiptNo,
    /// Accepting department code.
    pub department: DepartmentCode,
    /// The matter accepted.
    pub matter_code: MatterCode,
    /// When the department accepted.
    pub accepted_at: DateTime<Utc>,
    /// Promised handling time in working days (承诺时限).
    pub promised_days: u32,
    /// The last day of the promise (local date): the `promised_days`-th working day after
    /// acceptance, moved by the working days the case spent suspended.
    pub due_date: NaiveDate,
    /// The deadline instant: the end of `due_date` in local time. Decided before it is on time.
    pub due_by: DateTime<Utc>,
    /// Working days the case spent suspended for supplementary materials, already added.
    #[serde(default)]
    pub suspended_working_days: u32,
}

/// A department asked to collaborate, and at which tier the event is handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Collaborator {
    /// Collaborating department code.
    pub department: DepartmentCode,
    /// The tier where that department sits.
    pub tier: Tier,
}

/// Data of `collaboration.requested` (协同请求信号).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollaborationRequest {
    /// Requesting department code.
    pub requester: DepartmentCode,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hop {
    /// Centre code.
    pub code: CentreCode,
    /// Centre name (the region's Chinese name).
    pub name: String,
    /// Centre tier.
    pub tier: Tier,
}

/// Data of `collaboration.dispatched` (协同事件): one piece of help routed to one department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollaborationEvent {
    /// Event id, unique per (case, collaborating department).
    pub event_id: EventId,
    /// The case.
    pub case_id: CaseId,
    /// Requesting department code.
    pub requester: DepartmentCode,
    /// Collaborating department code.
    pub department: DepartmentCode,
    /// Tier at which the collaborating department handles it.
    pub tier: Tier,
    /// The case's region.
    pub region: Region,
    /// The matter.
    pub matter_code: MatterCode,
    /// The materials handed in, for the collaborator's review.
    pub materials: Vec<String>,
    /// The centres the event passed, top first.
    pub route: Vec<Hop>,
    /// When it was dispatched to its current department.
    pub dispatched_at: DateTime<Utc>,
    /// When its current department must have answered by.
    pub deadline: DateTime<Utc>,
    /// Extensions granted so far.
    #[serde(default)]
    pub extensions: u32,
    /// Departments that returned it (退单), oldest first.
    #[serde(default)]
    pub returns: Vec<EventReturn>,
}

impl CollaborationEvent {
    /// The event and how often it was re-routed: `E1` at first, `E1/r1` after one return.
    /// Message ids of the event's hops start with it, so that a re-routed event's messages
    /// are new messages.
    pub fn attempt_key(&self) -> String {
        super::message_ids::attempt_key(&self.event_id, self.returns.len())
    }
}

/// One return of an event (退单).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventReturn {
    /// The department that returned it.
    pub department: DepartmentCode,
    /// Why it is not theirs.
    pub reason: String,
    /// When.
    pub returned_at: DateTime<Utc>,
}

/// A collaborating department's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CollaborationOutcome {
    /// No objection: the approval may go ahead.
    Agree,
    /// Objection: the approval must be rejected.
    Disagree,
}

/// Data of `collaboration.answered` (协同处置结果).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollaborationResult {
    /// The event answered.
    pub event_id: EventId,
    /// The case.
    pub case_id: CaseId,
    /// The answering department.
    pub department: DepartmentCode,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CollaborationCompleted {
    /// Requesting department code.
    pub requester: DepartmentCode,
    /// The application, echoed from the request.
    pub application: Application,
    /// One answer per collaborating department, in the order requested.
    pub results: Vec<CollaborationResult>,
}

/// Approved or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// 准予.
    Approved,
    /// 不予.
    Rejected,
}

/// The result data (结果数据) of an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    /// Approved or rejected.
    pub decision: Decision,
    /// Why: missing materials, a collaborator's objection, the officer's opinion.
    pub reasons: Vec<String>,
}

/// One process step (过程数据) of an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalStep {
    /// What happened, e.g. `accepted`, `materials_checked`, `collaboration_completed`, `decided`.
    pub step: super::StepKind,
    /// Who did it (a system id or an officer).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Details.
    pub note: String,
}

/// Data of `approval.published` and `approval.delivered` (审批数据).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// Deciding department code.
    pub department: DepartmentCode,
    /// The matter.
    pub matter_code: MatterCode,
    /// The receipt number issued at acceptance.
    pub receipt_no: ReceiptNo,
    /// The receipt itself, repeated so the approval is self-contained: topics are read
    /// independently, and a reader may see the approval before the acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Process data.
    pub steps: Vec<ApprovalStep>,
    /// Result data.
    pub outcome: Outcome,
}

/// Data of `case.suspended`: the department asks the applicant for supplementary materials
/// (补正) and the case's clock stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Suspension {
    /// The department.
    pub department: DepartmentCode,
    /// Which suspension of the case this is (1, 2, …).
    pub sequence: u32,
    /// Materials the applicant must supply.
    pub materials: Vec<String>,
    /// Why.
    pub reason: String,
    /// When the clock stopped.
    pub suspended_at: DateTime<Utc>,
}

/// Data of `case.supplemented`: the applicant supplied materials through a terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Supplement {
    /// The suspension answered.
    pub sequence: u32,
    /// The materials supplied.
    pub materials: Vec<String>,
    /// The terminal used.
    pub terminal_id: TerminalId,
    /// When.
    pub supplemented_at: DateTime<Utc>,
}

/// Data of `case.resumed`: the clock runs again and the due date has moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resumption {
    /// The suspension ended.
    pub sequence: u32,
    /// The receipt with its moved due date.
    pub receipt: Receipt,
    /// Working days this suspension added.
    pub added_working_days: u32,
    /// When the clock stopped.
    pub suspended_at: DateTime<Utc>,
    /// When it resumed.
    pub resumed_at: DateTime<Utc>,
}

/// Data of `case.rated` (好差评): the applicant's rating of a completed case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rating {
    /// The department that decided the case.
    pub department: DepartmentCode,
    /// 1 (very poor) to 5 (very good).
    pub score: u8,
    /// Optional comment.
    pub comment: String,
    /// The terminal used.
    pub terminal_id: TerminalId,
    /// When.
    pub rated_at: DateTime<Utc>,
}

/// Data of `collaboration.signed` (签收): the department took the event on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventSigned {
    /// The event.
    pub event: CollaborationEvent,
    /// The officer or system that signed.
    pub signed_by: String,
    /// When.
    pub signed_at: DateTime<Utc>,
}

/// Data of `collaboration.returned` (退单): the event as it stood, with the new return
/// appended to its `returns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventReturned {
    /// The event; its last `returns` entry is this return.
    pub event: CollaborationEvent,
}

/// Data of `collaboration.extension_requested` (延期申请).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtensionRequest {
    /// The event as the department holds it.
    pub event: CollaborationEvent,
    /// Working days asked for.
    pub days: u32,
    /// Why.
    pub reason: String,
    /// When.
    pub requested_at: DateTime<Utc>,
}

/// Data of `collaboration.extension_decided`: the dispatching centre's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtensionDecision {
    /// The event.
    pub event_id: super::EventId,
    /// The department that asked.
    pub department: DepartmentCode,
    /// Approved or refused.
    pub approved: bool,
    /// Working days asked for.
    pub days: u32,
    /// The event's deadline after the decision (unchanged when refused).
    pub deadline: DateTime<Utc>,
    /// Extensions granted so far, this one included.
    pub extensions: u32,
    /// Why, when refused; the rule applied, when approved.
    pub reason: String,
    /// The centre that decided.
    pub decided_by: String,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// How urgent a deadline warning is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WarningLevel {
    /// 黄牌: most of the time is used.
    Yellow,
    /// 红牌: overdue.
    Red,
}

impl std::fmt::Display for WarningLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WarningLevel::Yellow => "yellow",
            WarningLevel::Red => "red",
        })
    }
}

/// Data of `supervision.warning` (预警): a case or an event is late or nearly so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Warning {
    /// Yellow or red.
    pub level: WarningLevel,
    /// The event warned about; none for the case itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<super::EventId>,
    /// The department that must act.
    pub department: DepartmentCode,
    /// The deadline.
    pub due_by: DateTime<Utc>,
    /// Share of the working hours allowed that was used when the warning was raised (1.0 = all).
    pub share_used: f64,
    /// When.
    pub raised_at: DateTime<Utc>,
}

/// Data of `collaboration.escalated` (督办): an event unanswered at its deadline, reported to
/// the centre one tier above the one that dispatched it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Escalation {
    /// The event.
    pub event_id: super::EventId,
    /// The department that has not answered.
    pub department: DepartmentCode,
    /// The centre that dispatched it to the department.
    pub dispatched_by: CentreCode,
    /// The centre it is escalated to.
    pub escalated_to: CentreCode,
    /// The deadline missed.
    pub deadline: DateTime<Utc>,
    /// When.
    pub escalated_at: DateTime<Utc>,
}
