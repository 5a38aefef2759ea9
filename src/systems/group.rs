//! The consumer groups start-up subscribes, and what each waits for.

use crate::bus::bridge::KeepHandled;
use crate::bus::{Resume, Share, Topic};

/// A consumer group start-up subscribes.
pub(super) struct Group {
    /// Its name.
    pub(super) name: String,
    /// What it reads.
    pub(super) topics: Vec<Topic>,
    /// It receives nothing until the state is rebuilt.
    pub(super) after_state: bool,
    /// Shared by every process of the role, resumed from committed offsets (and so joined
    /// again after a restart, with static membership when `bus.kafka.instance_id` is set);
    /// it receives nothing until the state is rebuilt either.
    pub(super) shared: bool,
    /// For a group of this process alone that keeps its offsets in the case repository:
    /// where it resumes and whom it tells its progress.
    pub(super) resume: Option<Resume>,
    /// Told of every record a system of the group handled (see
    /// [`Subscribe::keep`](crate::bus::bridge::Subscribe::keep)).
    pub(super) keep: Option<KeepHandled>,
    /// For a group of this process alone: the partitions it reads (all but for the intake
    /// view of one of several intake processes).
    pub(super) share: Share,
}

impl Group {
    /// A group of this process alone, its records handed on at once.
    pub(super) fn new(name: String, topics: Vec<Topic>) -> Self {
        Self {
            name,
            topics,
            after_state: false,
            shared: false,
            resume: None,
            keep: None,
            share: Share::ALL,
        }
    }

    /// A group of this process alone reads only the partitions of `share`.
    pub(super) fn reading(self, share: Share) -> Self {
        Self { share, ..self }
    }

    /// It receives nothing until the state is rebuilt.
    pub(super) fn after_state(self) -> Self {
        Self {
            after_state: true,
            ..self
        }
    }

    /// It resumes as `resume` says, when given.
    pub(super) fn resuming(self, resume: Option<Resume>) -> Self {
        Self { resume, ..self }
    }

    /// Every record a system of it handled is told to `keep`, when given.
    pub(super) fn keeping(self, keep: Option<KeepHandled>) -> Self {
        Self { keep, ..self }
    }

    /// A group shared by the processes of its role (see the field `shared`).
    pub(super) fn shared(self) -> Self {
        Self {
            shared: true,
            after_state: true,
            ..self
        }
    }
}
