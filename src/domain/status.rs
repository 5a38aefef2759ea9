//! Where things stand: the statuses of cases and events and the names of steps, as enums that
//! serialise to the strings of the wire contract and the HTTP API.

use super::MessageType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The life of a case as the intake system shows it to the applicant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Received by the intake system, not yet taken by a governance centre.
    Submitted,
    /// Published on the bus to the responsible department.
    Published,
    /// The department accepted it and issued a receipt.
    Accepted,
    /// The department asked for supplementary materials (补正); the clock is stopped.
    Suspended,
    /// Waiting for other departments' collaboration.
    Collaborating,
    /// The department published its approval.
    Decided,
    /// The approval reached the intake system: the applicant sees the outcome.
    Completed,
    /// The bus refused the case's record for good (e.g. too large): it goes no further; the
    /// case's `failure` says why. Last, so that no later message moves it back.
    Failed,
}

impl CaseStatus {
    /// Every status, in the order a case moves through them.
    pub const ALL: [CaseStatus; 8] = [
        CaseStatus::Submitted,
        CaseStatus::Published,
        CaseStatus::Accepted,
        CaseStatus::Suspended,
        CaseStatus::Collaborating,
        CaseStatus::Decided,
        CaseStatus::Completed,
        CaseStatus::Failed,
    ];

    /// The status's name in JSON and in the case repository.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Submitted => "submitted",
            CaseStatus::Published => "published",
            CaseStatus::Accepted => "accepted",
            CaseStatus::Suspended => "suspended",
            CaseStatus::Collaborating => "collaborating",
            CaseStatus::Decided => "decided",
            CaseStatus::Completed => "completed",
            CaseStatus::Failed => "failed",
        }
    }
}

/// Where a collaboration event stands, as the applicant sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// On its way down the tiers.
    Routing,
    /// At the collaborating department.
    Dispatched,
    /// The department signed for it (签收) and is on it.
    Signed,
    /// The department returned it (退单): being re-routed, or waiting for a centre to reassign it.
    Returned,
    /// The department answered.
    Answered,
}

/// Where a case waiting for staff stands in a manual department's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboxStage {
    /// Staff must decide it.
    AwaitingDecision,
    /// Waiting for the applicant's supplementary materials.
    Suspended,
}

/// A process step (过程数据) of an approval. Outside departments may name steps of their own,
/// so an unknown name is kept as it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum StepKind {
    /// The department accepted the case.
    Accepted,
    /// It checked the materials against the matter's list.
    MaterialsChecked,
    /// It asked for collaboration.
    CollaborationRequested,
    /// Every collaborator answered.
    CollaborationCompleted,
    /// It asked the applicant for supplementary materials.
    Suspended,
    /// The applicant supplied them; the clock runs again.
    Resumed,
    /// It decided.
    Decided,
    /// A step named by an outside department.
    Other(String),
}

impl StepKind {
    /// The step's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            StepKind::Accepted => "accepted",
            StepKind::MaterialsChecked => "materials_checked",
            StepKind::CollaborationRequested => "collaboration_requested",
            StepKind::CollaborationCompleted => "collaboration_completed",
            StepKind::Suspended => "suspended",
            StepKind::Resumed => "resumed",
            StepKind::Decided => "decided",
            StepKind::Other(name) => name,
        }
    }
}

/// On the wire a step is its name, one of the known ones or an outside department's own, so
/// its schema is a string (the derive would describe the enum, not what `from`/`into` make).
impl utoipa::PartialSchema for StepKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A process step: accepted, materials_checked, collaboration_requested, \
                 collaboration_completed, suspended, resumed, decided, or a step named by an \
                 outside department.",
            ))
            .examples(["materials_checked"])
            .into()
    }
}

impl utoipa::ToSchema for StepKind {}

impl From<String> for StepKind {
    fn from(name: String) -> Self {
        match name.as_str() {
            "accepted" => StepKind::Accepted,
            "materials_checked" => StepKind::MaterialsChecked,
            "collaboration_requested" => StepKind::CollaborationRequested,
            "collaboration_completed" => StepKind::CollaborationCompleted,
            "suspended" => StepKind::Suspended,
            "resumed" => StepKind::Resumed,
            "decided" => StepKind::Decided,
            _ => StepKind::Other(name),
        }
    }
}

impl From<StepKind> for String {
    fn from(step: StepKind) -> Self {
        match step {
            StepKind::Other(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of a case's history, as the applicant sees it: the submission, or a bus message by
/// its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum HistoryStep {
    /// The message that made the step.
    Message(MessageType),
    /// The intake system took the application (`submitted`).
    Submitted(Submitted),
}

/// The name of the first step of every case's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Submitted {
    /// `submitted`.
    Submitted,
}

impl HistoryStep {
    /// The first step of every case.
    pub const SUBMITTED: HistoryStep = HistoryStep::Submitted(Submitted::Submitted);

    /// The step's name in the history.
    pub fn as_str(&self) -> &'static str {
        match self {
            HistoryStep::Message(kind) => kind.as_str(),
            HistoryStep::Submitted(_) => "submitted",
        }
    }
}

impl From<MessageType> for HistoryStep {
    fn from(kind: MessageType) -> Self {
        HistoryStep::Message(kind)
    }
}

impl fmt::Display for HistoryStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_steps_keep_their_wire_names() {
        let json = serde_json::to_value((
            CaseStatus::Collaborating,
            EventStatus::Returned,
            InboxStage::AwaitingDecision,
            StepKind::MaterialsChecked,
            HistoryStep::SUBMITTED,
            HistoryStep::from(MessageType::ApprovalDelivered),
        ))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                "collaborating",
                "returned",
                "awaiting_decision",
                "materials_checked",
                "submitted",
                "approval.delivered"
            ])
        );
    }

    #[test]
    fn a_case_status_is_named_as_it_serialises() {
        for status in CaseStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                status.as_str(),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_step_named_by_an_outside_department_round_trips() {
        let step: StepKind = serde_json::from_str("\"site_visit\"").unwrap();
        assert_eq!(step, StepKind::Other("site_visit".into()));
        assert_eq!(serde_json::to_string(&step).unwrap(), "\"site_visit\"");
        let known: StepKind = serde_json::from_str("\"decided\"").unwrap();
        assert_eq!(known, StepKind::Decided);
        let history: HistoryStep = serde_json::from_str("\"case.rated\"").unwrap();
        assert_eq!(history, HistoryStep::Message(MessageType::CaseRated));
    }
}
