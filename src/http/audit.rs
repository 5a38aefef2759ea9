//! The audit middleware (see [`crate::audit`]): one record per state-changing request (every
//! `POST` under `/api/v1`, whatever its answer) and per read that shows personal data in
//! clear, saying who, from where, what, about which ids, and with what result.
//!
//! Which reads show personal data in clear is said by the handler that answers them: it marks
//! its answer with `access::ClearRead` (a case read with `Sight::Full`, a department's inbox).
//! A masked read is not recorded. Only the routes of [`ACTIONS`] that can answer such a read
//! are looked at.
//!
//! The record never holds the applicant's personal data: ids come from the path (a new
//! submission's case id from the answer), an applicant is named by their account (`sub`)
//! only, and bodies are not copied.

use super::access::ClearRead;
use crate::audit::{Entry, Ids, Who};
use crate::auth::{Grant, Principal};
use crate::systems::Systems;
use actix_web::body::{self, BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest as _};
use bytes::Bytes;
use std::net::IpAddr;

/// The largest answer body read for its error code or case id; answers of audited requests
/// are small JSON, and a larger or streamed one is passed on unread, with neither recorded.
const ANSWER_READ_LIMIT: usize = 64 * 1024;

/// The action names of the audited routes, by method and route pattern.
const ACTIONS: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/terminals/{terminal_id}/applications",
        "application.submit",
    ),
    (
        "POST",
        "/api/v1/terminals/{terminal_id}/cases/{case_id}/supplements",
        "case.supplement",
    ),
    (
        "POST",
        "/api/v1/terminals/{terminal_id}/cases/{case_id}/rating",
        "case.rate",
    ),
    (
        "POST",
        "/api/v1/departments/{code}/cases/{case_id}/decision",
        "case.decide",
    ),
    (
        "POST",
        "/api/v1/departments/{code}/cases/{case_id}/supplement-request",
        "case.request_supplement",
    ),
    (
        "POST",
        "/api/v1/collaborations/{event_id}/result",
        "event.answer",
    ),
    (
        "POST",
        "/api/v1/collaborations/{event_id}/sign",
        "event.sign",
    ),
    (
        "POST",
        "/api/v1/collaborations/{event_id}/return",
        "event.return",
    ),
    (
        "POST",
        "/api/v1/collaborations/{event_id}/extension",
        "event.request_extension",
    ),
    (
        "POST",
        "/api/v1/governance/centers/{code}/events/{event_id}/reassign",
        "event.reassign",
    ),
    (
        "POST",
        "/api/v1/operations/cases/{case_id}/redrive",
        "case.redrive",
    ),
    ("GET", "/api/v1/cases/{case_id}", "case.read"),
    ("GET", "/api/v1/applicants/me/cases", "case.list_own"),
    ("GET", "/api/v1/departments/{code}/inbox", "inbox.read"),
];

/// The middleware; wrap the `/api/v1` scope with it through `actix_web::middleware::from_fn`.
pub(super) async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(systems) = req.app_data::<web::Data<Systems>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let method = req.method().clone();
    let route = req.match_pattern();
    // Only a clear read needs the caller to decide; every POST is recorded.
    let may_read_in_clear = method == Method::GET
        && route
            .as_deref()
            .is_some_and(|r| ACTIONS.iter().any(|(_, pattern, _)| *pattern == r));
    if method != Method::POST && !may_read_in_clear {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let caller = Principal::from_request(req.request(), &mut Payload::None)
        .await
        .ok();
    let mut entry = Entry {
        at: chrono::Utc::now(),
        who: caller.as_ref().map_or_else(Who::anonymous, who),
        from: address(&req, systems.audit.trust_forwarded_for),
        method: method.to_string(),
        action: action(&method, route.as_deref()),
        ids: route
            .as_deref()
            .map(|r| ids(r, req.path()))
            .unwrap_or_default(),
        route,
        status: 0,
        error: None,
    };
    let answer = match next.call(req).await {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            // An error a middleware below returned; it becomes the answer further out.
            entry.status = error.as_response_error().status_code().as_u16();
            entry.error = error
                .as_error::<super::error::ApiError>()
                .map(|e| e.code.to_owned());
            entry.at = chrono::Utc::now();
            systems.audit.record(entry).await;
            return Err(error);
        }
    };
    let clear_read = method == Method::GET
        && answer.status().is_success()
        && answer.response().extensions().contains::<ClearRead>();
    if method != Method::POST && !clear_read {
        return Ok(answer);
    }
    let answer = complete(&mut entry, answer).await;
    systems.audit.record(entry).await;
    Ok(answer)
}

/// Fills in the result of `entry` from `answer`: status, error code, and a new submission's
/// case id. Reads the body only when one of those is in it, and answers it unchanged.
async fn complete(entry: &mut Entry, answer: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    entry.at = chrono::Utc::now();
    entry.status = answer.status().as_u16();
    let submitted = answer.status().is_success() && entry.action == "application.submit";
    if !answer.status().is_client_error() && !answer.status().is_server_error() && !submitted {
        return answer;
    }
    let (req, response) = answer.into_parts();
    let (head, body) = response.into_parts();
    // A streamed or large body is passed on unread: reading it would hold it in memory.
    let small = matches!(body.size(), BodySize::Sized(n) if n <= ANSWER_READ_LIMIT as u64);
    if !small {
        return ServiceResponse::new(req, head.set_body(body));
    }
    let bytes = match body::to_bytes_limited(body, ANSWER_READ_LIMIT).await {
        Ok(Ok(bytes)) => bytes,
        // A sized body that fails to read is broken for the client too; nothing to pass on.
        Ok(Err(_)) | Err(_) => {
            tracing::warn!(action = %entry.action, "audit: the answer's body could not be read");
            Bytes::new()
        }
    };
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let text = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if submitted {
            entry.ids.case_id = text("case_id");
        } else {
            entry.error = text("error");
        }
    }
    ServiceResponse::new(req, head.set_body(BoxBody::new(bytes)))
}

/// The caller as the record names them. An applicant's display name is personal data and is
/// left out: their account id names them.
fn who(caller: &Principal) -> Who {
    let (role, scope) = match &caller.grant {
        Grant::Applicant => ("applicant", None),
        Grant::Terminal(id) => ("terminal", Some(id.to_string())),
        Grant::Officer(code) => ("officer", Some(code.to_string())),
        Grant::Dispatcher(code) => ("dispatcher", Some(code.to_string())),
        Grant::Supervisor => ("supervisor", None),
        Grant::Operator => ("operator", None),
        Grant::Service => ("service", None),
    };
    Who {
        role: role.into(),
        subject: Some(caller.subject.clone()),
        name: (caller.grant != Grant::Applicant).then(|| caller.name.clone()),
        scope,
    }
}

/// Where the request came from: the connection's peer, or, behind a trusted proxy, the last
/// address of `X-Forwarded-For` (the one that proxy appended; earlier ones are the client's
/// own say).
fn address(req: &ServiceRequest, trust_forwarded_for: bool) -> Option<String> {
    let forwarded = trust_forwarded_for
        .then(|| req.headers().get("x-forwarded-for"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded
        .or_else(|| req.peer_addr().map(|peer| peer.ip()))
        .map(|ip| ip.to_string())
}

/// The action name of `method` on `route`; an endpoint missing from [`ACTIONS`] is still
/// recorded, under its method and route.
fn action(method: &Method, route: Option<&str>) -> String {
    let Some(route) = route else {
        return "no_endpoint".into();
    };
    ACTIONS
        .iter()
        .find(|(m, pattern, _)| *m == method.as_str() && *pattern == route)
        .map_or_else(
            || format!("{} {route}", method.as_str().to_lowercase()),
            |(_, _, name)| (*name).to_owned(),
        )
}

/// The ids in `path`, by the names of `route`'s segments. `{code}` is a department's under
/// `/departments`, a centre's under `/governance/centers`.
fn ids(route: &str, path: &str) -> Ids {
    let mut ids = Ids::default();
    let centres = route.starts_with("/api/v1/governance/");
    for (name, value) in route.split('/').zip(path.split('/')) {
        let Some(name) = name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) else {
            continue;
        };
        let value = Some(value.to_owned());
        match name {
            "case_id" => ids.case_id = value,
            "event_id" => ids.event_id = value,
            "terminal_id" => ids.terminal = value,
            "code" if centres => ids.centre = value,
            "code" => ids.department = value,
            _ => {}
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_path_by_the_route_s_names() {
        let department = ids(
            "/api/v1/departments/{code}/cases/{case_id}/decision",
            "/api/v1/departments/market/cases/C-1/decision",
        );
        let centre = ids(
            "/api/v1/governance/centers/{code}/events/{event_id}/reassign",
            "/api/v1/governance/centers/d01/events/E-9/reassign",
        );

        assert_eq!(department.department.as_deref(), Some("market"));
        assert_eq!(department.case_id.as_deref(), Some("C-1"));
        assert_eq!(centre.centre.as_deref(), Some("d01"));
        assert_eq!(centre.event_id.as_deref(), Some("E-9"));
        assert_eq!(centre.department, None);
    }

    #[test]
    fn an_unlisted_route_is_named_by_method_and_route() {
        assert_eq!(
            action(
                &Method::POST,
                Some("/api/v1/departments/{code}/cases/{case_id}/decision")
            ),
            "case.decide"
        );
        assert_eq!(
            action(&Method::POST, Some("/api/v1/x/{id}")),
            "post /api/v1/x/{id}"
        );
        assert_eq!(action(&Method::POST, None), "no_endpoint");
    }
}
