//! tRPC's error codes and error shape. A failure is a [`RpcError`]: one of tRPC's
//! code keys (`BAD_REQUEST`, `UNAUTHORIZED`, …), which fixes both the JSON-RPC 2.0
//! number in the body and the HTTP status, plus a sentence. The tables are tRPC
//! v11's (`TRPC_ERROR_CODES_BY_KEY`, `JSONRPC2_TO_HTTP_CODE` in `@trpc/server`).

use crate::error::ApiError;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};
use synap_store::StoreError;

/// tRPC's error code keys (the subset this server can produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcCode {
    ParseError,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotSupported,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnprocessableContent,
    TooManyRequests,
    InternalServerError,
    NotImplemented,
    ServiceUnavailable,
}

impl RpcCode {
    /// The key, as in `error.data.code`.
    pub fn key(self) -> &'static str {
        match self {
            RpcCode::ParseError => "PARSE_ERROR",
            RpcCode::BadRequest => "BAD_REQUEST",
            RpcCode::Unauthorized => "UNAUTHORIZED",
            RpcCode::Forbidden => "FORBIDDEN",
            RpcCode::NotFound => "NOT_FOUND",
            RpcCode::MethodNotSupported => "METHOD_NOT_SUPPORTED",
            RpcCode::Conflict => "CONFLICT",
            RpcCode::PreconditionFailed => "PRECONDITION_FAILED",
            RpcCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RpcCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            RpcCode::UnprocessableContent => "UNPROCESSABLE_CONTENT",
            RpcCode::TooManyRequests => "TOO_MANY_REQUESTS",
            RpcCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            RpcCode::NotImplemented => "NOT_IMPLEMENTED",
            RpcCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// The JSON-RPC 2.0 number, as in `error.code`.
    pub fn json_rpc(self) -> i32 {
        match self {
            RpcCode::ParseError => -32700,
            RpcCode::BadRequest => -32600,
            RpcCode::Unauthorized => -32001,
            RpcCode::Forbidden => -32003,
            RpcCode::NotFound => -32004,
            RpcCode::MethodNotSupported => -32005,
            RpcCode::Conflict => -32009,
            RpcCode::PreconditionFailed => -32012,
            RpcCode::PayloadTooLarge => -32013,
            RpcCode::UnsupportedMediaType => -32015,
            RpcCode::UnprocessableContent => -32022,
            RpcCode::TooManyRequests => -32029,
            RpcCode::InternalServerError
            | RpcCode::NotImplemented
            | RpcCode::ServiceUnavailable => -32603,
        }
    }

    /// The HTTP status, as in `error.data.httpStatus` and on the response.
    pub fn http_status(self) -> StatusCode {
        match self {
            RpcCode::ParseError | RpcCode::BadRequest => StatusCode::BAD_REQUEST,
            RpcCode::Unauthorized => StatusCode::UNAUTHORIZED,
            RpcCode::Forbidden => StatusCode::FORBIDDEN,
            RpcCode::NotFound => StatusCode::NOT_FOUND,
            RpcCode::MethodNotSupported => StatusCode::METHOD_NOT_ALLOWED,
            RpcCode::Conflict => StatusCode::CONFLICT,
            RpcCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            RpcCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RpcCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RpcCode::UnprocessableContent => StatusCode::UNPROCESSABLE_ENTITY,
            RpcCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            RpcCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            RpcCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            RpcCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code for an HTTP status of the REST API's errors. `422` (a value the
    /// domain refused) becomes `BAD_REQUEST`, as the original's zod validation
    /// failures were.
    pub fn from_status(status: StatusCode) -> RpcCode {
        match status.as_u16() {
            400 | 422 => RpcCode::BadRequest,
            401 => RpcCode::Unauthorized,
            403 => RpcCode::Forbidden,
            404 => RpcCode::NotFound,
            405 => RpcCode::MethodNotSupported,
            409 => RpcCode::Conflict,
            412 => RpcCode::PreconditionFailed,
            413 => RpcCode::PayloadTooLarge,
            415 => RpcCode::UnsupportedMediaType,
            429 => RpcCode::TooManyRequests,
            501 => RpcCode::NotImplemented,
            503 => RpcCode::ServiceUnavailable,
            _ => RpcCode::InternalServerError,
        }
    }
}

/// A failed call (or a failed request, when it has no path).
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: RpcCode,
    pub message: String,
    /// Response headers the failure asks for (`Retry-After`, `Allow`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl RpcError {
    pub fn new(code: RpcCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(RpcCode::BadRequest, message)
    }
    pub fn internal() -> Self {
        Self::new(
            RpcCode::InternalServerError,
            "the server failed; the failure was logged",
        )
    }
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// tRPC's default error shape: `{message, code, data: {code, httpStatus, path?}}`.
    pub fn shape(&self, path: Option<&str>) -> Value {
        let mut data = json!({
            "code": self.code.key(),
            "httpStatus": self.code.http_status().as_u16(),
        });
        if let (Some(path), Some(data)) = (path, data.as_object_mut()) {
            data.insert("path".into(), Value::String(path.to_string()));
        }
        json!({
            "message": self.message,
            "code": self.code.json_rpc(),
            "data": data,
        })
    }
}

impl From<ApiError> for RpcError {
    fn from(error: ApiError) -> Self {
        let error = error.into_parts();
        RpcError {
            code: RpcCode::from_status(error.status),
            message: error.detail,
            headers: error.headers,
        }
    }
}

impl From<StoreError> for RpcError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}
