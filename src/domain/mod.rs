//! Domain types shared by every system: identifiers, the application a citizen submits, the
//! payloads that travel on the bus inside an [`Envelope`], and the formats of what identifies an
//! applicant ([`identity`]) and
//! how it is shown to those who may not read it in full ([`masking`]).
//!
//! Identifiers and enumerations are newtypes and enums that can only hold valid values, so a
//! handler never has to re-check a tier name or a channel string.

mod envelope;
mod form;
pub mod identity;
mod ids;
mod interned;
pub mod masking;
pub mod message_ids;
mod payloads;
mod sealed;
mod status;
pub mod timestamp;

pub use envelope::{
    Envelope, EnvelopeError, EnvelopeHead, MessageType, Officer, SystemId, SCHEMA_VERSION,
};
pub use form::FormFields;
pub use ids::{
    know_code, CaseId, CentreCode, DepartmentCode, EventId, MatterCode, MessageId, Party,
    ReceiptNo, TerminalId, TraceId,
};
pub use payloads::{
    Applicant, Application, Approval, ApprovalStep, CollaborationCompleted, CollaborationEvent,
    CollaborationOutcome, CollaborationRequest, CollaborationResult, Collaborator, Decision,
    Escalation, EventReturn, EventReturned, EventSigned, ExtensionDecision, ExtensionRequest, Hop,
    Outcome, Rating, Receipt, Region, Resumption, Supplement, Suspension, Warning, WarningLevel,
};
pub use sealed::{Algorithm, SealedApplicant};
pub use status::{CaseStatus, EventStatus, HistoryStep, InboxStage, StepKind};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The three tiers of the governance tree, top to bottom.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The city's operation-and-governance centre (市级).
    City,
    /// A district or county centre (区县).
    District,
    /// A town or street centre (镇街).
    Street,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::City => "city",
            Tier::District => "district",
            Tier::Street => "street",
        })
    }
}

/// Where a person submitted an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The PC web site.
    Pc,
    /// The mobile app.
    App,
    /// A self-service kiosk (自助终端).
    Kiosk,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Pc => "pc",
            Channel::App => "app",
            Channel::Kiosk => "kiosk",
        })
    }
}

/// How a department decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Rules decide: approve when every required material is present (and every collaborator
    /// agreed), reject otherwise; collaboration events are answered with the configured answer.
    Auto,
    /// Staff decide through the HTTP API; cases and events wait in the department's inbox.
    Manual,
}
