//! The API's errors: every refusal is JSON `{ "error": code, "message": text }` with the right
//! status, and says what was wrong; a refusal of one field of the body names it too
//! (`"field": "applicant.id_number"`). The systems' own refusals become API errors here, once, so
//! that a handler only writes `?`. An act that was not refused is answered by [`acted`].

use crate::actors::acts::Acted;
use crate::actors::department::StaffError;
use crate::actors::governance_center::ReassignError;
use crate::actors::intake::{CaseActionError, CaseReadError, RedriveError};
use crate::actors::terminal::SubmitError;
use crate::catalog::LookupError;
use crate::crypto::CryptoError;
use crate::domain::masking::without_values;
use crate::port::Delivery;
use actix::MailboxError;
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// What every handler returns.
pub type Result<T> = std::result::Result<T, ApiError>;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `unknown_matter`.
    pub code: &'static str,
    /// What was wrong, for a person.
    pub message: String,
    /// The field of the body that was wrong, as a path (`applicant.id_number`,
    /// `materials[3]`), when it was one field.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 422 `invalid_field`: the field at `field` breaks a rule; `message` says which, and what
    /// would be right.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid("invalid_field", message).with_field(field)
    }

    /// The same error, naming the field it is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 404 with a message.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 503: a system did not answer; the client may try again.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 422: the request is well-formed but asks for something that cannot be.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 503 for a system that did not take or answer a message (stopped, or its mailbox full).
    fn not_answered(error: impl std::fmt::Display) -> Self {
        Self::unavailable(format!("a system did not answer: {error}"))
    }
}

impl From<MailboxError> for ApiError {
    fn from(error: MailboxError) -> Self {
        Self::not_answered(error)
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Unknown(lookup) => lookup.into(),
            SubmitError::Unavailable(reason) => Self::not_answered(reason),
            SubmitError::TooLarge(message) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "application_too_large",
                message,
            ),
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(error: LookupError) -> Self {
        let code = match error {
            LookupError::UnknownMatter(_) => "unknown_matter",
            LookupError::UnknownDistrict(_) | LookupError::UnknownStreet { .. } => "unknown_region",
        };
        Self::invalid(code, error.to_string())
    }
}

/// A department's refusal of a staff act.
impl From<StaffError> for ApiError {
    fn from(error: StaffError) -> Self {
        match error {
            StaffError::NotFound(m) => Self::not_found("not_waiting", m),
            StaffError::Conflict(m) => Self::new(StatusCode::CONFLICT, "invalid_transition", m),
        }
    }
}

/// The intake system's refusal of an applicant's act on a case.
impl From<CaseActionError> for ApiError {
    fn from(error: CaseActionError) -> Self {
        match error {
            CaseActionError::NotFound(m) => Self::not_found("unknown_case", m),
            CaseActionError::Conflict(m) => {
                Self::new(StatusCode::CONFLICT, "invalid_transition", m)
            }
            CaseActionError::Unavailable(m) => Self::not_answered(m),
        }
    }
}

/// A case the intake system cannot show: its personal data cannot be opened, or the case
/// repository it is in cannot be read now.
impl From<CaseReadError> for ApiError {
    fn from(error: CaseReadError) -> Self {
        match error {
            CaseReadError::Crypto(error) => error.into(),
            CaseReadError::Store(error) => Self::not_answered(error),
        }
    }
}

/// The intake system's refusal of a re-drive.
impl From<RedriveError> for ApiError {
    fn from(error: RedriveError) -> Self {
        match error {
            RedriveError::Unknown(m) => Self::not_found("unknown_case", m),
            RedriveError::Completed(m) => Self::new(StatusCode::CONFLICT, "case_completed", m),
            RedriveError::Failed(m) => Self::new(StatusCode::CONFLICT, "case_failed", m),
            RedriveError::NothingToResend(m) => {
                Self::new(StatusCode::CONFLICT, "nothing_to_redrive", m)
            }
            RedriveError::NotOnBus(m) => Self::unavailable(m),
            RedriveError::Refused(m) => Self::invalid("redrive_refused", m),
            RedriveError::Unavailable(m) => Self::unavailable(m),
        }
    }
}

/// A centre's refusal of a reassignment.
impl From<ReassignError> for ApiError {
    fn from(error: ReassignError) -> Self {
        match error {
            ReassignError::NotWaiting(m) => Self::not_found("not_waiting", m),
            ReassignError::UnknownDepartment(m) => Self::invalid("unknown_department", m),
        }
    }
}

/// The answer to a person's act (a decision, a reassignment, a rating): `ok` with its result
/// once the act's messages are on the bus; `202 Accepted` with the same result when the bus has
/// not taken them within `service.submit_timeout_ms` (the act is recorded and its messages are
/// sent until the bus takes them); `422 act_refused` when the bus refused them for good (the act
/// is recorded, but its message is in dead-letters and reaches no one). A repeat of the request
/// is answered the same.
pub fn acted<T: Serialize>(ok: StatusCode, acted: Acted<T>) -> Result<HttpResponse> {
    let status = match acted.delivery {
        Delivery::OnBus => ok,
        Delivery::NotYet => StatusCode::ACCEPTED,
        Delivery::Refused(refusal) => {
            return Err(ApiError::invalid(
                "act_refused",
                format!(
                    "the act was recorded, but the bus refused its message for good, so it \
                     reaches no one: {}. It is in dead-letters: report it to an operator, quoting this message",
                    refusal.reason
                ),
            ))
        }
    };
    Ok(HttpResponse::build(status).json(acted.result))
}

/// The JSON of every error: `{"error": code, "message": text}`, with `"field"` when one field
/// of the body or query was wrong.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// The stable machine-readable code, e.g. `invalid_field`; each endpoint lists the codes
    /// of each status it may answer.
    #[schema(example = "invalid_field")]
    error: &'a str,
    /// What was wrong and what would be right, for a person.
    message: &'a str,
    /// The field it was about, as a path (`applicant.id_number`, `materials[3]`), when it was
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "applicant.id_number")]
    field: Option<&'a str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        // RFC 6750: a refusal for want of a valid bearer token says which scheme to use.
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.code == "invalid_token" {
                r#"Bearer error="invalid_token""#
            } else {
                "Bearer"
            };
            response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, challenge));
        }
        response.json(ErrorBody {
            error: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        })
    }
}

/// Turns actix-web's JSON extraction errors into [`ApiError`]s.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::from(error).into()
}

/// A JSON body that is too large, not JSON, or not what the endpoint takes.
impl From<JsonPayloadError> for ApiError {
    fn from(error: JsonPayloadError) -> Self {
        match &error {
            JsonPayloadError::OverflowKnownLength { length, limit } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body of {length} bytes exceeds the limit of {limit} bytes"),
            ),
            JsonPayloadError::Overflow { limit } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body exceeds the limit of {limit} bytes"),
            ),
            JsonPayloadError::Payload(PayloadError::Overflow) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body exceeds the configured limit",
            ),
            JsonPayloadError::ContentType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            // Described without the values serde quotes: the message is logged (actix-web's
            // `Logger` prints every error response at debug) and a value may be an ID number.
            JsonPayloadError::Deserialize(e) if e.is_data() => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!(
                    "the JSON body does not match what this endpoint takes: {}",
                    without_values(e)
                ),
            ),
            JsonPayloadError::Deserialize(e) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {}", without_values(e)),
            ),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the request body could not be read: {other}"),
            ),
        }
    }
}

/// Personal data this process holds but cannot open: a key missing from `[crypto]`, which
/// an operator must fix.
impl From<CryptoError> for ApiError {
    fn from(error: CryptoError) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "personal_data_unreadable",
            format!("the applicant's data cannot be opened: {error}"),
        )
    }
}

/// Turns actix-web's query-string errors into [`ApiError`]s.
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("the query string is not valid for this endpoint: {error}"),
    )
    .into()
}
