//! The city's configuration as dashboards and terminals read it: matters, terminals,
//! departments and the tree of governance centres. Every process answers these, whatever its
//! roles, from the catalogue it was configured with.

use crate::catalog::Catalog;
use crate::domain::{CentreCode, DepartmentCode, Mode, Tier};
use crate::settings::{MatterSettings, TerminalSettings};
use crate::systems::Systems;
use actix_web::{web, HttpResponse};
use serde::Serialize;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/matters", web::get().to(matters))
        .route("/terminals", web::get().to(terminals))
        .route("/departments", web::get().to(departments))
        .route("/governance/centers", web::get().to(centres));
}

/// Every matter an applicant can apply for.
#[utoipa::path(
    get,
    path = "/api/v1/matters",
    tag = "catalogue",
    responses((status = 200, description = "The matters, in configuration order", body = Vec<MatterSettings>))
)]
async fn matters(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(&systems.catalog.matters)
}

/// Every terminal applications can be submitted at.
#[utoipa::path(
    get,
    path = "/api/v1/terminals",
    tag = "catalogue",
    responses((status = 200, description = "The terminals, in configuration order", body = Vec<TerminalSettings>))
)]
async fn terminals(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(&systems.catalog.terminals)
}

/// A department as the catalogue shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct DepartmentEntry<'a> {
    /// Department code.
    code: &'a DepartmentCode,
    /// Its name.
    name: &'a str,
    /// The tier it sits at.
    tier: Tier,
    /// `auto` (rules decide) or `manual` (staff decide through this API).
    mode: Mode,
    /// An outside system plays it through Kafka alone: it has no inbox here.
    external: bool,
}

/// Every department, with how it decides and whether it is an external system.
#[utoipa::path(
    get,
    path = "/api/v1/departments",
    tag = "catalogue",
    responses((status = 200, description = "The departments, in configuration order", body = Vec<DepartmentEntry>))
)]
async fn departments(systems: web::Data<Systems>) -> HttpResponse {
    let list: Vec<_> = systems
        .catalog
        .departments
        .iter()
        .map(|d| DepartmentEntry {
            code: &d.code,
            name: &d.name,
            tier: d.tier,
            mode: d.mode,
            external: d.external,
        })
        .collect();
    HttpResponse::Ok().json(list)
}

/// A governance centre with the centres under it.
#[derive(Serialize, utoipa::ToSchema)]
struct CentreNode<'a> {
    /// Centre code (a region code).
    code: &'a CentreCode,
    /// Its name.
    name: &'a str,
    /// Its tier.
    tier: Tier,
    /// The centres one tier down.
    #[schema(no_recursion)]
    children: Vec<CentreNode<'a>>,
}

/// The governance centres as a tree, from the city centre down.
#[utoipa::path(
    get,
    path = "/api/v1/governance/centers",
    tag = "catalogue",
    responses((status = 200, description = "The city centre, its districts and their streets", body = CentreNode))
)]
async fn centres(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(centre_tree(&systems.catalog, &systems.catalog.city))
}

/// The centre `code` with its children, recursively; none for a code the catalogue does not
/// know (a validated configuration has none).
fn centre_tree<'a>(catalog: &'a Catalog, code: &CentreCode) -> Option<CentreNode<'a>> {
    let centre = catalog.centre(code)?;
    let children = centre
        .children
        .iter()
        .filter_map(|c| centre_tree(catalog, c))
        .collect();
    Some(CentreNode {
        code: &centre.code,
        name: &centre.name,
        tier: centre.tier,
        children,
    })
}
