//! What a stateful system holds in memory, for an operator: open work, and what it keeps to
//! recognise repeats. With closing (see [`KeepsState`](super::KeepsState)), each figure follows
//! the open work and the cases closed within the flow topics' retention, not the history.

use super::acts::TakesActs;
use super::{forget_expired, KeepsState};
use actix::prelude::*;
use serde::Serialize;

/// Asks a department or a governance centre what it holds.
#[derive(Debug, Message)]
#[rtype(result = "Holding")]
pub struct GetHolding;

/// What a system holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Holding {
    /// Cases it holds state for: its open work.
    pub open_cases: usize,
    /// Ids of handled messages it keeps (those of open cases, and those still being sent).
    pub handled_ids: usize,
    /// Cases whose snapshot version it keeps.
    pub snapshot_versions: usize,
    /// Closed cases it remembers, to drop their late repeats.
    pub closed_cases: usize,
    /// Acts of people it records, to answer a repeated request as the first (those on open
    /// cases and on cases closed within the retention).
    pub acts: usize,
}

impl Holding {
    /// What `system` holds now, once it forgot the closed cases past the retention.
    pub fn of<A: KeepsState + TakesActs>(system: &mut A) -> Self {
        forget_expired(system);
        let (handled_ids, closed_cases) = system.processed().holding();
        Self {
            open_cases: system.open_cases(),
            handled_ids,
            snapshot_versions: system.versions().len(),
            closed_cases,
            acts: system.acts().len(),
        }
    }
}
