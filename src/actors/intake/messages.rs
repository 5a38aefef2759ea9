//! What the intake system is asked: by a terminal (a submission), by the city centre (the feed),
//! by the applicant (the self-query, a supplement, a rating), by an operator (stalled cases and
//! their re-drive) and by start-up (ready), with the answers and refusals that come back.

use super::CaseView;
use crate::actors::acts::Acted;
use crate::catalog::LookupError;
use crate::crypto::CryptoError;
use crate::domain::{
    Applicant, Application, CaseId, CaseStatus, Channel, HistoryStep, MatterCode, MessageId,
    MessageType, Rating, Region, Supplement, TerminalId,
};
use crate::port::Delivery;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// What a person fills in at a terminal.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationForm {
    /// The matter applied for.
    pub matter_code: MatterCode,
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
    /// The applicant's account, when they submit it themselves.
    pub owner: Option<String>,
    /// The terminal.
    pub terminal_id: TerminalId,
    /// Its channel.
    pub channel: Channel,
}

/// A submission taken: its case id, and where its record stood when answered.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The new case.
    pub case_id: CaseId,
    /// [`Delivery::OnBus`] once the application is on the bus and survives this process;
    /// [`Delivery::NotYet`] when the bus did not take it within `service.submit_timeout_ms` (it
    /// is kept and published as soon as the bus takes it); [`Delivery::Refused`] when the bus
    /// refused it for good: the case failed and will not be processed.
    pub delivery: Delivery,
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
/// oldest first. Waits until there is at least one, if asked to.
#[derive(Message)]
#[rtype(result = "Vec<FedApplication>")]
pub struct TakeNewApplications {
    /// The last sequence number already taken.
    pub after: u64,
    /// Most applications to return.
    pub max: usize,
    /// When there is none yet: wait for the next one (`true`), or answer none at once.
    pub wait: bool,
}

/// One application from the feed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FedApplication {
    /// Its position in the feed (1, 2, …).
    pub sequence: u64,
    /// The application.
    pub application: Application,
    /// The case's trace id.
    pub trace_id: String,
}

/// The applicant's self-query: the case with its applicant opened; `None` for an unknown case,
/// `Err` if the applicant cannot be opened (never for a case this system took in: each was
/// checked to open when it came, and the keys do not change while the process runs).
#[derive(Message)]
#[rtype(result = "Result<Option<CaseView<Applicant>>, CaseReadError>")]
pub struct GetCase(
    /// The case asked about.
    pub CaseId,
);

/// The cases an applicant submitted themselves (their `owner`), newest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<OwnCase>, CaseReadError>")]
pub struct OwnCases(
    /// The applicant's account.
    pub String,
);

/// One line of an applicant's list of cases.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OwnCase {
    /// The case.
    pub case_id: CaseId,
    /// The matter applied for.
    pub matter_code: MatterCode,
    /// Where it stands.
    pub status: CaseStatus,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
}

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
    pub terminal_id: TerminalId,
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
    pub terminal_id: TerminalId,
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
    /// The case repository, where the case is, cannot be read now.
    #[error("{0}")]
    Unavailable(String),
}

/// Why a case cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum CaseReadError {
    /// Its applicant cannot be opened with the keys of this process.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The case repository, where the case is, cannot be read now.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How many cases the intake system holds in memory, and how many of them are in the feed:
/// with a case repository, the open cases and the last closed ones, whatever the history.
#[derive(Message)]
#[rtype(result = "Held")]
pub struct Holding;

/// What [`Holding`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Held {
    /// Cases in memory.
    pub cases: usize,
    /// Open cases that left memory (see `store.open_cases_in_memory`).
    pub away: usize,
    /// Feed entries.
    pub feed: usize,
    /// Applicants' acts recorded (ratings, supplements), to answer a repeated request as the
    /// first: those on the cases in memory.
    pub acts: usize,
}

/// The open cases as the case repository holds them, read at start: the intake system keeps
/// them in memory and follows them on from there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeBack(
    /// The open cases' rows.
    pub Vec<crate::store::CaseRow>,
);

/// An operator asks for the cases that made no progress for `idle_secs`: not completed, and
/// their last step older than that by the shared clock.
#[derive(Debug, Message)]
#[rtype(result = "StalledCases")]
pub struct ListStalled {
    /// How long a case must have been idle to be listed, in seconds.
    pub idle_secs: u64,
    /// Most cases to list (the oldest first).
    pub max: usize,
}

/// The stalled cases, oldest last step first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StalledCases {
    /// The idle time the cases were listed for, in seconds.
    pub idle_secs: u64,
    /// How many cases are stalled, listed or not.
    pub total: usize,
    /// At most the `max` asked for, oldest first.
    pub cases: Vec<StalledCase>,
}

/// One case that made no progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StalledCase {
    /// The case.
    pub case_id: CaseId,
    /// Where it stands.
    pub status: CaseStatus,
    /// The matter applied for (its code).
    pub matter: String,
    /// The responsible department (its code).
    pub department: String,
    /// The last step the intake system saw.
    pub last_step: LastStep,
    /// Seconds since that step, by the shared clock.
    pub idle_secs: u64,
}

/// The last step of a case: a message on the bus, or the submission.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastStep {
    /// The message type, or `submitted`.
    #[serde(rename = "type")]
    pub step: HistoryStep,
    /// The message id.
    pub message_id: MessageId,
    /// The system that sent it.
    pub from: String,
    /// The system it was for.
    pub to: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// An operator has the intake system send a stalled case's current step again: the messages
/// it observed since the case entered its status, with their own ids.
#[derive(Debug, Message)]
#[rtype(result = "Result<Redriven, RedriveError>")]
pub struct RedriveCase(
    /// The case to re-drive.
    pub CaseId,
);

/// What a re-drive sent again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    /// The case.
    pub case_id: CaseId,
    /// Its status when re-driven.
    pub status: CaseStatus,
    /// How many messages were sent again.
    pub resent: usize,
    /// The messages, in the order they happened, now on the bus again.
    pub messages: Vec<ResentMessage>,
}

/// One message a re-drive sent again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResentMessage {
    /// Its id, unchanged, so that a system that handled it drops it.
    pub id: MessageId,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The system it is for.
    pub to: String,
}

/// Why a re-drive was refused, or did not reach the bus.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedriveError {
    /// This intake system issued no such case.
    #[error("{0}")]
    Unknown(String),
    /// The case is completed: nothing is waiting.
    #[error("{0}")]
    Completed(String),
    /// The case failed (the bus refused its application for good): nothing will move it.
    #[error("{0}")]
    Failed(String),
    /// The case was never published: nothing of it is on the bus to send again.
    #[error("{0}")]
    NothingToResend(String),
    /// The bus did not take the messages; nothing is lost, try again.
    #[error("{0}")]
    NotOnBus(String),
    /// The bus refused one of the messages for good (it is in dead-letters): sending them
    /// again would be refused again.
    #[error("{0}")]
    Refused(String),
    /// The case is not in memory and the case repository could not be read; nothing was sent.
    #[error("{0}")]
    Unavailable(String),
}
