//! The case repository's row of a case, built from its view, and handing it to the
//! [`CaseWriter`] after every change.

use super::view::CaseView;
use super::IntakeSystem;
use crate::domain::CaseId;
use crate::store::{CaseRow, CaseWriter};

impl CaseRow {
    /// The row of `view`: the columns the repository filters and orders on, and the whole view
    /// as JSON with the applicant block sealed, as on the bus — personal data does not rest in
    /// clear in the database either.
    pub fn from_view(view: &CaseView) -> Result<CaseRow, serde_json::Error> {
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
            status: status_name(view)?,
            submitted_at: application.submitted_at,
            updated_at,
            view: serde_json::to_value(view)?,
        })
    }
}

/// The view's status as its JSON name (`accepted`, …).
fn status_name(view: &CaseView) -> Result<String, serde_json::Error> {
    let name = serde_json::to_value(view.status)?;
    Ok(name.as_str().unwrap_or_default().to_owned())
}

impl IntakeSystem {
    /// The same intake system, handing the row of every case whose view changes to `writer`.
    pub fn writing_rows_to(mut self, writer: CaseWriter) -> Self {
        self.rows = Some(writer);
        self
    }

    /// The view of `case_id` changed: hands its row to the writer, when there is one.
    pub(super) fn changed(&self, case_id: &CaseId) {
        let (Some(writer), Some(record)) = (&self.rows, self.cases.get(case_id)) else {
            return;
        };
        match CaseRow::from_view(&record.view) {
            Ok(row) => writer.write(row),
            // A view is plain data and strings: it always serialises; were it not to, the
            // case would be missing from lists, which the log says.
            Err(error) => {
                tracing::error!(%case_id, %error, "the case's row cannot be built; not written")
            }
        }
    }
}
