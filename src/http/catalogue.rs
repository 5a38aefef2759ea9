//! The city's configuration as dashboards and terminals read it: matters, terminals,
//! departments and the tree of governance centres. Every process answers these, whatever its
//! roles, from the catalogue it was configured with.

use crate::catalog::Catalog;
use crate::domain::CentreCode;
use crate::systems::Systems;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Mounts the endpoints under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/matters", web::get().to(matters))
        .route("/terminals", web::get().to(terminals))
        .route("/departments", web::get().to(departments))
        .route("/governance/centers", web::get().to(centres));
}

/// Every matter an applicant can apply for.
async fn matters(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(&systems.catalog.matters)
}

/// Every terminal applications can be submitted at.
async fn terminals(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(&systems.catalog.terminals)
}

/// Every department, with how it decides and whether it is an external system.
async fn departments(systems: web::Data<Systems>) -> HttpResponse {
    let list: Vec<_> = systems
        .catalog
        .departments
        .iter()
        .map(|d| {
            json!({
                "code": d.code, "name": d.name, "tier": d.tier, "mode": d.mode,
                "external": d.external,
            })
        })
        .collect();
    HttpResponse::Ok().json(list)
}

/// The governance centres as a tree, from the city centre down.
async fn centres(systems: web::Data<Systems>) -> HttpResponse {
    HttpResponse::Ok().json(centre_tree(&systems.catalog, &systems.catalog.city))
}

/// The centre `code` with its children, recursively; `null` for an unknown code.
fn centre_tree(catalog: &Catalog, code: &CentreCode) -> serde_json::Value {
    let Some(centre) = catalog.centre(code) else {
        return serde_json::Value::Null;
    };
    let children: Vec<_> = centre
        .children
        .iter()
        .map(|c| centre_tree(catalog, c))
        .collect();
    json!({ "code": centre.code, "name": centre.name, "tier": centre.tier, "children": children })
}
