//! How a department judges a case: the materials check, and the decision — by rule for an
//! `auto` department, as staff say for a `manual` one.

use super::state::{DeptCase, Stage};
use super::Department;
use crate::actors::BusSystem;
use crate::domain::{
    message_ids, Approval, ApprovalStep, CollaborationOutcome, Decision, Envelope, MessageType,
    Outcome, StepKind,
};

impl Department {
    /// The materials-check step: how many were required, and which are missing.
    pub(super) fn materials_step(&self, required: usize, missing: &[String]) -> ApprovalStep {
        self.step(
            StepKind::MaterialsChecked,
            if missing.is_empty() {
                format!("all {required} required materials present")
            } else {
                format!("missing required materials: {}", missing.join(", "))
            },
        )
    }

    /// Decides a case: by rule when `staff` is none, else as staff said. Returns the approval
    /// and the message that publishes it.
    pub(super) fn decide(
        &self,
        case: &mut DeptCase,
        staff: Option<(Decision, String)>,
    ) -> (Approval, Envelope) {
        let (decision, reasons) = match staff {
            Some((decision, opinion)) => (decision, vec![opinion]),
            None => self.rule_outcome(case),
        };
        case.add_step(self.step(
            StepKind::Decided,
            format!(
                "{}: {}",
                match decision {
                    Decision::Approved => "准予 approved",
                    Decision::Rejected => "不予 rejected",
                },
                reasons.join("; ")
            ),
        ));
        case.stage = Stage::Decided;
        let approval = Approval {
            department: self.settings.code.clone(),
            matter_code: case.application.matter_code.clone(),
            receipt_no: case.receipt.receipt_no.clone(),
            receipt: Some(case.receipt.clone()),
            steps: case.steps.clone(),
            outcome: Outcome { decision, reasons },
        };
        let envelope = self.sender().message(
            message_ids::approval(&case.application.case_id),
            MessageType::ApprovalPublished,
            &case.application.case_id,
            self.city(),
            case.trace_id.as_str(),
            &approval,
        );
        (approval, envelope)
    }

    /// The automatic rule: every required material present and every collaborator agreeing.
    fn rule_outcome(&self, case: &DeptCase) -> (Decision, Vec<String>) {
        let mut reasons: Vec<String> = case
            .missing
            .iter()
            .map(|m| format!("missing required material: {m}"))
            .collect();
        for result in &case.results {
            if result.outcome == CollaborationOutcome::Disagree {
                reasons.push(format!(
                    "{} ({}) disagrees: {}",
                    self.catalog.department_name(&result.department),
                    result.department,
                    result.opinion
                ));
            }
        }
        if reasons.is_empty() {
            let mut approved = vec!["all required materials present".to_owned()];
            if !case.results.is_empty() {
                let names: Vec<_> = case
                    .results
                    .iter()
                    .map(|r| self.catalog.department_name(&r.department))
                    .collect();
                approved.push(format!(
                    "collaborating departments agree: {}",
                    names.join(", ")
                ));
            }
            (Decision::Approved, approved)
        } else {
            (Decision::Rejected, reasons)
        }
    }
}

/// Required materials an application lacks.
pub(super) fn missing_materials(required: &[String], handed_in: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|m| !handed_in.contains(m))
        .cloned()
        .collect()
}
