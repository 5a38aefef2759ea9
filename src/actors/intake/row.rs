//! The case repository's row of a case, built from its view, and handing it to the
//! [`CaseWriter`] after every change. The messages delivered to the intake system in one pass
//! of its mailbox — a consumer hands on many records at once — often change one case several
//! times; its row is then built once, when the first of their handlings ends, and still before
//! any of their offsets is handed on.

use super::view::CaseView;
use super::IntakeSystem;
use crate::domain::CaseId;
use crate::store::{CaseRow, JsonText};

impl CaseRow {
    /// The row of `view`, whose messages carry `trace_id`, with the messages of its current
    /// step (`trail`, while it is open): the columns the repository filters and orders on, and the whole view
    /// as JSON with the applicant block sealed, as on the bus — personal data does not rest in
    /// clear in the database either.
    pub fn from_view(
        view: &CaseView,
        trace_id: &str,
        trail: Option<JsonText>,
    ) -> Result<CaseRow, serde_json::Error> {
        let application = &view.application;
        // The history is kept in time order: its last entry is the latest change.
        let updated_at = view
            .history
            .last()
            .map_or(application.submitted_at, |entry| entry.at);
        Ok(CaseRow {
            case_id: view.case_id.to_string(),
            owner: application.owner.clone(),
            terminal_id: application.terminal_id.to_string(),
            matter_code: application.matter_code.to_string(),
            department: view.receipt.as_ref().map(|r| r.department.to_string()),
            status: view.status.as_str().to_owned(),
            submitted_at: application.submitted_at,
            updated_at,
            // Every message observed adds an entry: the count only rises.
            revision: i64::try_from(view.history.len()).unwrap_or(i64::MAX),
            trace_id: trace_id.to_owned(),
            view: JsonText::of(view)?,
            trail,
        })
    }
}

impl IntakeSystem {
    /// The view of `case_id` changed while handling a delivered message: its row is handed
    /// to the writer by [`write_due_rows`](Self::write_due_rows), which the message's handling
    /// runs before it ends, so that the row is on its way before the record's offset.
    pub(super) fn changed_soon(&mut self, case_id: &CaseId) {
        if self.repository.is_some() && !self.is_foreign(case_id) {
            self.rows_due.insert(case_id.clone());
            self.touch(case_id);
        }
    }

    /// Hands the row of every case changed since the last call to the writer, and lets the
    /// open cases that changed longest ago leave memory if too many are in it.
    pub(super) fn write_due_rows(&mut self) {
        for case_id in std::mem::take(&mut self.rows_due) {
            self.changed(&case_id);
        }
        self.make_room();
    }

    /// Hands the row of `case_id` to the writer now if it is due: the case is about to leave
    /// memory.
    pub(super) fn write_due_row(&mut self, case_id: &CaseId) {
        if self.rows_due.remove(case_id) {
            self.changed(case_id);
        }
    }

    /// The view of `case_id` changed: hands its row to the writer, when there is one.
    /// Another intake process's case is written by that process alone.
    pub(super) fn changed(&self, case_id: &CaseId) {
        let (Some(repository), Some(record)) = (&self.repository, self.cases.get(case_id)) else {
            return;
        };
        if self.is_foreign(case_id) {
            return;
        }
        let trail = self.trails.stored(case_id);
        match CaseRow::from_view(&record.view, record.trace_id.as_str(), trail) {
            Ok(row) => repository.writer.write(row),
            // A view is plain data and strings: it always serialises; were it not to, the
            // case would be missing from lists, which the log says.
            Err(error) => {
                tracing::error!(%case_id, %error, "the case's row cannot be built; not written")
            }
        }
    }
}
