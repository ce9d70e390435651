//! The one API error type. Every failure becomes `application/problem+json`
//! (RFC 9457) `{type, title, status, detail, code}` through [`ApiError`]; store and
//! domain errors map through the one table in `From<StoreError>`. Internal details
//! are logged, never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use synap_domain::DomainError;
use synap_store::StoreError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An API failure: a status, a stable machine-readable `code`, and a sentence.
/// Boxed, so `Result<T, ApiError>` stays small; its parts are reached through
/// `Deref` (`error.status`, `error.code`, …).
#[derive(Debug, Clone)]
pub struct ApiError(Box<ApiErrorParts>);

/// What an [`ApiError`] holds.
#[derive(Debug, Clone)]
pub struct ApiErrorParts {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra members of the problem object (e.g. `current_version`, `field`).
    pub extensions: Map<String, Value>,
    /// Extra response headers (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorParts;
    fn deref(&self) -> &ApiErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorParts {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError(Box::new(ApiErrorParts {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
        }))
    }
    /// Takes the error apart (for adapters that render it in another format).
    pub fn into_parts(self) -> ApiErrorParts {
        *self.0
    }
    /// Adds an extension member. The standard members of a problem (`type`,
    /// `title`, `status`, `detail`, `instance`) and `code` are not extensions.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        debug_assert!(
            !["type", "title", "status", "detail", "instance", "code"].contains(&key),
            "{key} is a standard problem member, not an extension"
        );
        self.extensions.insert(key.to_string(), value.into());
        self
    }
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
        .with("field", field)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the failure was logged",
        )
    }

    /// The title of the problem type: the status's reason phrase.
    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            problem_type: format!("urn:synap:problem:{}", self.code),
            title: self.title(),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            extensions: &self.extensions,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let ApiErrorParts {
            status,
            headers: extra_headers,
            ..
        } = *self.0;
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in extra_headers {
            headers.append(name, value);
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let detail = error.to_string();
        match error {
            DomainError::Validation { field, .. } => ApiError::validation(field, detail),
            DomainError::EntityNotFound(_) | DomainError::RelationNotFound => {
                ApiError::not_found(detail)
            }
            DomainError::AlreadyExists(_) => ApiError::conflict("already_exists", detail),
            DomainError::EntityDeleted(_) => ApiError::conflict("entity_deleted", detail),
            DomainError::NotATask(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_a_task", detail)
            }
            DomainError::NoSuchVersion { current, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_version", detail)
                    .with("current_version", current)
            }
            DomainError::DuplicateRelation { .. } => {
                ApiError::conflict("duplicate_relation", detail)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Domain(domain) => domain.into(),
            StoreError::Conflict { current, .. } => ApiError::conflict(
                "conflict",
                format!("{error}; read the current version and retry"),
            )
            .with("current_version", current),
            StoreError::InvalidInput(message) => ApiError::bad_request("invalid_input", message),
            StoreError::Unavailable(_) => {
                eprintln!("synap: {error}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database cannot be reached; retry shortly",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
            }
            StoreError::Busy(_) | StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is busy; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            StoreError::Corrupt(_) | StoreError::Backend(_) => {
                eprintln!("synap: internal error: {error}");
                ApiError::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
