//! What the intake system is asked: by a terminal (a submission), by the city centre (the feed),
//! by the applicant (the self-query, a supplement, a rating) and by start-up (ready), with the
//! answers and refusals that come back.

use super::CaseView;
use crate::actors::acts::Acted;
use crate::catalog::LookupError;
use crate::domain::{Applicant, Application, CaseId, Channel, Rating, Region, Supplement};
use actix::prelude::*;
use serde::{Deserialize, Serialize};
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
    /// The application is bigger than one record on the bus may carry with it.
    #[error(
        "the application is {size} bytes, over the limit of {limit} bytes (the bus's record \
         limit less room for the envelope and the collaborators' answers): hand in large \
         materials by reference, not inline"
    )]
    TooLarge {
        /// The application's size as JSON, in bytes.
        size: u64,
        /// The largest application taken, in bytes.
        limit: u64,
    },
}

/// The state of the intake system has been rebuilt: take submissions and feed them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MarkReady;

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
pub struct GetCase(
    /// The case asked about.
    pub CaseId,
);

/// Resolves when the case is completed or failed (or at once if it already is); `None` for an
/// unknown case.
#[derive(Message)]
#[rtype(result = "Option<oneshot::Receiver<CaseView>>")]
pub struct AwaitCompletion(
    /// The case waited for.
    pub CaseId,
);

/// The applicant supplies the materials a department asked for (补正).
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<Supplement>, CaseActionError>")]
pub struct SupplementCase {
    /// The case.
    pub case_id: CaseId,
    /// The terminal used.
    pub terminal_id: String,
    /// The materials supplied.
    pub materials: Vec<String>,
}

/// The applicant rates a completed case (好差评).
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<Rating>, CaseActionError>")]
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
}
