//! Security headers on every response, and CORS.
//!
//! The headers are written after everything else has answered (errors, refused
//! preflights, 413s, 429s and caught panics included), overriding whatever a
//! handler set. JSON responses get a Content-Security-Policy that allows nothing
//! at all; the Swagger UI under [`DOCS_PATH_PREFIX`], whose scripts, styles and
//! images the binary serves itself, gets one that allows exactly those from the
//! same origin.
//!
//! CORS: only the configured origins (`ServerConfig::cors_origins`), matched
//! exactly (no wildcards: credentials are allowed, so `*` would hand every site
//! the user's session). A preflight from an allowed origin is answered 204 with
//! the allowed methods and headers; one from any other origin is refused with a
//! 403 problem that carries no CORS header, so the browser blocks the request.

use crate::error::ApiError;
use crate::security::SecurityState;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;

/// Where the Swagger UI is served from.
pub const DOCS_PATH_PREFIX: &str = "/docs";

/// The Content-Security-Policy of API responses: JSON needs nothing.
pub const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The Content-Security-Policy of the Swagger UI: its scripts, styles, fonts and
/// the document it fetches are all same-origin. Swagger UI sets `style`
/// attributes from its bundle (hence `'unsafe-inline'` for styles only, never
/// scripts) and draws its icons from `data:` SVGs.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

pub const X_FRAME_OPTIONS: &str = "DENY";
pub const X_CONTENT_TYPE_OPTIONS: &str = "nosniff";
pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
pub const PERMISSIONS_POLICY: &str = "geolocation=(), microphone=(), camera=()";
/// Sent in production only: one year, subdomains included.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// What a preflight may ask for.
pub const CORS_ALLOWED_METHODS: &str = "GET, POST, PATCH, PUT, DELETE, OPTIONS";
pub const CORS_ALLOWED_HEADERS: &str = "Content-Type, Authorization, If-Match, Last-Event-ID";
/// Response headers a cross-origin script may read besides the safelisted ones.
pub const CORS_EXPOSED_HEADERS: &str = "ETag, Location, Retry-After, RateLimit, RateLimit-Policy";
/// How long a browser may cache a preflight answer, in seconds.
pub const CORS_MAX_AGE_SECONDS: u32 = 86_400;

const PERMISSIONS_POLICY_HEADER: HeaderName = HeaderName::from_static("permissions-policy");

/// Runs `next` and writes the security headers on the response, whatever
/// produced it.
pub async fn security_headers<F, Fut>(
    security: &SecurityState,
    request: Request,
    next: F,
) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let docs = is_docs_path(request.uri().path());
    let mut response = next(request).await;
    apply_security_headers(response.headers_mut(), docs, security.production);
    response
}

/// Whether `path` is the Swagger UI's (`/docs` or below it).
pub fn is_docs_path(path: &str) -> bool {
    path.strip_prefix(DOCS_PATH_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The security headers, for a docs page or an API response.
pub fn apply_security_headers(headers: &mut HeaderMap, docs: bool, production: bool) {
    let csp = if docs { DOCS_CSP } else { API_CSP };
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static(X_FRAME_OPTIONS),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static(X_CONTENT_TYPE_OPTIONS),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(REFERRER_POLICY),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        PERMISSIONS_POLICY_HEADER,
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if production {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    } else {
        headers.remove(header::STRICT_TRANSPORT_SECURITY);
    }
}

/// The configured CORS origins, ready to compare with `Origin`.
#[derive(Debug, Clone)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    pub fn new(origins: &[String]) -> Self {
        CorsOrigins(
            origins
                .iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_string())
                .filter(|origin| !origin.is_empty())
                .collect(),
        )
    }
    /// Whether a request's `Origin` is one of them (scheme and host are
    /// case-insensitive).
    pub fn allows(&self, origin: &str) -> bool {
        self.0
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

/// Answers preflights; otherwise runs `next` and adds the CORS headers for
/// allowed origins.
pub async fn cors<F, Fut>(security: &SecurityState, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| security.cors.allows(o));
    let preflight = request.method() == Method::OPTIONS
        && origin.is_some()
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if preflight {
        let Some(origin) = origin.filter(|_| allowed) else {
            let mut refused = ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not call the API from a browser; add it to SYNAP_ALLOWED_ORIGINS",
            )
            .into_response();
            vary(refused.headers_mut(), true);
            return refused;
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(CORS_MAX_AGE_SECONDS),
        );
        vary(headers, true);
        return response;
    }

    let mut response = next(request).await;
    let headers = response.headers_mut();
    if let Some(origin) = origin.filter(|_| allowed) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSED_HEADERS),
        );
    } else {
        // Nothing a handler set may grant access to an origin we refuse.
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
        ] {
            headers.remove(name);
        }
    }
    vary(headers, false);
    response
}

/// The answer depends on `Origin` (and, for preflights, on what was asked):
/// caches must not serve one origin's answer to another.
fn vary(headers: &mut HeaderMap, preflight: bool) {
    let value = if preflight {
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    } else {
        "Origin"
    };
    headers.append(header::VARY, HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_up_to_case_and_a_trailing_slash() {
        let origins = CorsOrigins::new(&["https://App.example.com/".into(), " ".into()]);
        assert!(origins.allows("https://app.example.com"));
        assert!(!origins.allows("https://app.example.com.evil.test"));
        assert!(!origins.allows("http://app.example.com"));
        assert!(!origins.allows("null"));
        assert!(!CorsOrigins::new(&["*".into()]).allows("https://any.test"));
    }

    #[test]
    fn docs_paths() {
        assert!(is_docs_path("/docs"));
        assert!(is_docs_path("/docs/swagger-ui.css"));
        assert!(!is_docs_path("/docsearch"));
        assert!(!is_docs_path("/v1/docs"));
    }

    #[test]
    fn hsts_only_in_production() {
        let mut headers = HeaderMap::new();
        apply_security_headers(&mut headers, false, false);
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], API_CSP);
        apply_security_headers(&mut headers, true, true);
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            STRICT_TRANSPORT_SECURITY
        );
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], DOCS_CSP);
    }
}
