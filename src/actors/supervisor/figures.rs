//! The supervision figures: counts, on-time rates and handling times per department and per
//! centre, over the items received in a period.

use super::messages::{
    CentreFigures, DepartmentFigures, Figures, GetCentreFigures, GetDepartmentFigures, Period,
    RatingFigures,
};
use super::records::{Assignment, CaseWatch};
use super::Supervisor;
use crate::calendar::WorkingCalendar;
use crate::store::supervision::Tally;
use actix::prelude::*;
use chrono::{DateTime, Utc};

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

/// A work item for the figures.
struct Item {
    /// When it was received (a case accepted, an event dispatched).
    received_at: DateTime<Utc>,
    /// Working hours the item spent suspended, waiting for the applicant: not handling time.
    suspended_hours: f64,
    /// Its deadline.
    deadline: DateTime<Utc>,
    /// Events that were returned are not finished, but no longer open either.
    finished_at: Option<DateTime<Utc>>,
    /// Not counted as overdue: suspended, or returned.
    paused: bool,
}

impl Supervisor {
    /// Every department's figures, in the catalog's order.
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
                let case_items: Vec<Item> = cases.iter().map(|c| case_item(c)).collect();
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

    /// Every centre's figures, city first, then each district followed by its streets.
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
                        .filter(|a| a.escalated_to.as_ref() == Some(&centre.code))
                        .count(),
                }
            })
            .collect()
    }

    /// Every dispatch of every event.
    fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.events
            .values()
            .flat_map(|w| w.assignments.iter().flatten())
    }

    /// The figures of a set of items, with `now` deciding what is overdue.
    fn figures(&self, items: &[Item], now: DateTime<Utc>) -> Figures {
        let calendar = &self.catalog.calendar;
        let finished: Vec<(&Item, DateTime<Utc>)> = items
            .iter()
            .filter_map(|i| i.finished_at.map(|at| (i, at)))
            .collect();
        let mut hours: Vec<f64> = finished
            .iter()
            .map(|(i, at)| handling_hours(calendar, i.received_at, *at, i.suspended_hours))
            .collect();
        hours.sort_by(f64::total_cmp);
        summarise(&Tally {
            received: items.len(),
            completed: finished.len(),
            completed_on_time: finished.iter().filter(|(i, at)| *at < i.deadline).count(),
            open_overdue: items
                .iter()
                .filter(|i| i.finished_at.is_none() && !i.paused && now >= i.deadline)
                .count(),
            hours,
        })
    }
}

/// The figures of a tally: its counts, the on-time rate, and the mean and 90th percentile of
/// its handling hours (sorted ascending).
pub(super) fn summarise(tally: &Tally) -> Figures {
    let (completed, on_time) = (tally.completed, tally.completed_on_time);
    Figures {
        received: tally.received,
        completed,
        completed_on_time: on_time,
        on_time_rate: (completed > 0).then(|| on_time as f64 / completed as f64),
        average_handling_hours: mean(tally.hours.iter().copied()),
        p90_handling_hours: percentile(&tally.hours, 0.9),
        open_overdue: tally.open_overdue,
    }
}

/// The working hours an item took from `received_at` to `finished_at`, less the working hours
/// it spent suspended; never below zero.
pub(super) fn handling_hours(
    calendar: &WorkingCalendar,
    received_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    suspended_hours: f64,
) -> f64 {
    (calendar.working_hours(received_at, finished_at) - suspended_hours).max(0.0)
}

/// A case as a work item: received when accepted, finished when decided.
fn case_item(case: &CaseWatch) -> Item {
    Item {
        received_at: case.accepted_at,
        suspended_hours: case.paused_hours,
        deadline: case.due_by,
        finished_at: case.decided_at,
        paused: case.suspended_since.is_some(),
    }
}

/// Dispatches as work items: received when dispatched, finished when answered.
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

/// The mean of some values; none when there are none.
pub(super) fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    // `rank` is clamped to 1..=len and the slice is not empty, so the index is in bounds.
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
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
}
