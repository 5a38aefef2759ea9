//! Finds the system a request is for, or refuses it and says why there is none here: this
//! process does not run that system (`not_served_here`; another process of the city does), the
//! department is an external system, or nothing of that name is configured.

use super::error::{ApiError, Result};
use crate::domain::DepartmentCode;
use crate::systems::{DepartmentDesk, Systems};

/// Refuses a request for `system` unless this process runs it (`runs`).
pub(super) fn served(systems: &Systems, runs: bool, system: &str) -> Result<()> {
    if runs {
        Ok(())
    } else {
        Err(not_served(systems, system))
    }
}

/// The refusal of a request for a system this process does not run.
fn not_served(systems: &Systems, system: &str) -> ApiError {
    let roles: Vec<String> = systems
        .settings
        .service
        .roles
        .iter()
        .map(ToString::to_string)
        .collect();
    ApiError::not_found(
        "not_served_here",
        format!(
            "this process does not run {system} (its roles: {}); ask a process that does",
            roles.join(",")
        ),
    )
}

/// The desk of the manual department `code`.
pub(super) fn department<'a>(
    systems: &'a Systems,
    code: &DepartmentCode,
) -> Result<&'a DepartmentDesk> {
    systems.desks.departments.get(code).ok_or_else(|| {
        match systems.catalog.department(code).map(|d| d.external) {
            Some(false) => not_served(systems, &format!("department `{code}`")),
            Some(true) => ApiError::not_found(
                "external_department",
                format!("department `{code}` is an external system; it has no inbox here"),
            ),
            None => ApiError::not_found(
                "unknown_department",
                format!("no department `{code}`; GET /api/v1/departments lists them"),
            ),
        }
    })
}
