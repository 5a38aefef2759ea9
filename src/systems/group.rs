//! The consumer groups start-up subscribes, and what each waits for.

use crate::bus::bridge::KeepHandled;
use crate::bus::{Resume, Share, Topic};
use crate::domain::DepartmentCode;

/// The shared consumer group that reads the flow for a process's governance centres (with
/// `governance`) and `departments`, routing each record by its `target` header; None for a
/// process with neither. Processes hosting the same systems share it and split its partitions.
///
/// A process of one role keeps the name each role's group has always had:
/// `{prefix}.governance`, or `{prefix}.department.{code}` (the group an outside department
/// joins too, see `docs/asyncapi.yaml`). A process of several roles names them all:
/// `{prefix}.flow.governance+department.{code}+…`, departments in code order. So two processes
/// share a group exactly when they host the same systems; processes hosting different sets must
/// not host one system twice (each would handle all of its records).
pub fn flow_group(
    prefix: &str,
    governance: bool,
    departments: &[&DepartmentCode],
) -> Option<String> {
    let mut departments: Vec<&str> = departments.iter().map(|code| code.as_str()).collect();
    departments.sort_unstable();
    let roles: Vec<String> = governance
        .then(|| "governance".to_owned())
        .into_iter()
        .chain(departments.iter().map(|code| format!("department.{code}")))
        .collect();
    match roles.as_slice() {
        [] => None,
        [role] => Some(format!("{prefix}.{role}")),
        roles => Some(format!("{prefix}.flow.{}", roles.join("+"))),
    }
}

/// The topics the flow group reads: a centre's (collaboration requests, events, results and
/// approvals) with `governance`, a department's (applications, collaboration events and
/// results, case updates) with `departments`; each once.
pub(super) fn flow_topics(governance: bool, departments: bool) -> Vec<Topic> {
    let mut topics = Vec::new();
    if governance {
        topics.extend([
            Topic::CollaborationRequests,
            Topic::CollaborationEvents,
            Topic::CollaborationResults,
            Topic::Approvals,
        ]);
    }
    if departments {
        for topic in [
            Topic::Applications,
            Topic::CollaborationEvents,
            Topic::CollaborationResults,
            Topic::CaseUpdates,
        ] {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
    }
    topics
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(codes: &[&str]) -> Vec<DepartmentCode> {
        codes.iter().map(|c| DepartmentCode::from(*c)).collect()
    }

    #[test]
    fn a_process_of_one_role_keeps_that_roles_group_and_one_of_several_names_them_all() {
        // Arrange
        let market = codes(&["market"]);
        let several = codes(&["market", "fire"]);

        // Act
        let name = |governance, departments: &[DepartmentCode]| {
            flow_group("cq", governance, &departments.iter().collect::<Vec<_>>())
        };

        // Assert
        assert_eq!(name(true, &[]).as_deref(), Some("cq.governance"));
        assert_eq!(
            name(false, &market).as_deref(),
            Some("cq.department.market")
        );
        assert_eq!(
            name(true, &several).as_deref(),
            Some("cq.flow.governance+department.fire+department.market"),
            "departments in code order, whatever order they came in"
        );
        assert_eq!(
            name(false, &several).as_deref(),
            Some("cq.flow.department.fire+department.market")
        );
        assert_eq!(name(false, &[]), None, "no centre, no department: no group");
    }

    #[test]
    fn the_flow_group_reads_each_roles_topics_once() {
        // Act
        let both = flow_topics(true, true);

        // Assert
        assert_eq!(
            both,
            [
                Topic::CollaborationRequests,
                Topic::CollaborationEvents,
                Topic::CollaborationResults,
                Topic::Approvals,
                Topic::Applications,
                Topic::CaseUpdates,
            ]
        );
        assert_eq!(flow_topics(false, true).len(), 4);
        assert!(flow_topics(false, false).is_empty());
    }
}
