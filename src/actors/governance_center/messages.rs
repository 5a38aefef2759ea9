//! What a governance centre takes besides bus messages: its staff's requests (the awaiting
//! list, reassignment) and the intake feed's (start reading, build what a batch publishes).

use crate::actors::acts::Acted;
use crate::actors::intake::FedApplication;
use crate::domain::{CollaborationEvent, DepartmentCode, Envelope, EventId, Officer};
use crate::feed::FeedSource;
use actix::prelude::*;
use serde::Serialize;

/// Staff of a centre reassign a returned event waiting there to a department.
#[derive(Debug, Message)]
#[rtype(result = "Result<Acted<CollaborationEvent>, ReassignError>")]
pub struct ReassignEvent {
    /// The event.
    pub event_id: EventId,
    /// The department that must handle it now.
    pub department: DepartmentCode,
    /// The dispatcher acting.
    pub officer: Officer,
}

/// Returned events waiting at a centre for reassignment.
#[derive(Message)]
#[rtype(result = "Vec<AwaitingEvent>")]
pub struct GetAwaiting;

/// A returned event waiting for reassignment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AwaitingEvent {
    /// The event, with every return in `returns`.
    #[serde(flatten)]
    pub event: CollaborationEvent,
}

/// Why a reassignment was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReassignError {
    /// No such event waits here.
    #[error("{0}")]
    NotWaiting(String),
    /// No such department.
    #[error("{0}")]
    UnknownDepartment(String),
}

/// Starts reading the feed of each intake process (instance 0, 1, … in order) from the
/// position the city last recorded of it (city centre; sent once its state is rebuilt).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartFeed(pub Vec<FeedSource>);

/// Builds the `application.published` envelopes of applications fed by intake instance `.2`
/// up to its feed position `.1`, followed by the snapshot that records that position.
#[derive(Message)]
#[rtype(result = "Vec<Envelope>")]
pub(super) struct BuildPublished(
    pub(super) Vec<FedApplication>,
    pub(super) u64,
    pub(super) u32,
);
