//! The HTTP contract as an OpenAPI 3.1 document, generated (`utoipa`) from the handlers — each
//! carries `#[utoipa::path]` beside its code — and from the types of their bodies (`ToSchema`),
//! so the document cannot drift from what the code reads and writes.
//!
//! `GET /api/v1/openapi.json` serves it to anyone, without a token: like the public catalogue
//! and `docs/asyncapi.yaml` it describes the contract, not data, and an integrator reads it
//! before they have a token. `govfusion openapi` prints it; `docs/openapi.json` is that output,
//! and a test fails when it is stale or when a route is served that it lacks.
//!
//! What an endpoint may answer because of what wraps it rather than because of its handler —
//! a token refused, a rate limit, an `Idempotency-Key`, a body that cannot be read — is added
//! here once for every operation it concerns ([`Wrapped`]), not repeated on each handler.

use super::error::ErrorBody;
use crate::domain::SealedApplicant;
use actix_web::{web, HttpResponse};
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required, Response};
use utoipa::{Modify, OpenApi};

/// The name of the bearer-token security scheme the operations refer to.
pub const BEARER: &str = "bearer";

/// The command that writes `docs/openapi.json` again.
pub const REGENERATE: &str = "cargo run -- openapi > docs/openapi.json";

/// Mounts the endpoint under `/api/v1`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json));
}

/// The document, every endpoint of the service and the types of what they take and answer.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "govfusion HTTP API",
        description = "The JSON API of govfusion: terminals submit applications, applicants \
            follow, supplement and rate their cases, department staff decide cases and handle \
            collaboration events, governance centres reassign returned events, supervisors read \
            the figures, operators re-drive stalled cases. Every error is \
            `{\"error\": code, \"message\": text}`, with `field` when one field was wrong. The \
            bus's contract is docs/asyncapi.yaml.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::metrics::metrics,
        super::catalogue::matters,
        super::catalogue::terminals,
        super::catalogue::departments,
        super::catalogue::centres,
        super::terminals::submit,
        super::terminals::supplement,
        super::terminals::rate,
        super::cases::list,
        super::cases::case,
        super::cases::own_cases,
        super::intake_feed::feed,
        super::departments::inbox,
        super::departments::decide,
        super::departments::request_supplement,
        super::collaborations::answer,
        super::collaborations::sign,
        super::collaborations::return_event,
        super::collaborations::extension,
        super::centres::returned,
        super::centres::reassign,
        super::supervision::department_figures,
        super::supervision::centre_figures,
        super::operations::stalled,
        super::operations::redrive,
        openapi_json,
    ),
    // The sealed applicant is named by the default of `Application`'s parameter, which the
    // derive does not follow.
    components(schemas(ErrorBody, SealedApplicant)),
    modifiers(&BearerJwt, &Wrapped),
    tags(
        (name = "health", description = "Liveness and readiness, for an orchestrator's probes"),
        (name = "catalogue", description = "The city's configuration: public, no token"),
        (name = "terminals", description = "Submitting, supplementing and rating at a terminal"),
        (name = "cases", description = "A case and lists of cases"),
        (name = "intake", description = "The intake feed, for a governance process elsewhere"),
        (name = "departments", description = "A manual department's inbox and decisions"),
        (name = "collaborations", description = "A department's collaboration events: answer, sign, return, extension"),
        (name = "centres", description = "A governance centre's returned events"),
        (name = "supervision", description = "The supervision figures (监督评价考核)"),
        (name = "operations", description = "Stalled cases and their re-drive"),
        (name = "contract", description = "This document"),
    )
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a final newline: what `GET /api/v1/openapi.json` answers,
/// what `govfusion openapi` prints and what `docs/openapi.json` holds.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut json = document().to_pretty_json()?;
    json.push('\n');
    Ok(json)
}

/// This service's HTTP contract, as OpenAPI 3.1.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "contract",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> super::error::Result<HttpResponse> {
    let json = document_json().map_err(|error| {
        super::error::ApiError::new(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the OpenAPI document could not be written: {error}"),
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

/// The bearer-token scheme every operation with a `security` requirement names.
struct BearerJwt;

impl Modify for BearerJwt {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "An OIDC access token (a JWT) from the city's identity provider, signed with one of \
             its keys (RSA, EC P-256/P-384 or Ed25519), with the configured `iss` and `aud`. \
             What the caller may do comes from its `role` claim (applicant, terminal, officer, \
             dispatcher, supervisor, operator, service) and its scope claim (`terminal`, \
             `department` or `centre`); see the README, \"Who may call the API\"."
                .into(),
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

/// The answers every operation may get from what wraps its handler: the token check (401,
/// 403, 503 when the identity provider's keys cannot be had), the rate limit (429), the body's
/// reading (400, 408, 413, 415), the query's (400) and `Idempotency-Key` on POSTs (its header,
/// and 400, 409, 422, 503). An answer a handler lists already gets the wrapper's codes added
/// to its description.
struct Wrapped;

impl Modify for Wrapped {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            if let Some(get) = item.get.as_mut() {
                wrap(get, api, false);
            }
            if let Some(post) = item.post.as_mut() {
                wrap(post, api, true);
            }
        }
    }
}

/// Adds to `operation` what wraps it (see [`Wrapped`]); `api` for a path under `/api/v1`,
/// `post` for a POST.
fn wrap(operation: &mut Operation, api: bool, post: bool) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if secured {
        refuse(operation, 401, "`unauthenticated`: no bearer token; `invalid_token`: the message says which check failed (`WWW-Authenticate: Bearer` says so too)");
        refuse(
            operation,
            403,
            "`forbidden`: the token's role or scope does not grant this",
        );
        refuse(
            operation,
            503,
            "`unavailable`: the identity provider's keys cannot be had now",
        );
    }
    if api {
        refuse(
            operation,
            429,
            "`rate_limited`: past the client's budget; `Retry-After` says when to try again",
        );
    }
    let queried = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
    if queried {
        refuse(
            operation,
            400,
            "`invalid_query`: the query string is not valid for this endpoint",
        );
    }
    if operation.request_body.is_some() {
        refuse(operation, 400, "`malformed_json`: the body is not JSON; `invalid_body`: it lacks or mistypes a field; `bad_request`: it cannot be read");
        refuse(
            operation,
            408,
            "`request_timeout`: the body did not arrive in time",
        );
        refuse(
            operation,
            413,
            "`payload_too_large`: the body is over `http.max_body_bytes`",
        );
        refuse(
            operation,
            415,
            "`unsupported_media_type`: the body is not labelled `Content-Type: application/json`",
        );
    }
    if api && post {
        let mut key = Parameter::new("Idempotency-Key");
        key.parameter_in = ParameterIn::Header;
        key.required = Required::False;
        key.description = Some(
            "1 to 255 visible ASCII characters, sent again unchanged with every retry of the \
             same request: a repeat with the same body gets the first answer again \
             (`Idempotent-Replayed: true`), and nothing is done twice"
                .into(),
        );
        key.schema = Some(RefOr::T(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .into(),
        ));
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(key));
        refuse(
            operation,
            400,
            "`invalid_idempotency_key`: empty, over 255 characters or not visible ASCII",
        );
        refuse(operation, 409, "`idempotency_key_in_use`: a request with the same key is still being handled; retry once it is answered");
        refuse(
            operation,
            422,
            "`idempotency_key_reused`: the key was used before with another body",
        );
        refuse(operation, 503, "`idempotency_keys_exhausted`: too many requests with keys are being handled; retry with the same key");
    }
}

/// Adds `codes` to the answer `status` of `operation`: to its description when the handler
/// lists it, else as a new answer with the error body.
fn refuse(operation: &mut Operation, status: u16, codes: &str) {
    let answers = &mut operation.responses.responses;
    match answers.get_mut(&status.to_string()) {
        Some(RefOr::T(answer)) => {
            answer.description = format!("{}; {codes}", answer.description);
        }
        // Every answer here is written inline: a reference would be a listed one.
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut answer = Response::new(codes);
            answer.content.insert(
                "application/json".into(),
                RefOr::T(Content::new(Some(Ref::from_schema_name("Error")))),
            );
            answers.insert(status.to_string(), RefOr::T(answer));
        }
    }
}
