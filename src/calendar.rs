//! The working calendar (工作日历): which days count towards a promised deadline, and how many
//! working hours lie between two instants.
//!
//! A day is a working day when config lists it as a make-up working day (调休上班), or when it
//! is a Monday to Friday that config does not list as a holiday. Deadlines are counted in whole
//! working days in the city's local time: a matter promised in `n` working days and accepted on
//! day D is due by the end of the `n`-th working day after D. Handling times and the share of a
//! deadline already used are measured in working hours: the office hours of working days.

use crate::settings::CalendarSettings;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use std::collections::BTreeSet;

/// The city's working calendar.
#[derive(Debug, Clone)]
pub struct WorkingCalendar {
    /// The city's local time.
    offset: FixedOffset,
    /// When offices open on a working day (local time).
    opens: NaiveTime,
    /// When they close.
    closes: NaiveTime,
    /// Weekdays that are holidays.
    holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are working days.
    workdays: BTreeSet<NaiveDate>,
}

impl WorkingCalendar {
    /// The calendar config describes (already validated).
    pub fn new(settings: &CalendarSettings) -> Self {
        Self {
            offset: settings.utc_offset.0,
            opens: settings.office_opens.0,
            closes: settings.office_closes.0,
            holidays: settings.holidays.iter().copied().collect(),
            workdays: settings.workdays.iter().copied().collect(),
        }
    }

    /// The local date of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.offset).date_naive()
    }

    /// Whether `day` counts towards deadlines.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.workdays.contains(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&day)
    }

    /// The `n`-th working day after `day` (`day` itself when `n` is 0).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut current = day;
        let mut left = n;
        while left > 0 {
            current = current.succ_opt().unwrap_or(current);
            if self.is_working_day(current) {
                left -= 1;
            }
        }
        current
    }

    /// Working days `d` with `from < d <= to`: how many working days a period from one day to
    /// a later one took away from the clock.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = day.succ_opt().unwrap_or(to);
            if self.is_working_day(day) {
                count += 1;
            }
        }
        count
    }

    /// The instant a day ends in local time: anything before it happened on that day or earlier.
    pub fn end_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let next = day.succ_opt().unwrap_or(day);
        self.at_local(next, NaiveTime::MIN)
    }

    /// The deadline of something started at `start` and promised in `days` working days: the
    /// end of the `days`-th working day after the start's day.
    pub fn due_by(&self, start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        self.end_of(self.add_working_days(self.local_date(start), days))
    }

    /// The day a deadline (from [`due_by`](Self::due_by)) falls on.
    pub fn due_date(&self, due_by: DateTime<Utc>) -> NaiveDate {
        self.local_date(due_by - Duration::nanoseconds(1))
    }

    /// A deadline moved by `days` more working days.
    pub fn extend(&self, due_by: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        self.end_of(self.add_working_days(self.due_date(due_by), days))
    }

    /// Office hours on working days between two instants, in hours.
    pub fn working_hours(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        if to <= from {
            return 0.0;
        }
        let mut total = Duration::zero();
        let mut day = self.local_date(from);
        let last = self.local_date(to);
        while day <= last {
            if self.is_working_day(day) {
                let opens = self.at_local(day, self.opens).max(from);
                let closes = self.at_local(day, self.closes).min(to);
                if closes > opens {
                    total += closes - opens;
                }
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        total.num_seconds() as f64 / 3600.0
    }

    /// The share of the time from `start` to `due_by` used by `now`, in working hours: 0 at the
    /// start, 1 at the deadline. A deadline with no working hours before it counts as used up.
    pub fn share_used(
        &self,
        start: DateTime<Utc>,
        due_by: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> f64 {
        self.share_used_pausing(start, due_by, now, 0.0)
    }

    /// [`share_used`](Self::share_used) of a clock that was stopped for `paused_hours` working
    /// hours between `start` and `now` (a case suspended for supplementary materials): those
    /// hours count neither as used nor as allowed.
    pub fn share_used_pausing(
        &self,
        start: DateTime<Utc>,
        due_by: DateTime<Utc>,
        now: DateTime<Utc>,
        paused_hours: f64,
    ) -> f64 {
        let allowed = self.working_hours(start, due_by) - paused_hours;
        if allowed <= 0.0 {
            return 1.0;
        }
        let used = (self.working_hours(start, now) - paused_hours).max(0.0) / allowed;
        if now >= due_by {
            used.max(1.0)
        } else {
            used
        }
    }

    fn at_local(&self, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        // A fixed offset has no gaps or folds: every local time maps to exactly one instant.
        match self.offset.from_local_datetime(&day.and_time(time)) {
            chrono::LocalResult::Single(at) => at.with_timezone(&Utc),
            _ => Utc.from_utc_datetime(&day.and_time(time)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{LocalTime, UtcOffset};

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Beijing time, 09:00–17:00, with the 2026 National Day holiday and its make-up days.
    fn calendar() -> WorkingCalendar {
        WorkingCalendar::new(&CalendarSettings {
            utc_offset: UtcOffset(FixedOffset::east_opt(8 * 3600).unwrap()),
            office_opens: LocalTime(NaiveTime::from_hms_opt(9, 0, 0).unwrap()),
            office_closes: LocalTime(NaiveTime::from_hms_opt(17, 0, 0).unwrap()),
            holidays: (1..=7)
                .map(|d| NaiveDate::from_ymd_opt(2026, 10, d).unwrap())
                .collect(),
            workdays: vec![date("2026-09-20"), date("2026-10-10")],
        })
    }

    fn local(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekends_holidays_and_make_up_days() {
        let cal = calendar();
        assert!(cal.is_working_day(date("2026-11-26")), "a Thursday");
        assert!(!cal.is_working_day(date("2026-11-28")), "a Saturday");
        assert!(
            !cal.is_working_day(date("2026-10-05")),
            "a Monday in the holiday"
        );
        assert!(cal.is_working_day(date("2026-10-10")), "a make-up Saturday");
    }

    #[test]
    fn deadlines_skip_weekends_and_holidays() {
        let cal = calendar();
        // Accepted Thursday 26 Nov, 3 working days: Fri 27, Mon 30, Tue 1 Dec.
        let due = cal.due_by(local("2026-11-26T10:00:00+08:00"), 3);
        assert_eq!(cal.due_date(due), date("2026-12-01"));
        assert_eq!(due, local("2026-12-02T00:00:00+08:00"));
        // Accepted Wed 30 Sep, 2 working days: the holiday runs to 7 Oct; Thu 8, Fri 9.
        let due = cal.due_by(local("2026-09-30T16:00:00+08:00"), 2);
        assert_eq!(cal.due_date(due), date("2026-10-09"));
        // One more: the make-up Saturday 10 Oct.
        assert_eq!(cal.due_date(cal.extend(due, 1)), date("2026-10-10"));
    }

    #[test]
    fn suspended_days_count_only_working_days() {
        let cal = calendar();
        // Suspended Friday, resumed Monday: only Monday was lost.
        assert_eq!(
            cal.working_days_between(date("2026-11-27"), date("2026-11-30")),
            1
        );
        assert_eq!(
            cal.working_days_between(date("2026-11-27"), date("2026-11-27")),
            0
        );
        assert_eq!(
            cal.working_days_between(date("2026-09-30"), date("2026-10-10")),
            3
        );
    }

    #[test]
    fn working_hours_count_office_hours_of_working_days() {
        let cal = calendar();
        let from = local("2026-11-27T15:00:00+08:00"); // Friday
        let to = local("2026-11-30T10:30:00+08:00"); // Monday
        assert!((cal.working_hours(from, to) - 3.5).abs() < 1e-9);
        assert_eq!(cal.working_hours(to, from), 0.0);
    }

    #[test]
    fn share_used_reaches_one_at_the_deadline() {
        let cal = calendar();
        let start = local("2026-11-26T09:00:00+08:00");
        let due = cal.due_by(start, 1); // end of Friday: 16 office hours
        let half = local("2026-11-26T17:00:00+08:00");
        assert!((cal.share_used(start, due, half) - 0.5).abs() < 1e-9);
        assert!(cal.share_used(start, due, due) >= 1.0);
    }

    #[test]
    fn paused_hours_count_neither_as_used_nor_as_allowed() {
        let cal = calendar();
        // Thu 26 Nov 09:00 to the end of Mon 30 Nov: 24 office hours; 8 of them paused (Fri).
        let start = local("2026-11-26T09:00:00+08:00");
        let due = cal.due_by(start, 2);
        let now = local("2026-11-30T09:00:00+08:00");
        assert!((cal.share_used_pausing(start, due, now, 8.0) - 0.5).abs() < 1e-9);
        assert!((cal.share_used(start, due, now) - 16.0 / 24.0).abs() < 1e-9);
    }
}
