//! The supervision figures computed by SQL from the case repository's rows (see `rows`): the
//! same numbers as the supervisor's own figures, for a process that keeps a repository.
//!
//! The database selects the period, counts and sorts ([`CaseRepository::department_tallies`],
//! [`CaseRepository::centre_tallies`]); [`summarise`] turns each tally into figures exactly as
//! the supervisor does for its own, and the catalog gives the names and the order.

use super::figures::summarise;
use super::messages::{CentreFigures, DepartmentFigures, Period, RatingFigures};
use crate::catalog::Catalog;
use crate::store::supervision::{CentreTally, DepartmentTally};
use crate::store::{CaseRepository, FigureScope, StoreError};

/// Every department's figures over `period`, in the catalog's order, from `repository`.
pub async fn stored_department_figures(
    repository: &CaseRepository,
    catalog: &Catalog,
    period: Period,
) -> Result<Vec<DepartmentFigures>, StoreError> {
    let mut tallies = repository
        .department_tallies(&scope(catalog, period))
        .await?;
    Ok(catalog
        .departments
        .iter()
        .map(|dept| {
            let tally = tallies.remove(dept.code.as_str()).unwrap_or_default();
            department_figures(dept.code.clone(), dept.name.clone(), tally)
        })
        .collect())
}

/// Every centre's figures over `period`, city first, then each district followed by its
/// streets, from `repository`.
pub async fn stored_centre_figures(
    repository: &CaseRepository,
    catalog: &Catalog,
    period: Period,
) -> Result<Vec<CentreFigures>, StoreError> {
    let mut tallies = repository.centre_tallies(&scope(catalog, period)).await?;
    Ok(catalog
        .centres_in_order()
        .into_iter()
        .map(|centre| {
            let tally: CentreTally = tallies.remove(centre.code.as_str()).unwrap_or_default();
            CentreFigures {
                centre: centre.code.clone(),
                name: centre.name.clone(),
                tier: centre.tier,
                events: summarise(&tally.events),
                returns: tally.returns,
                escalations: tally.escalations,
            }
        })
        .collect())
}

/// What the figures over `period` select, looked at now.
fn scope(catalog: &Catalog, period: Period) -> FigureScope {
    FigureScope {
        from: period.from,
        to: period.to,
        now: catalog.now(),
    }
}

/// A department's figures from its tally.
fn department_figures(
    department: crate::domain::DepartmentCode,
    name: String,
    tally: DepartmentTally,
) -> DepartmentFigures {
    DepartmentFigures {
        department,
        name,
        cases: summarise(&tally.cases),
        collaborations: summarise(&tally.collaborations),
        returns: tally.returns,
        escalations: tally.escalations,
        ratings: RatingFigures {
            count: tally.rated,
            // Scores are 1–5: their sum is exact in an `f64`, as the supervisor's own mean.
            average: (tally.rated > 0).then(|| tally.rating_sum as f64 / tally.rated as f64),
        },
    }
}
