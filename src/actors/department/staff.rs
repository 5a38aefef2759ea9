//! Staff at work on cases (through the HTTP API): the inbox, a decision, a request for
//! supplementary materials.
//!
//! A staff act changes the department at once and is recorded under the id of the message it
//! causes; the message is sent until the bus takes it or refuses it for good, and the same
//! request again answers the same result (see [`acts`](crate::actors::acts)).

use super::messages::{Decide, GetInbox, Inbox, InboxCase, InboxEvent, RequestSupplement};
use super::state::{DeptCase, Stage};
use super::{Department, StaffError};
use crate::actors::acts::{self, ActRequest, Acted, Acts, TakesActs};
use crate::actors::{close_if_finished, BusSystem, GetHolding, Holding, KeepsState};
use crate::domain::{
    message_ids, Approval, CaseId, Envelope, InboxStage, MessageType, Mode, StepKind, Suspension,
    SystemId,
};
use actix::prelude::*;

/// A staff request refused before anything changed.
pub(super) fn refuse<T: 'static>(
    error: StaffError,
) -> ResponseActFuture<Department, Result<Acted<T>, StaffError>> {
    Box::pin(fut::ready(Err(error)))
}

impl TakesActs for Department {
    fn acts(&mut self) -> &mut Acts {
        &mut self.acts
    }

    fn act_snapshot(&mut self, case_id: &CaseId) -> Option<Envelope> {
        self.snapshot_of(case_id)
    }

    fn act_sent(&mut self, case_id: &CaseId) {
        close_if_finished(self, case_id);
    }
}

impl Department {
    /// A case staff may act on, or why not.
    fn staff_case(&self, case_id: &CaseId) -> Result<&DeptCase, StaffError> {
        let code = &self.settings.code;
        if let Some(closed) = self.processed.closed(case_id) {
            return Err(StaffError::Conflict(format!(
                "case {case_id} is already finished at department {code} (closed at {})",
                closed.at
            )));
        }
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
        let keyring = &self.catalog.keyring;
        let cases: Result<Vec<InboxCase>, _> = self
            .cases
            .values()
            .filter_map(|c| {
                let stage = match c.stage {
                    Stage::AwaitingDecision => InboxStage::AwaitingDecision,
                    Stage::Suspended { .. } => InboxStage::Suspended,
                    _ => return None,
                };
                // The one place the department's staff get the applicant in clear.
                Some(c.application.opened(keyring).map(|application| InboxCase {
                    stage,
                    application,
                    receipt: c.receipt.clone(),
                    missing_materials: c.missing.clone(),
                    collaboration_results: c.results.clone(),
                }))
            })
            .collect();
        let mut cases = match cases {
            Ok(cases) => cases,
            Err(error) => return MessageResult(Err(error)),
        };
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
        MessageResult(Ok(Inbox {
            department: self.settings.code.clone(),
            cases,
            collaborations,
        }))
    }
}

impl Handler<GetHolding> for Department {
    type Result = MessageResult<GetHolding>;

    fn handle(&mut self, _: GetHolding, _: &mut Self::Context) -> Self::Result {
        MessageResult(Holding::of(self))
    }
}

impl Handler<Decide> for Department {
    type Result = ResponseActFuture<Self, Result<Acted<Approval>, StaffError>>;

    fn handle(&mut self, msg: Decide, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id.clone();
        let request = ActRequest {
            id: message_ids::approval(&case_id),
            asked: format!("{msg:?}"),
            subject: case_id.to_string(),
            by: Some(msg.officer.clone()),
        };
        if let Some(repeat) = acts::repeat(self, Some(request.id.clone()), &request.asked) {
            return repeat;
        }
        if let Err(error) = self.decidable(&case_id) {
            return refuse(error);
        }
        // `decide` takes the case apart from the department, so it comes out and goes back.
        let Some(mut case) = self.cases.remove(&case_id) else {
            return refuse(StaffError::NotFound(case_id.to_string()));
        };
        let (approval, envelope) = self.decide(&mut case, Some((msg.decision, msg.opinion)));
        self.cases.insert(case_id.clone(), case);
        acts::take(self, ctx, request, case_id, vec![envelope], approval)
    }
}

impl Handler<RequestSupplement> for Department {
    type Result = ResponseActFuture<Self, Result<Acted<Suspension>, StaffError>>;

    fn handle(&mut self, msg: RequestSupplement, ctx: &mut Self::Context) -> Self::Result {
        let case_id = msg.case_id.clone();
        let asked = format!("{msg:?}");
        // A repeat finds the case suspended by the request it repeats.
        let current = self.cases.get(&case_id).and_then(|case| match case.stage {
            Stage::Suspended { sequence, .. } => Some(message_ids::suspended(&case_id, sequence)),
            _ => None,
        });
        if let Some(repeat) = acts::repeat(self, current, &asked) {
            return repeat;
        }
        let sequence = match self.next_suspension(&case_id) {
            Ok(sequence) => sequence,
            Err(error) => return refuse(error),
        };
        let now = self.catalog.now();
        let officer = msg.officer;
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
        case.stage = Stage::Suspended {
            sequence,
            since: now,
        };
        case.suspensions = sequence;
        case.add_step(step);
        let trace_id = case.trace_id.clone();
        let request = ActRequest {
            id: message_ids::suspended(&case_id, sequence),
            asked,
            subject: case_id.to_string(),
            by: Some(officer),
        };
        let envelope = self.sender().message(
            request.id.clone(),
            MessageType::CaseSuspended,
            &case_id,
            SystemId::Intake,
            trace_id.as_str(),
            &suspension,
        );
        acts::take(self, ctx, request, case_id, vec![envelope], suspension)
    }
}
