//! Cross-origin access from browsers (CORS, with `actix-cors`): only web pages served from an
//! origin listed in `http.cors_allowed_origins` may call the API from a browser. A preflight
//! from such an origin is answered with what the API takes (GET and POST; the headers
//! `Authorization`, `Content-Type`, `Accept` and `Idempotency-Key`), and its requests' answers
//! name it in `Access-Control-Allow-Origin`. Any other origin gets no CORS header, so the
//! browser keeps the answer from the page (and a preflight from it is refused with 400).
//! Clients that are not browsers (terminals' back ends, other services) send no `Origin` and
//! are not concerned.
//!
//! No credentials mode (`Access-Control-Allow-Credentials`): the API takes bearer tokens, never
//! cookies.

use actix_cors::Cors;
use actix_web::http::header;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

/// The CORS middleware for `origins` (validated at load: `scheme://host[:port]`). With none, no
/// origin is allowed.
pub fn middleware(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("idempotency-key"),
        ])
        // A refusal for the rate limit says when to come back; without this the page cannot
        // read it.
        .expose_headers([header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE_SECS);
    origins
        .iter()
        .fold(cors, |cors, origin| cors.allowed_origin(origin))
}
