//! The supervision system (监督评价考核): the governance platform's watch over deadlines.
//!
//! It reads every topic (its own consumer group) and keeps, from the timestamps the messages
//! carry, each case's promised deadline (moved by suspensions) and each collaboration event's
//! deadline (moved by approved extensions, renewed when the event is re-routed). Every
//! `supervision.check_interval_ms` it compares them with the clock:
//!
//! * a case or event that has used `supervision.yellow_at_percent` of its working hours gets a
//!   yellow warning, one that is overdue a red one (`supervision.warning`, once each);
//! * an event still unanswered at its deadline is escalated (督办, `collaboration.escalated`,
//!   once) to the centre one tier above the centre that dispatched it; the city, with no tier
//!   above, receives the escalations of the events it dispatched itself.
//!
//! Because everything is computed from stored timestamps, a restarted supervisor that reads the
//! topics again reaches the same warnings, and warnings it already published keep their ids.
//! A suspended case raises no warning: its clock is stopped, and once it resumes the working
//! hours it was suspended count neither as used nor as allowed time.
//!
//! It also answers the supervision figures ([`GetDepartmentFigures`], [`GetCentreFigures`]).

use super::publish;
use crate::bus::bridge::{HandleError, Inbound, Publish};
use crate::catalog::Catalog;
use crate::domain::{message_ids, StepKind};
use crate::domain::{
    Approval, CaseId, CollaborationEvent, CollaborationResult, Envelope, EnvelopeHead, Escalation,
    EventId, EventReturned, ExtensionDecision, MessageId, MessageType, Rating, Receipt, Resumption,
    SystemId, Tier, Warning, WarningLevel,
};
use actix::prelude::*;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The period figures cover: items received from `from` to `to`, local dates, both included.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Period {
    /// First day; none: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last day; none: up to now.
    pub to: Option<NaiveDate>,
}

/// Figures of every department.
#[derive(Message)]
#[rtype(result = "Vec<DepartmentFigures>")]
pub struct GetDepartmentFigures(pub Period);

/// Figures of every governance centre.
#[derive(Message)]
#[rtype(result = "Vec<CentreFigures>")]
pub struct GetCentreFigures(pub Period);

/// Counts and handling times of a set of work items (cases or collaboration events).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Items received in the period.
    pub received: usize,
    /// Of those, finished (cases decided, events answered).
    pub completed: usize,
    /// Of those, finished by their deadline.
    pub completed_on_time: usize,
    /// `completed_on_time / completed`; none when nothing was completed.
    pub on_time_rate: Option<f64>,
    /// Mean working hours from receipt to finish, over the completed items.
    pub average_handling_hours: Option<f64>,
    /// 90th percentile (nearest rank) of the same.
    pub p90_handling_hours: Option<f64>,
    /// Items not finished and past their deadline now (a suspended case is not: its clock is
    /// stopped).
    pub open_overdue: usize,
}

/// Ratings (好差评) of a department's cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RatingFigures {
    /// Cases rated.
    pub count: usize,
    /// Mean score, 1–5; none when no case was rated.
    pub average: Option<f64>,
}

/// One department's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepartmentFigures {
    /// Department code.
    pub department: String,
    /// Its name.
    pub name: String,
    /// Cases it accepted in the period.
    pub cases: Figures,
    /// Collaboration events dispatched to it in the period.
    pub collaborations: Figures,
    /// Of those events, how many it returned (退单).
    pub returns: usize,
    /// Of those events, how many were escalated (督办) for want of its answer.
    pub escalations: usize,
    /// Ratings of the cases it accepted in the period.
    pub ratings: RatingFigures,
}

/// One governance centre's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentreFigures {
    /// Centre code.
    pub centre: String,
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: Tier,
    /// Collaboration events routed through it in the period (each dispatch to a department
    /// counts once for every centre on its route).
    pub events: Figures,
    /// Returns it handled: events it dispatched that the department returned.
    pub returns: usize,
    /// Escalations it received.
    pub escalations: usize,
}

/// A case's deadline as supervision follows it.
struct CaseWatch {
    department: String,
    trace_id: String,
    accepted_at: DateTime<Utc>,
    due_by: DateTime<Utc>,
    /// Set while the case is suspended: its clock is stopped.
    suspended_since: Option<DateTime<Utc>>,
    /// Working hours of the suspensions that ended: neither used nor allowed time.
    paused_hours: f64,
    decided_at: Option<DateTime<Utc>>,
    warned: HashSet<WarningLevel>,
    rating: Option<u8>,
}

/// One dispatch of an event to one department: the first, and one more per return.
struct Assignment {
    department: String,
    /// The centre that dispatched it to the department (the last of the route).
    dispatched_by: String,
    /// Every centre on the route.
    route: Vec<String>,
    dispatched_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    /// Extensions granted: each new deadline gets warnings of its own, with their own ids.
    extensions: u32,
    answered_at: Option<DateTime<Utc>>,
    returned: bool,
    warned: HashSet<WarningLevel>,
    escalated_to: Option<String>,
}

impl Assignment {
    fn is_open(&self) -> bool {
        self.answered_at.is_none() && !self.returned
    }
}

/// An event as supervision follows it.
struct EventWatch {
    case_id: CaseId,
    trace_id: String,
    /// By attempt: index = returns before it.
    assignments: Vec<Option<Assignment>>,
}

/// The supervision system.
pub struct Supervisor {
    /// The city, its calendar and clock, and the supervision rules.
    catalog: Arc<Catalog>,
    /// Where warnings and escalations go.
    bridge: Recipient<Publish>,
    /// Cases by id.
    cases: HashMap<CaseId, CaseWatch>,
    /// Events by id.
    events: HashMap<EventId, EventWatch>,
    /// Message ids already observed.
    seen: HashSet<MessageId>,
    /// A check's warnings are being published.
    checking: bool,
}

impl Supervisor {
    /// A supervisor that has seen nothing yet.
    pub fn new(catalog: Arc<Catalog>, bridge: Recipient<Publish>) -> Self {
        Self {
            catalog,
            bridge,
            cases: HashMap::new(),
            events: HashMap::new(),
            seen: HashSet::new(),
            checking: false,
        }
    }

    /// Records what a message says about deadlines.
    fn observe(&mut self, envelope: &Envelope) -> Result<(), crate::domain::EnvelopeError> {
        if !self.seen.insert(envelope.id.clone()) {
            return Ok(());
        }
        let case_id = &envelope.case_id;
        match envelope.kind {
            MessageType::ApplicationAccepted => {
                let receipt: Receipt = envelope.data()?;
                self.learn_case(case_id, &receipt, &envelope.trace_id);
            }
            MessageType::CaseSuspended => {
                if let Some(case) = self.cases.get_mut(case_id) {
                    case.suspended_since = Some(envelope.occurred_at);
                }
            }
            MessageType::CaseResumed => {
                let resumption: Resumption = envelope.data()?;
                self.learn_case(case_id, &resumption.receipt, &envelope.trace_id);
                let paused = self
                    .catalog
                    .calendar
                    .working_hours(resumption.suspended_at, resumption.resumed_at);
                if let Some(case) = self.cases.get_mut(case_id) {
                    case.due_by = resumption.receipt.due_by;
                    case.suspended_since = None;
                    case.paused_hours += paused;
                }
            }
            MessageType::ApprovalPublished => {
                let approval: Approval = envelope.data()?;
                if let Some(receipt) = &approval.receipt {
                    self.learn_case(case_id, receipt, &envelope.trace_id);
                }
                let decided = approval
                    .steps
                    .iter()
                    .rev()
                    .find(|s| s.step == StepKind::Decided)
                    .map_or(envelope.occurred_at, |s| s.at);
                if let Some(case) = self.cases.get_mut(case_id) {
                    case.decided_at.get_or_insert(decided);
                    case.suspended_since = None;
                }
            }
            MessageType::CaseRated => {
                let rating: Rating = envelope.data()?;
                if let Some(case) = self.cases.get_mut(case_id) {
                    case.rating.get_or_insert(rating.score);
                }
            }
            MessageType::CollaborationDispatched
                if matches!(envelope.target, SystemId::Department(_)) =>
            {
                let event: CollaborationEvent = envelope.data()?;
                self.learn_dispatch(&event, &envelope.trace_id);
            }
            MessageType::CollaborationAnswered
                if matches!(envelope.source, SystemId::Department(_)) =>
            {
                let result: CollaborationResult = envelope.data()?;
                if let Some(assignment) = self.events.get_mut(&result.event_id).and_then(|w| {
                    w.assignments
                        .iter_mut()
                        .flatten()
                        .rev()
                        .find(|a| a.department == result.department)
                }) {
                    assignment.answered_at.get_or_insert(result.answered_at);
                }
            }
            MessageType::CollaborationReturned
                if matches!(envelope.source, SystemId::Department(_)) =>
            {
                let returned: EventReturned = envelope.data()?;
                let attempt = returned.event.returns.len().saturating_sub(1);
                let mut before = returned.event.clone();
                before.returns.truncate(attempt);
                self.learn_dispatch(&before, &envelope.trace_id);
                if let Some(assignment) = self.assignment_mut(&returned.event.event_id, attempt) {
                    assignment.returned = true;
                }
            }
            MessageType::CollaborationExtensionDecided => {
                let decision: ExtensionDecision = envelope.data()?;
                if !decision.approved {
                    return Ok(());
                }
                if let Some(assignment) = self.events.get_mut(&decision.event_id).and_then(|w| {
                    w.assignments
                        .iter_mut()
                        .flatten()
                        .rev()
                        .find(|a| a.department == decision.department && a.is_open())
                }) {
                    assignment.deadline = decision.deadline;
                    // The new deadline gets its own warnings (ids with the extension count, so
                    // that they are new messages and not repeats of the old deadline's).
                    assignment.extensions = decision.extensions;
                    assignment.warned.clear();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn learn_case(&mut self, case_id: &CaseId, receipt: &Receipt, trace_id: &str) {
        self.cases
            .entry(case_id.clone())
            .or_insert_with(|| CaseWatch {
                department: receipt.department.clone(),
                trace_id: trace_id.to_owned(),
                accepted_at: receipt.accepted_at,
                due_by: receipt.due_by,
                suspended_since: None,
                paused_hours: 0.0,
                decided_at: None,
                warned: HashSet::new(),
                rating: None,
            });
    }

    /// Records the dispatch of `event` to its department, unless already known.
    fn learn_dispatch(&mut self, event: &CollaborationEvent, trace_id: &str) {
        let watch = self
            .events
            .entry(event.event_id.clone())
            .or_insert_with(|| EventWatch {
                case_id: event.case_id.clone(),
                trace_id: trace_id.to_owned(),
                assignments: Vec::new(),
            });
        let attempt = event.returns.len();
        if watch.assignments.len() <= attempt {
            watch.assignments.resize_with(attempt + 1, || None);
        }
        watch.assignments[attempt].get_or_insert_with(|| Assignment {
            department: event.department.clone(),
            dispatched_by: event
                .route
                .last()
                .map_or_else(|| self.catalog.city.clone(), |h| h.code.clone()),
            route: event.route.iter().map(|h| h.code.clone()).collect(),
            dispatched_at: event.dispatched_at,
            deadline: event.deadline,
            extensions: event.extensions,
            answered_at: None,
            returned: false,
            warned: HashSet::new(),
            escalated_to: None,
        });
    }

    fn assignment_mut(&mut self, event_id: &EventId, attempt: usize) -> Option<&mut Assignment> {
        self.events
            .get_mut(event_id)?
            .assignments
            .get_mut(attempt)?
            .as_mut()
    }

    /// The warnings and escalations due now, marked as raised. `undo` lists what to unmark if
    /// publishing them fails.
    fn check(&mut self) -> (Vec<Envelope>, Vec<Raised>) {
        let now = self.catalog.now();
        let yellow_at = f64::from(self.catalog.supervision.yellow_at_percent) / 100.0;
        let calendar = self.catalog.calendar.clone();
        let mut outputs = Vec::new();
        let mut raised = Vec::new();
        for (case_id, case) in &mut self.cases {
            if case.decided_at.is_some() || case.suspended_since.is_some() {
                continue;
            }
            let share =
                calendar.share_used_pausing(case.accepted_at, case.due_by, now, case.paused_hours);
            let Some(level) = due_level(now, case.due_by, share, yellow_at, &case.warned) else {
                continue;
            };
            case.warned.insert(level);
            raised.push(Raised::Case(case_id.clone(), level));
            outputs.push(supervision_envelope(
                message_ids::case_warning(case_id, level),
                MessageType::SupervisionWarning,
                case_id,
                SystemId::Department(case.department.clone()),
                &case.trace_id,
                &Warning {
                    level,
                    event_id: None,
                    department: case.department.clone(),
                    due_by: case.due_by,
                    share_used: share,
                    raised_at: now,
                },
                now,
            ));
        }
        for (event_id, watch) in &mut self.events {
            let Some((attempt, Some(assignment))) =
                watch.assignments.iter_mut().enumerate().next_back()
            else {
                continue;
            };
            if !assignment.is_open() {
                continue;
            }
            let key = message_ids::attempt_key(event_id, attempt);
            let share = calendar.share_used(assignment.dispatched_at, assignment.deadline, now);
            if let Some(level) = due_level(
                now,
                assignment.deadline,
                share,
                yellow_at,
                &assignment.warned,
            ) {
                assignment.warned.insert(level);
                raised.push(Raised::Event(event_id.clone(), attempt, level));
                let deadline_key = message_ids::deadline_key(&key, assignment.extensions);
                outputs.push(supervision_envelope(
                    message_ids::event_warning(&deadline_key, level),
                    MessageType::SupervisionWarning,
                    &watch.case_id,
                    SystemId::Department(assignment.department.clone()),
                    &watch.trace_id,
                    &Warning {
                        level,
                        event_id: Some(event_id.clone()),
                        department: assignment.department.clone(),
                        due_by: assignment.deadline,
                        share_used: share,
                        raised_at: now,
                    },
                    now,
                ));
            }
            if now >= assignment.deadline && assignment.escalated_to.is_none() {
                let to = self
                    .catalog
                    .centre(&assignment.dispatched_by)
                    .and_then(|c| c.parent.clone())
                    .unwrap_or_else(|| assignment.dispatched_by.clone());
                assignment.escalated_to = Some(to.clone());
                raised.push(Raised::Escalation(event_id.clone(), attempt));
                outputs.push(supervision_envelope(
                    message_ids::escalated(&key),
                    MessageType::CollaborationEscalated,
                    &watch.case_id,
                    SystemId::Governance(to.clone()),
                    &watch.trace_id,
                    &Escalation {
                        event_id: event_id.clone(),
                        department: assignment.department.clone(),
                        dispatched_by: assignment.dispatched_by.clone(),
                        escalated_to: to,
                        deadline: assignment.deadline,
                        escalated_at: now,
                    },
                    now,
                ));
            }
        }
        (outputs, raised)
    }

    /// Forgets warnings and escalations whose publish failed, so the next check raises them
    /// again (with the same ids).
    fn unraise(&mut self, raised: Vec<Raised>) {
        for item in raised {
            match item {
                Raised::Case(case_id, level) => {
                    if let Some(case) = self.cases.get_mut(&case_id) {
                        case.warned.remove(&level);
                    }
                }
                Raised::Event(event_id, attempt, level) => {
                    if let Some(a) = self.assignment_mut(&event_id, attempt) {
                        a.warned.remove(&level);
                    }
                }
                Raised::Escalation(event_id, attempt) => {
                    if let Some(a) = self.assignment_mut(&event_id, attempt) {
                        a.escalated_to = None;
                    }
                }
            }
        }
    }

    fn department_figures(&self, period: Period) -> Vec<DepartmentFigures> {
        let now = self.catalog.now();
        let calendar = &self.catalog.calendar;
        let in_period = |at: DateTime<Utc>| period.contains(calendar.local_date(at));
        self.catalog
            .departments
            .iter()
            .map(|dept| {
                let cases: Vec<&CaseWatch> = self
                    .cases
                    .values()
                    .filter(|c| c.department == dept.code && in_period(c.accepted_at))
                    .collect();
                let case_items: Vec<Item> = cases
                    .iter()
                    .map(|c| Item {
                        received_at: c.accepted_at,
                        suspended_hours: c.paused_hours,
                        deadline: c.due_by,
                        finished_at: c.decided_at,
                        paused: c.suspended_since.is_some(),
                    })
                    .collect();
                let assignments: Vec<&Assignment> = self
                    .assignments()
                    .filter(|a| a.department == dept.code && in_period(a.dispatched_at))
                    .collect();
                let scores: Vec<u8> = cases.iter().filter_map(|c| c.rating).collect();
                DepartmentFigures {
                    department: dept.code.clone(),
                    name: dept.name.clone(),
                    cases: self.figures(&case_items, now),
                    collaborations: self.figures(&event_items(&assignments), now),
                    returns: assignments.iter().filter(|a| a.returned).count(),
                    escalations: assignments
                        .iter()
                        .filter(|a| a.escalated_to.is_some())
                        .count(),
                    ratings: RatingFigures {
                        count: scores.len(),
                        average: mean(scores.iter().map(|&s| f64::from(s))),
                    },
                }
            })
            .collect()
    }

    fn centre_figures(&self, period: Period) -> Vec<CentreFigures> {
        let now = self.catalog.now();
        let calendar = &self.catalog.calendar;
        let in_period = |a: &&Assignment| period.contains(calendar.local_date(a.dispatched_at));
        self.catalog
            .centres_in_order()
            .into_iter()
            .map(|centre| {
                let routed: Vec<&Assignment> = self
                    .assignments()
                    .filter(in_period)
                    .filter(|a| a.route.contains(&centre.code))
                    .collect();
                CentreFigures {
                    centre: centre.code.clone(),
                    name: centre.name.clone(),
                    tier: centre.tier,
                    events: self.figures(&event_items(&routed), now),
                    returns: routed
                        .iter()
                        .filter(|a| a.returned && a.dispatched_by == centre.code)
                        .count(),
                    escalations: self
                        .assignments()
                        .filter(in_period)
                        .filter(|a| a.escalated_to.as_deref() == Some(&centre.code))
                        .count(),
                }
            })
            .collect()
    }

    fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.events
            .values()
            .flat_map(|w| w.assignments.iter().flatten())
    }

    fn figures(&self, items: &[Item], now: DateTime<Utc>) -> Figures {
        let calendar = &self.catalog.calendar;
        let finished: Vec<(&Item, DateTime<Utc>)> = items
            .iter()
            .filter_map(|i| i.finished_at.map(|at| (i, at)))
            .collect();
        let on_time = finished.iter().filter(|(i, at)| *at < i.deadline).count();
        let mut hours: Vec<f64> = finished
            .iter()
            .map(|(i, at)| {
                (calendar.working_hours(i.received_at, *at) - i.suspended_hours).max(0.0)
            })
            .collect();
        hours.sort_by(f64::total_cmp);
        Figures {
            received: items.len(),
            completed: finished.len(),
            completed_on_time: on_time,
            on_time_rate: (!finished.is_empty()).then(|| on_time as f64 / finished.len() as f64),
            average_handling_hours: mean(hours.iter().copied()),
            p90_handling_hours: percentile(&hours, 0.9),
            open_overdue: items
                .iter()
                .filter(|i| i.finished_at.is_none() && !i.paused && now >= i.deadline)
                .count(),
        }
    }
}

/// A warning or escalation raised by a check, to unmark if its publish fails.
enum Raised {
    Case(CaseId, WarningLevel),
    Event(EventId, usize, WarningLevel),
    Escalation(EventId, usize),
}

/// A work item for the figures.
struct Item {
    received_at: DateTime<Utc>,
    /// Working hours the item spent suspended, waiting for the applicant: not handling time.
    suspended_hours: f64,
    deadline: DateTime<Utc>,
    /// Events that were returned are not finished, but no longer open either.
    finished_at: Option<DateTime<Utc>>,
    /// Not counted as overdue: suspended, or returned.
    paused: bool,
}

fn event_items(assignments: &[&Assignment]) -> Vec<Item> {
    assignments
        .iter()
        .map(|a| Item {
            received_at: a.dispatched_at,
            suspended_hours: 0.0,
            deadline: a.deadline,
            finished_at: a.answered_at,
            paused: a.returned,
        })
        .collect()
}

impl Period {
    fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
    }
}

/// The warning due now, if one is and it was not raised yet: red once overdue, yellow once
/// `yellow_at` of the time is used. A red warning supersedes a yellow one not yet raised.
fn due_level(
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    share: f64,
    yellow_at: f64,
    warned: &HashSet<WarningLevel>,
) -> Option<WarningLevel> {
    if warned.contains(&WarningLevel::Red) {
        return None;
    }
    if now >= deadline {
        return Some(WarningLevel::Red);
    }
    (share >= yellow_at && !warned.contains(&WarningLevel::Yellow)).then_some(WarningLevel::Yellow)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn supervision_envelope<T: Serialize>(
    id: MessageId,
    kind: MessageType,
    case_id: &CaseId,
    target: SystemId,
    trace_id: &str,
    data: &T,
    now: DateTime<Utc>,
) -> Envelope {
    Envelope::new_at(
        EnvelopeHead {
            id,
            kind,
            case_id: case_id.clone(),
            source: SystemId::Supervision,
            target,
            trace_id: trace_id.to_owned(),
        },
        data,
        now,
    )
}

/// Checks the deadlines now.
#[derive(Message)]
#[rtype(result = "()")]
struct Check;

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16_384);
        let every = Duration::from_millis(self.catalog.supervision.check_interval_ms);
        ctx.run_interval(every, |_, ctx| ctx.notify(Check));
    }
}

impl Handler<Check> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Check, _: &mut Self::Context) -> Self::Result {
        if self.checking {
            return Box::pin(fut::ready(()));
        }
        let (outputs, raised) = self.check();
        if outputs.is_empty() {
            return Box::pin(fut::ready(()));
        }
        tracing::info!(
            count = outputs.len(),
            "deadline warnings and escalations raised"
        );
        self.checking = true;
        Box::pin(
            publish(&self.bridge, outputs)
                .into_actor(self)
                .map(|published, supervisor, _| {
                    supervisor.checking = false;
                    if let Err(error) = published {
                        tracing::warn!(%error, "warnings not published; the next check raises them again");
                        supervisor.unraise(raised);
                    }
                }),
        )
    }
}

impl Handler<Inbound> for Supervisor {
    type Result = Result<(), HandleError>;

    fn handle(&mut self, msg: Inbound, _: &mut Self::Context) -> Self::Result {
        let envelope = &msg.0;
        self.observe(envelope).map_err(|error| {
            self.seen.remove(&envelope.id);
            HandleError::Poison(error.to_string())
        })
    }
}

impl Handler<GetDepartmentFigures> for Supervisor {
    type Result = MessageResult<GetDepartmentFigures>;

    fn handle(&mut self, msg: GetDepartmentFigures, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.department_figures(msg.0))
    }
}

impl Handler<GetCentreFigures> for Supervisor {
    type Result = MessageResult<GetCentreFigures>;

    fn handle(&mut self, msg: GetCentreFigures, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.centre_figures(msg.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentile() {
        let hours = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&hours, 0.9), Some(9.0));
        assert_eq!(percentile(&[4.0], 0.9), Some(4.0));
        assert_eq!(percentile(&[], 0.9), None);
    }

    #[test]
    fn red_supersedes_a_yellow_not_yet_raised_and_each_is_raised_once() {
        let deadline = Utc::now();
        let before = deadline - chrono::Duration::hours(1);
        let mut warned = HashSet::new();
        assert_eq!(due_level(before, deadline, 0.5, 0.8, &warned), None);
        assert_eq!(
            due_level(before, deadline, 0.85, 0.8, &warned),
            Some(WarningLevel::Yellow)
        );
        warned.insert(WarningLevel::Yellow);
        assert_eq!(due_level(before, deadline, 0.9, 0.8, &warned), None);
        assert_eq!(
            due_level(deadline, deadline, 1.0, 0.8, &warned),
            Some(WarningLevel::Red)
        );
        warned.insert(WarningLevel::Red);
        assert_eq!(due_level(deadline, deadline, 1.0, 0.8, &warned), None);
    }
}
