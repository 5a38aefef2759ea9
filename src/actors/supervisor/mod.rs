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
//! With a case repository on a bus that outlives the process it does not read them again: it
//! takes back its open records, with the warnings and escalations already raised, and its view
//! group resumes from the offsets stored with its rows; a case whose supervision is over leaves
//! memory and is read back when a message comes for it (`resident`). Each message is applied
//! once per case, recognised by its id, kept in memory while the case is and in the repository
//! for when it is not.
//! A suspended case raises no warning: its clock is stopped, and once it resumes the working
//! hours it was suspended count neither as used nor as allowed time.
//!
//! It also answers the supervision figures ([`GetDepartmentFigures`], [`GetCentreFigures`]).
//! When the process keeps a case repository, it hands the rows of the records it changed to
//! the repository's writer after every message and every check, and the same figures are
//! computed from them by SQL ([`stored_department_figures`], [`stored_centre_figures`]).
//!
//! # Layout
//!
//! * `messages` — what it takes: the figure requests, their answers, and its own timer tick.
//! * `records` — what it keeps per case and per dispatch of an event.
//! * this file — the actor's state and its start-up.
//! * `observe` — one function per bus message type that says something about a deadline.
//! * `check` — the periodic deadline check: warnings for cases and events, escalations.
//! * `figures` — the supervision figures.
//! * `rows` — the case repository's rows of its records, handed to the writer after every
//!   change, and the records rebuilt from them.
//! * `resident` — which cases stay in memory with a repository: taken back at start, read
//!   back for a message, leaving once their supervision is over.
//! * `stored` — the same figures computed by SQL from those rows.

mod check;
mod figures;
mod messages;
mod observe;
mod records;
mod resident;
mod rows;
mod stored;
#[cfg(test)]
mod tests;

pub use stored::{stored_centre_figures, stored_department_figures};

pub use messages::{
    CentreFigures, DepartmentFigures, Figures, GetCentreFigures, GetDepartmentFigures, Holding,
    Period, RatingFigures, TakeBackRecords, Watched,
};

use crate::catalog::Catalog;
use crate::domain::{CaseId, EventId};
use crate::maps::Map;
use crate::port::Publish;
use crate::store::CaseWriter;
use actix::prelude::*;
use messages::Check;
use records::{CaseWatch, EventWatch, Held};
use resident::Resident;
use std::sync::Arc;
use std::time::Duration;

/// The supervision system.
pub struct Supervisor {
    /// The city, its calendar and clock, and the supervision rules.
    catalog: Arc<Catalog>,
    /// Where warnings and escalations go.
    bridge: Recipient<Publish>,
    /// Cases by id.
    cases: Map<CaseId, CaseWatch>,
    /// Events by id.
    events: Map<EventId, EventWatch>,
    /// What it holds of each case in memory besides its records: the ids of the messages
    /// applied, the events that help it.
    held: Map<CaseId, Held>,
    /// A check's warnings are being published.
    checking: bool,
    /// Where the rows of changed records go, when the process keeps a case repository.
    rows: Option<CaseWriter>,
    /// The records changed since their rows were last handed on.
    changed: rows::Changed,
    /// When it keeps only open cases in memory: where the others are read back from, and
    /// which are leaving.
    resident: Option<Resident>,
}

impl Supervisor {
    /// A supervisor that has seen nothing yet.
    pub fn new(catalog: Arc<Catalog>, bridge: Recipient<Publish>) -> Self {
        Self {
            catalog,
            bridge,
            cases: Map::default(),
            events: Map::default(),
            held: Map::default(),
            checking: false,
            rows: None,
            changed: rows::Changed::default(),
            resident: None,
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16_384);
        let every = Duration::from_millis(self.catalog.supervision.check_interval_ms);
        ctx.run_interval(every, |_, ctx| ctx.notify(Check));
    }
}
