//! Staff at work on cases (through the HTTP API): the inbox, a decision, a request for
//! supplementary materials; and how every staff act is published.
//!
//! A staff act changes the department at once and is then published; if it does not get on
//! the bus, it is undone and staff are told to try again, so that what staff see is what the
//! other systems were told.

use super::messages::{Decide, GetInbox, Inbox, InboxCase, InboxEvent, RequestSupplement};
use super::state::{DeptCase, Stage};
use super::{Department, StaffError};
use crate::actors::{BusSystem, KeepsState};
use crate::domain::{
    message_ids, Approval, CaseId, Envelope, InboxStage, MessageType, Mode, StepKind, Suspension,
    SystemId,
};
use crate::port::publish;
use actix::prelude::*;

/// A staff act ready to publish.
pub(super) struct StaffAct<T> {
    /// What it is called when staff are told it failed ("decision", "signature", …).
    pub(super) what: &'static str,
    /// The message that tells the other systems.
    pub(super) envelope: Envelope,
    /// What staff get once it is published.
    pub(super) done: T,
}

impl<T> StaffAct<T> {
    /// `envelope`, called `what` to staff, giving them `done` once published.
    pub(super) fn new(what: &'static str, envelope: Envelope, done: T) -> Self {
        Self {
            what,
            envelope,
            done,
        }
    }
}

/// A staff request refused before anything changed.
pub(super) fn refuse<T: 'static>(
    error: StaffError,
) -> ResponseActFuture<Department, Result<T, StaffError>> {
    Box::pin(fut::ready(Err(error)))
}

/// An undo that puts one case back as it was, if it is still there.
fn on_case(
    case_id: CaseId,
    undo: impl FnOnce(&mut DeptCase) + 'static,
) -> impl FnOnce(&mut Department) + 'static {
    move |department| {
        if let Some(case) = department.cases.get_mut(&case_id) {
            undo(case);
        }
    }
}

impl Department {
    /// Publishes a staff act's message followed by the snapshot of its case as it now stands;
    /// if they do not get through, `undo` puts the department back as it was, and staff are
    /// told to try again.
    pub(super) fn publish_or_undo<T: 'static>(
        &mut self,
        act: StaffAct<T>,
        undo: impl FnOnce(&mut Department) + 'static,
    ) -> ResponseActFuture<Self, Result<T, StaffError>> {
        let StaffAct {
            what,
            envelope,
            done,
        } = act;
        let case_id = envelope.case_id.clone();
        let mut outputs = vec![envelope];
        outputs.extend(self.snapshot_of(&case_id));
        Box::pin(publish(&self.bridge, outputs).into_actor(self).map(
            move |published, department, _| match published {
                Ok(()) => Ok(done),
                Err(error) => {
                    undo(department);
                    Err(StaffError::Unavailable(format!(
                        "{what} not published, nothing changed: {error}"
                    )))
                }
            },
        ))
    }

    /// A case staff may act on, or why not.
    fn staff_case(&self, case_id: &CaseId) -> Result<&DeptCase, StaffError> {
        let code = &self.settings.code;
        let case = self.cases.get(case_id).ok_or_else(|| {
            StaffError::NotFound(format!("case {case_id} is not at department {code}"))
        })?;
        if self.settings.mode == Mode::Auto {
            return Err(StaffError::Conflict(format!(
                "case {case_id} cannot be handled by staff: department {code} decides automatically"
            )));
        }
        Ok(case)
    }

    /// Whether staff may decide a case now, or why not.
    fn decidable(&self, case_id: &CaseId) -> Result<(), StaffError> {
        let case = self.staff_case(case_id)?;
        match case.stage {
            Stage::AwaitingDecision => Ok(()),
            Stage::Collaborating => Err("the case is still waiting for collaboration"),
            Stage::Suspended { .. } => {
                Err("the case is suspended until the applicant supplies materials")
            }
            Stage::Decided => Err("the case is already decided"),
        }
        .map_err(|why| StaffError::Conflict(format!("case {case_id} cannot be decided now: {why}")))
    }

    /// The number the case's next suspension gets, if staff may suspend it now; or why not.
    fn next_suspension(&self, case_id: &CaseId) -> Result<u32, StaffError> {
        let case = self.staff_case(case_id)?;
        match case.stage {
            Stage::AwaitingDecision => Ok(case.suspensions + 1),
            Stage::Suspended { .. } => Err(StaffError::Conflict(format!(
                "case {case_id} is already suspended, waiting for the applicant"
            ))),
            Stage::Collaborating => Err(StaffError::Conflict(format!(
                "case {case_id} is waiting for collaboration; ask for materials once it is back"
            ))),
            Stage::Decided => Err(StaffError::Conflict(format!(
                "case {case_id} is already decided"
            ))),
        }
    }
}

impl Handler<GetInbox> for Department {
    type Result = MessageResult<GetInbox>;

    fn handle(&mut self, _: GetInbox, _: &mut Self::Context) -> Self::Result {
        let mut cases: Vec<InboxCase> = self
            .cases
            .values()
            .filter_map(|c| {
                let stage = match c.stage {
                    Stage::AwaitingDecision => InboxStage::AwaitingDecision,
                    Stage::Suspended { .. } => InboxStage::Suspended,
                    _ => return None,
                };
                Some(InboxCase {
                    stage,
                    application: c.application.clone(),
                    receipt: c.receipt.clone(),
                    missing_materials: c.missing.clone(),
                    collaboration_results: c.results.clone(),
                })
            })
            .collect();
        cases.sort_by_key(|c| c.receipt.accepted_at);
        let mut collaborations: Vec<InboxEvent> = self
            .events
            .values()
            .map(|p| InboxEvent {
                event: p.event.clone(),
                signed: p.signed,
                extension_pending: p.extension_pending,
            })
            .collect();
        collaborations.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
        MessageResult(Inbox {
            department: self.settings.code.clone(),
            cases,
            collaborations,
        })
    }
}

impl Handler<Decide> for Department {
    type Result = ResponseActFuture<Self, Result<Approval, StaffError>>;

    fn handle(&mut self, msg: Decide, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id;
        if let Err(error) = self.decidable(&case_id) {
            return refuse(error);
        }
        // `decide` takes the case apart from the department, so it comes out and goes back.
        let Some(mut case) = self.cases.remove(&case_id) else {
            return refuse(StaffError::NotFound(case_id.to_string()));
        };
        let before = (case.steps.len(), case.stage.clone());
        let (approval, envelope) = self.decide(&mut case, Some((msg.decision, msg.opinion)));
        self.cases.insert(case_id.clone(), case);
        let act = StaffAct::new("decision", envelope, approval);
        // Not published: back in the inbox, so staff can try again.
        let undo = on_case(case_id, move |case| {
            case.steps.truncate(before.0);
            case.stage = before.1;
        });
        self.publish_or_undo(act, undo)
    }
}

impl Handler<RequestSupplement> for Department {
    type Result = ResponseActFuture<Self, Result<Suspension, StaffError>>;

    fn handle(&mut self, msg: RequestSupplement, _: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id;
        let sequence = match self.next_suspension(&case_id) {
            Ok(sequence) => sequence,
            Err(error) => return refuse(error),
        };
        let now = self.catalog.now();
        let suspension = Suspension {
            department: self.settings.code.clone(),
            sequence,
            materials: msg.materials,
            reason: msg.reason,
            suspended_at: now,
        };
        let step = self.step(
            StepKind::Suspended,
            format!(
                "补正: {} ({}); clock stopped",
                suspension.materials.join(", "),
                suspension.reason
            ),
        );
        let Some(case) = self.cases.get_mut(&case_id) else {
            return refuse(StaffError::NotFound(case_id.to_string()));
        };
        let before = case.stage.clone();
        case.stage = Stage::Suspended {
            sequence,
            since: now,
        };
        case.suspensions = sequence;
        case.steps.push(step);
        let trace_id = case.trace_id.clone();
        let envelope = self.envelope(
            message_ids::suspended(&case_id, sequence),
            MessageType::CaseSuspended,
            &case_id,
            SystemId::Intake,
            &trace_id,
            &suspension,
        );
        let act = StaffAct::new("supplement request", envelope, suspension);
        let undo = on_case(case_id, move |case| {
            case.stage = before;
            case.suspensions = sequence - 1;
            case.steps.pop();
        });
        self.publish_or_undo(act, undo)
    }
}
