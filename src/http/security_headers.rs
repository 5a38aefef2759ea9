//! Headers every response carries, refusals included, so that a browser that is shown an
//! answer of this API neither guesses its type, frames it, leaks its address onwards nor keeps
//! it:
//!
//! * `X-Content-Type-Options: nosniff` — JSON is never run as a script or shown as HTML.
//! * `X-Frame-Options: DENY` and `Content-Security-Policy: default-src 'none';
//!   frame-ancestors 'none'` — nothing this API returns is a page to embed or to run; the
//!   screens' pages (`text/html`) may load and post to this service alone (`'self'`).
//! * `Referrer-Policy: no-referrer` — a case id in a URL goes nowhere else.
//! * `Cache-Control: no-store` on every `/api/v1` answer but the public catalogue: they may
//!   carry personal data, which no browser or proxy cache should keep.
//! * `Strict-Transport-Security` only with `http.hsts = true`, for a deployment reached over
//!   HTTPS: this service speaks plain HTTP itself.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// The public catalogue and the API's contract: the same for everyone, no personal data, fine
/// to cache.
const PUBLIC: [&str; 5] = [
    "/api/v1/matters",
    "/api/v1/terminals",
    "/api/v1/departments",
    "/api/v1/governance/centers",
    "/api/v1/openapi.json",
];

/// `Strict-Transport-Security` when on: a year, the value browsers' preload lists ask for.
const HSTS: &str = "max-age=31536000";

/// The middleware (see the module doc); wrap it with `actix_web::middleware::from_fn`.
/// `hsts` is `http.hsts`.
pub async fn add(
    hsts: bool,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let private = may_carry_personal_data(req.method(), req.path());
    match next.call(req).await {
        Ok(mut response) => {
            set(response.headers_mut(), private, hsts);
            Ok(response.map_into_boxed_body())
        }
        // A middleware's error (a handler's is already a response) becomes a response further
        // out: it gets the headers then.
        Err(mut error) => {
            error.add_response_mapper(move |mut response| {
                set(response.headers_mut(), private, hsts);
                response
            });
            Err(error)
        }
    }
}

/// Sets the headers on a response; `private` when it may carry personal data. A page of the
/// screens (`text/html`) may load this service's own scripts and style sheets, and post its
/// forms to it, and nothing else.
fn set(headers: &mut HeaderMap, private: bool, hsts: bool) {
    let page = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if page {
        "default-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, policy),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

/// Whether the answer to `method path` may carry personal data: everything under `/api/v1`
/// but a read of the public catalogue.
fn may_carry_personal_data(method: &Method, path: &str) -> bool {
    let catalogue = (method == Method::GET || method == Method::HEAD) && PUBLIC.contains(&path);
    path.starts_with("/api/v1/") && !catalogue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_catalogue_reads_may_be_kept() {
        assert!(!may_carry_personal_data(&Method::GET, "/api/v1/matters"));
        assert!(!may_carry_personal_data(
            &Method::GET,
            "/api/v1/governance/centers"
        ));
        assert!(!may_carry_personal_data(&Method::GET, "/healthz"));
        assert!(may_carry_personal_data(&Method::GET, "/api/v1/cases/x"));
        assert!(may_carry_personal_data(
            &Method::GET,
            "/api/v1/departments/market/inbox"
        ));
        assert!(may_carry_personal_data(&Method::POST, "/api/v1/matters"));
    }
}
