//! Who may do what. A handler that needs a caller takes a [`Principal`] argument: the request's
//! bearer token, checked (401 when it is missing or not valid). It then asks one of the
//! functions below whether that caller may do what it asks (403 when not), so that each
//! endpoint's grant reads in its own handler.

use super::error::{ApiError, Result};
use crate::actors::intake::CaseView;
use crate::auth::{AuthError, Authenticator, Grant, Principal};
use crate::domain::{CentreCode, DepartmentCode, Officer, TerminalId};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest, HttpResponseBuilder};
use futures::future::LocalBoxFuture;

/// The outcome of checking a request's bearer token, kept in the request's extensions by the
/// rate limiter (which counts a request against the caller its token names), so that the
/// token's signature is checked once per request.
pub(super) struct Checked(pub(super) std::result::Result<Principal, AuthError>);

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Every middleware and handler that asks for the caller gets the rate limiter's
        // outcome, so a token's signature is checked once per request.
        let checked = req.extensions().get::<Checked>().map(|c| c.0.clone());
        if let Some(checked) = checked {
            return Box::pin(async move { checked.map_err(unauthenticated) });
        }
        let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let authenticator = authenticator.ok_or_else(|| {
                ApiError::unavailable("the service has no authenticator configured")
            })?;
            let token = token.ok_or(AuthError::Missing).map_err(unauthenticated)?;
            authenticator.verify(&token).await.map_err(unauthenticated)
        })
    }
}

/// The token of an `Authorization: Bearer …` header.
pub(super) fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// 401 (or 503 when the provider's keys cannot be had) for a request that is not authenticated.
fn unauthenticated(error: AuthError) -> ApiError {
    match error {
        AuthError::KeysUnavailable(_) => ApiError::unavailable(error.to_string()),
        AuthError::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            error.to_string(),
        ),
        AuthError::Invalid(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", error.to_string())
        }
    }
}

/// 403: the caller is known but may not do this.
pub(super) fn forbidden(caller: &Principal, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("{} may not {what}", describe(caller)),
    )
}

/// The caller, for a refusal: its role and scope.
fn describe(caller: &Principal) -> String {
    match &caller.grant {
        Grant::Applicant => format!("applicant `{}`", caller.subject),
        Grant::Terminal(id) => format!("terminal `{id}`"),
        Grant::Officer(code) => format!("an officer of `{code}`"),
        Grant::Dispatcher(code) => format!("a dispatcher of centre `{code}`"),
        Grant::Supervisor => "a supervisor".into(),
        Grant::Operator => "an operator".into(),
        Grant::Service => "a service account".into(),
    }
}

/// The officer `caller` names, as recorded on what they do.
pub(super) fn named(caller: &Principal) -> Officer {
    Officer {
        id: caller.subject.clone(),
        name: caller.name.clone(),
    }
}

/// An officer of department `code`.
pub(super) fn officer_of(caller: &Principal, code: &DepartmentCode) -> Result<()> {
    match &caller.grant {
        Grant::Officer(own) if own == code => Ok(()),
        _ => Err(forbidden(caller, &format!("act for department `{code}`"))),
    }
}

/// A dispatcher of centre `code`.
pub(super) fn dispatcher_of(caller: &Principal, code: &CentreCode) -> Result<()> {
    match &caller.grant {
        Grant::Dispatcher(own) if own == code => Ok(()),
        _ => Err(forbidden(caller, &format!("act for centre `{code}`"))),
    }
}

/// The caller's grant is one `allowed` accepts; `what` says what is asked.
pub(super) fn require(
    caller: &Principal,
    what: &str,
    allowed: impl FnOnce(&Grant) -> bool,
) -> Result<()> {
    if allowed(&caller.grant) {
        Ok(())
    } else {
        Err(forbidden(caller, what))
    }
}

/// Submitting at terminal `terminal`: the terminal itself, or an applicant on their own behalf.
/// Returns the applicant's account to record as the case's owner.
pub(super) fn submitter(caller: &Principal, terminal: &TerminalId) -> Result<Option<String>> {
    match &caller.grant {
        Grant::Applicant => Ok(Some(caller.subject.clone())),
        Grant::Terminal(own) if own == terminal => Ok(None),
        _ => Err(forbidden(
            caller,
            &format!("submit applications at terminal `{terminal}`"),
        )),
    }
}

/// A response that carries personal data: no cache — a browser's, a proxy's — may keep it
/// (`Cache-Control: no-store`), so that it is not read later from a shared machine or a
/// cache the service does not control.
pub(super) fn personal(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response.insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]));
    response
}

/// The mark of an answer that shows personal data in clear to its caller: the audit records
/// every such read (and no other).
pub(crate) struct ClearRead;

/// `response` shows personal data in clear (see [`ClearRead`]).
pub(super) fn in_clear(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response.extensions_mut().insert(ClearRead);
    response
}

/// How much of a case a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sight {
    /// Everything, personal data in clear: the applicant, the terminal they used, the
    /// officers of the department handling the case.
    Full,
    /// Everything but personal data, which is masked: collaborating departments, the centres
    /// that routed its events, supervisors, operators.
    Masked,
}

/// What `caller` may see of `case` in a city whose city centre is `city`; 403 for a caller
/// with no part in it. A centre's dispatchers see the cases of their district or street, and the city centre's
/// those whose events it routed.
pub(super) fn case_sight<A>(
    caller: &Principal,
    case: &CaseView<A>,
    city: &CentreCode,
) -> Result<Sight> {
    let application = &case.application;
    let handling = case.receipt.as_ref().map(|r| &r.department);
    let sight =
        match &caller.grant {
            Grant::Applicant => (application.owner.as_deref() == Some(caller.subject.as_str()))
                .then_some(Sight::Full),
            Grant::Terminal(id) => (application.owner.is_none() && &application.terminal_id == id)
                .then_some(Sight::Full),
            Grant::Officer(code) => {
                if handling == Some(code) {
                    Some(Sight::Full)
                } else {
                    case.collaboration_events
                        .iter()
                        .any(|e| &e.department == code)
                        .then_some(Sight::Masked)
                }
            }
            Grant::Dispatcher(code) => {
                let region = &application.region;
                let routed_here = code == city && !case.collaboration_events.is_empty();
                (routed_here || region.district == *code || region.street == *code)
                    .then_some(Sight::Masked)
            }
            Grant::Supervisor | Grant::Operator => Some(Sight::Masked),
            Grant::Service => None,
        };
    sight.ok_or_else(|| forbidden(caller, &format!("see case `{}`", case.case_id)))
}
