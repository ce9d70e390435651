//! Every failure as problem+json, whoever produced it: bare error responses
//! (axum's 405, a 413 from a body extractor, plain-text rejections) get the
//! matching [`ApiError`] body; a panic anywhere below becomes a 500 `internal`
//! (the panic message goes to the log through the panic hook, never into the
//! response). Also the body limit: a declared `Content-Length` over the limit is
//! refused before anything reads the body, and every body is wrapped so that
//! reading past the limit fails — also for chunked bodies without a length.

use crate::error::ApiError;
use crate::security::SecurityState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// The most of a plain-text error body read to reuse as the problem's `detail`;
/// longer bodies get the status's standard sentence.
pub const PLAIN_ERROR_DETAIL_BYTES_MAX: usize = 1024;

/// 413 `payload_too_large`, naming the limit.
pub fn payload_too_large(limit_bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is over the limit of {limit_bytes} bytes"),
    )
    .with("limit_bytes", limit_bytes)
}

/// Refuses bodies over the configured limit (see the module docs), else runs
/// `next` with the body wrapped.
pub async fn limit_body<F, Fut>(security: &SecurityState, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    // Attachment uploads stream to the object store under their own, larger limit.
    let limit = if crate::routes::attachments::is_upload(&request) {
        usize::try_from(security.attachment_limit_bytes).unwrap_or(usize::MAX)
    } else {
        security.body_limit_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return payload_too_large(limit).into_response();
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next(request).await
}

/// A panic in `below` (while it is polled) becomes a 500 problem.
pub async fn catch_panics<Fut>(below: Fut) -> Response
where
    Fut: Future<Output = Response>,
{
    match AssertUnwindSafe(below).catch_unwind().await {
        Ok(response) => response,
        Err(_panic) => {
            eprintln!("synap: a request handler panicked (message above); answered 500");
            ApiError::internal().into_response()
        }
    }
}

/// Runs `next` and replaces error responses that are not JSON with the matching
/// problem.
pub async fn problem_for_bare_errors<F, Fut>(
    security: &SecurityState,
    request: Request,
    next: F,
) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let method = request.method().clone();
    let response = next(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase);
    let plain = match content_type.as_deref() {
        None => false,
        Some(t) if t.starts_with("text/plain") => true,
        // JSON (problems, tRPC errors), event streams, HTML: the producer meant it.
        Some(_) => return response,
    };
    let (parts, body) = response.into_parts();
    let text = if plain && status.is_client_error() {
        axum::body::to_bytes(body, PLAIN_ERROR_DETAIL_BYTES_MAX)
            .await
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    } else {
        None
    };
    let mut problem = problem_for_status(status, &method, &parts.headers, security);
    if let Some(text) = text
        && status != StatusCode::PAYLOAD_TOO_LARGE
    {
        problem.detail = text;
    }
    let mut replaced = problem.into_response();
    // Keep what the original said besides its body (Allow, WWW-Authenticate,
    // Retry-After, Set-Cookie, …).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().append(name.clone(), value.clone());
        }
    }
    replaced
}

/// The standard problem for a bare status.
pub fn problem_for_status(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
    security: &SecurityState,
) -> ApiError {
    let (code, detail): (&'static str, String) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed".into()),
        StatusCode::UNAUTHORIZED => return ApiError::unauthorized("sign in first"),
        StatusCode::FORBIDDEN => ("forbidden", "this is not allowed".into()),
        StatusCode::NOT_FOUND => ("not_found", "no such route; see /docs for the API".into()),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(|v| format!("; it accepts {v}"))
                .unwrap_or_default();
            (
                "method_not_allowed",
                format!("this route does not accept {method}{allow}"),
            )
        }
        StatusCode::NOT_ACCEPTABLE => (
            "not_acceptable",
            "the response cannot be given in an accepted media type".into(),
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long".into()),
        StatusCode::LENGTH_REQUIRED => ("length_required", "send a Content-Length".into()),
        StatusCode::PAYLOAD_TOO_LARGE => return payload_too_large(security.body_limit_bytes),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the URL is too long".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            "validation_failed",
            "the request does not have the expected shape".into(),
        ),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests; retry later".into()),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "the request's headers are too large".into(),
        ),
        StatusCode::NOT_IMPLEMENTED => ("not_implemented", "this is not implemented".into()),
        StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            "the server cannot answer now; retry shortly".into(),
        ),
        StatusCode::GATEWAY_TIMEOUT => ("timeout", "the server took too long".into()),
        s if s.is_server_error() => return with_status(ApiError::internal(), s),
        _ => ("bad_request", "the request was refused".into()),
    };
    ApiError::new(status, code, detail)
}

fn with_status(mut error: ApiError, status: StatusCode) -> ApiError {
    error.status = status;
    error
}
