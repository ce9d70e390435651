//! The original Synap procedures under `/trpc`, in tRPC v11's HTTP wire format as
//! the official client (`@trpc/client`'s `httpLink` and `httpBatchLink`, no
//! transformer) produces and consumes it:
//!
//! - a query is `GET /trpc/<path>?input=<JSON>`, a mutation `POST /trpc/<path>`
//!   with the JSON input as the body (`Content-Type: application/json`); the
//!   input may be absent;
//! - a batch is `?batch=1` with comma-joined paths and the inputs as an object
//!   `{"0": …, "1": …}`, answered with an array in the same order; one batch holds
//!   queries only or mutations only; calls run one after another;
//! - a result is `{"result":{"data":…}}`, a failure
//!   `{"error":{"message","code","data":{"code","httpStatus","path"}}}` (`code` is
//!   the JSON-RPC 2.0 number, `data.code` tRPC's key); the HTTP status is the
//!   failure's, and a batch whose calls ended with different statuses is `207`;
//! - a failure of the whole request (a POST that is not JSON, mixed procedure
//!   types, a batch over [`BATCH_CALLS_MAX`], streaming asked for) is a single
//!   error object without a `path`, also for batches; `HEAD` is `204`.
//!
//! Per call, as in tRPC: an unknown path is `NOT_FOUND`, the wrong method
//! `METHOD_NOT_SUPPORTED` (with `Allow`), no credential `UNAUTHORIZED` (the
//! procedures were all `protectedProcedure`), a missing scope `FORBIDDEN`, then the
//! input is parsed and validated (`BAD_REQUEST`), then the procedure runs on the
//! same store as `/v1`, in the caller's scope. Input validation follows the
//! original's zod schemas (see `input`); unknown fields are ignored as zod did.
//! Streaming (`httpBatchStreamLink`, `trpc-accept: application/jsonl`),
//! subscriptions and method override are not served.
//!
//! Credentials are checked by `auth::authenticate` before this router: a request
//! with no credential reaches the procedures and each call is `UNAUTHORIZED`; a
//! credential that is present but invalid, the rate limit and the body limit are
//! answered by those layers, which can render tRPC's shape with [`error_response`].

mod error;
mod events;
mod input;
mod notes;

pub use error::{RpcCode, RpcError};
pub use events::LOGGED_EVENT_TYPE;

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::Value;

/// Most calls in one batch request (each runs against the store; the rate limit
/// counts requests).
pub const BATCH_CALLS_MAX: usize = 100;

/// The `/trpc` routes; `app` nests them behind authentication.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", any(handle))
        .route("/{*path}", any(handle))
}

/// Whether a procedure reads (`GET`) or writes (`POST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcedureType {
    Query,
    Mutation,
}

impl ProcedureType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcedureType::Query => "query",
            ProcedureType::Mutation => "mutation",
        }
    }
    /// The one HTTP method tRPC accepts for this type (no method override).
    pub fn method(self) -> Method {
        match self {
            ProcedureType::Query => Method::GET,
            ProcedureType::Mutation => Method::POST,
        }
    }
    fn method_name(self) -> &'static str {
        match self {
            ProcedureType::Query => "GET",
            ProcedureType::Mutation => "POST",
        }
    }
}

/// The procedures of the original's `appRouter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    EventsLog,
    EventsList,
    CaptureThought,
    NotesCreate,
    NotesSearch,
}

impl Procedure {
    pub const ALL: [Procedure; 5] = [
        Procedure::EventsLog,
        Procedure::EventsList,
        Procedure::CaptureThought,
        Procedure::NotesCreate,
        Procedure::NotesSearch,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Procedure::EventsLog => "events.log",
            Procedure::EventsList => "events.list",
            Procedure::CaptureThought => "capture.thought",
            Procedure::NotesCreate => "notes.create",
            Procedure::NotesSearch => "notes.search",
        }
    }

    pub fn from_path(path: &str) -> Option<Procedure> {
        Self::ALL.into_iter().find(|p| p.path() == path)
    }

    pub fn procedure_type(self) -> ProcedureType {
        match self {
            Procedure::EventsList | Procedure::NotesSearch => ProcedureType::Query,
            Procedure::EventsLog | Procedure::CaptureThought | Procedure::NotesCreate => {
                ProcedureType::Mutation
            }
        }
    }

    /// The token scope the procedure needs.
    pub fn permission(self) -> Permission {
        match self.procedure_type() {
            ProcedureType::Query => Permission::Read,
            ProcedureType::Mutation => Permission::Write,
        }
    }

    async fn call(self, call: &Call<'_>, input: Option<Value>) -> Result<Value, RpcError> {
        match self {
            Procedure::EventsLog => events::log(call, input).await,
            Procedure::EventsList => events::list(call, input).await,
            Procedure::CaptureThought => notes::capture_thought(call, input).await,
            Procedure::NotesCreate => notes::create_note(call, input).await,
            Procedure::NotesSearch => notes::search_notes(call, input).await,
        }
    }
}

/// What a procedure runs with: the state, the authenticated caller, and the
/// request's headers (for `X-Request-Id` in event metadata).
#[derive(Debug)]
struct Call<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    headers: &'a HeaderMap,
}

/// A failure raised before a request reaches the procedures (authentication, rate
/// limit, body limit), rendered as tRPC's error for requests under `/trpc`, so the
/// official client reads it as a `TRPCClientError` with the right code.
pub fn error_response(error: ApiError) -> Response {
    request_error(RpcError::from(error))
}

/// One request, as read from the wire.
#[derive(Debug)]
struct Wire {
    batch: bool,
    paths: Vec<String>,
    /// The raw input: `?input=` for GET, the body otherwise (`None`: absent).
    raw_input: Option<String>,
}

async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::HEAD {
        return StatusCode::NO_CONTENT.into_response();
    }
    let caller = parts.extensions.get::<Caller>().cloned();
    let wire = match read_wire(&state, &parts.method, &parts.uri, &parts.headers, body).await {
        Ok(wire) => wire,
        Err(error) => return request_error(error),
    };
    let procedures: Vec<Option<Procedure>> = wire
        .paths
        .iter()
        .map(|path| Procedure::from_path(path))
        .collect();
    let mut types: Vec<ProcedureType> = procedures
        .iter()
        .flatten()
        .map(|p| p.procedure_type())
        .collect();
    types.dedup();
    if types.len() > 1 {
        return request_error(RpcError::bad_request(
            "Cannot mix procedure types in call: query, mutation; send queries and \
             mutations in separate batches",
        ));
    }

    let mut inputs = Inputs::new(wire.raw_input, wire.batch, wire.paths.len());
    let mut outcomes = Vec::with_capacity(wire.paths.len());
    for (index, (path, procedure)) in wire.paths.iter().zip(procedures).enumerate() {
        let outcome = run_call(
            &state,
            &parts,
            caller.as_ref(),
            path,
            procedure,
            &mut inputs,
            index,
        )
        .await;
        outcomes.push(outcome);
    }
    respond(wire.batch, &wire.paths, outcomes)
}

async fn read_wire(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Wire, RpcError> {
    let raw_path = uri.path().trim_start_matches('/');
    let path = percent_decode(raw_path).ok_or_else(|| {
        RpcError::bad_request(format!("Invalid URL-encoding in path \"{raw_path}\""))
    })?;
    let Query(params) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| RpcError::bad_request(format!("the query string is invalid: {e}")))?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let batch = param("batch") == Some("1");
    let paths: Vec<String> = if batch {
        path.split(',').map(str::to_string).collect()
    } else {
        vec![path]
    };
    if paths.len() > BATCH_CALLS_MAX {
        return Err(RpcError::bad_request(format!(
            "Batch call exceeds maximum size: at most {BATCH_CALLS_MAX} calls per batch"
        )));
    }
    let accept = headers
        .get("trpc-accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.eq_ignore_ascii_case("application/jsonl") {
        return Err(RpcError::bad_request(
            "streaming responses are not supported; use httpBatchLink or httpLink \
             instead of httpBatchStreamLink",
        ));
    }
    if *method == Method::GET {
        let raw_input = param("input")
            .filter(|input| !input.is_empty())
            .map(str::to_string);
        return Ok(Wire {
            batch,
            paths,
            raw_input,
        });
    }
    if *method != Method::POST {
        // No procedure accepts another method: every call will be refused with
        // METHOD_NOT_SUPPORTED (or NOT_FOUND) before it needs an input.
        return Ok(Wire {
            batch,
            paths,
            raw_input: None,
        });
    }
    if !is_json(headers) {
        let message = match headers.get(header::CONTENT_TYPE) {
            Some(value) => format!(
                "Unsupported content-type \"{}\"; send the input as application/json",
                value.to_str().unwrap_or("?")
            ),
            None => "Missing content-type header; send the input as application/json".into(),
        };
        return Err(RpcError::new(RpcCode::UnsupportedMediaType, message));
    }
    let bytes = to_bytes(body, state.config.body_limit_bytes)
        .await
        .map_err(|_| {
            RpcError::new(
                RpcCode::PayloadTooLarge,
                format!(
                    "the request body could not be read in full; it must be at most {} bytes",
                    state.config.body_limit_bytes
                ),
            )
        })?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| RpcError::bad_request("the request body is not UTF-8 text"))?;
    Ok(Wire {
        batch,
        paths,
        raw_input: (!text.is_empty()).then_some(text),
    })
}

/// `Content-Type` is `application/json` (parameters and case aside).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Percent-decodes a path (`+` stays `+`); `None` for a bad escape or bad UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The calls' inputs, parsed on first use: a call that fails before it reads its
/// input (unknown path, no credential) is not reported as malformed input.
#[derive(Debug)]
struct Inputs {
    raw: Option<String>,
    batch: bool,
    count: usize,
    parsed: Option<Result<Vec<Option<Value>>, RpcError>>,
}

impl Inputs {
    fn new(raw: Option<String>, batch: bool, count: usize) -> Self {
        Inputs {
            raw,
            batch,
            count,
            parsed: None,
        }
    }

    fn get(&mut self, index: usize) -> Result<Option<Value>, RpcError> {
        let (raw, batch, count) = (&self.raw, self.batch, self.count);
        let parsed = self
            .parsed
            .get_or_insert_with(|| Self::parse(raw.as_deref(), batch, count));
        match parsed {
            Ok(inputs) => Ok(inputs.get(index).cloned().flatten()),
            Err(error) => Err(error.clone()),
        }
    }

    fn parse(raw: Option<&str>, batch: bool, count: usize) -> Result<Vec<Option<Value>>, RpcError> {
        let Some(raw) = raw else {
            return Ok(vec![None; count]);
        };
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| RpcError::bad_request(format!("the input is not valid JSON: {e}")))?;
        if !batch {
            return Ok(vec![Some(value)]);
        }
        let Value::Object(mut by_index) = value else {
            return Err(RpcError::bad_request(
                "\"input\" needs to be an object when doing a batch call",
            ));
        };
        Ok((0..count)
            .map(|index| by_index.remove(&index.to_string()))
            .collect())
    }
}

async fn run_call(
    state: &AppState,
    parts: &Parts,
    caller: Option<&Caller>,
    path: &str,
    procedure: Option<Procedure>,
    inputs: &mut Inputs,
    index: usize,
) -> Result<Value, RpcError> {
    let procedure = procedure.ok_or_else(|| {
        RpcError::new(
            RpcCode::NotFound,
            format!("No procedure found on path \"{path}\""),
        )
    })?;
    let procedure_type = procedure.procedure_type();
    let method = &parts.method;
    if *method != procedure_type.method() {
        return Err(RpcError::new(
            RpcCode::MethodNotSupported,
            format!(
                "Unsupported {method}-request to {} procedure at path \"{path}\"; use {}",
                procedure_type.as_str(),
                procedure_type.method()
            ),
        )
        .with_header(
            header::ALLOW,
            HeaderValue::from_static(procedure_type.method_name()),
        ));
    }
    let caller = caller.ok_or_else(|| {
        RpcError::new(
            RpcCode::Unauthorized,
            "sign in first: send Authorization: Bearer <token> or log in for a session cookie",
        )
    })?;
    caller.require(procedure.permission())?;
    let input = inputs.get(index)?;
    let call = Call {
        state,
        caller,
        headers: &parts.headers,
    };
    procedure.call(&call, input).await
}

fn json_response(status: StatusCode, body: &Value, errors: &[&RpcError]) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("trpc-accept, accept"),
    );
    for error in errors {
        for (name, value) in &error.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}

/// A failure of the whole request: one error object, no path.
fn request_error(error: RpcError) -> Response {
    json_response(
        error.code.http_status(),
        &serde_json::json!({ "error": error.shape(None) }),
        &[&error],
    )
}

fn respond(batch: bool, paths: &[String], outcomes: Vec<Result<Value, RpcError>>) -> Response {
    let status_of = |outcome: &Result<Value, RpcError>| match outcome {
        Ok(_) => StatusCode::OK,
        Err(error) => error.code.http_status(),
    };
    let mut statuses: Vec<StatusCode> = outcomes.iter().map(status_of).collect();
    statuses.sort_unstable_by_key(|s| s.as_u16());
    statuses.dedup();
    let status = match statuses.as_slice() {
        [one] => *one,
        _ => StatusCode::MULTI_STATUS,
    };
    let errors: Vec<&RpcError> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    let items: Vec<Value> = outcomes
        .iter()
        .zip(paths)
        .map(|(outcome, path)| match outcome {
            Ok(data) => serde_json::json!({ "result": { "data": data } }),
            Err(error) => serde_json::json!({ "error": error.shape(Some(path)) }),
        })
        .collect();
    let body = if batch {
        Value::Array(items)
    } else {
        items.into_iter().next().unwrap_or(Value::Null)
    };
    json_response(status, &body, &errors)
}

/// Largest problem body read back when re-rendering a layer's error for tRPC.
const PROBLEM_BODY_BYTES_MAX: usize = 64 * 1024;

/// Outermost layer for `/trpc`: failures answered before the procedures run
/// (authentication, rate limit, body limit — all problem+json) are rendered in
/// tRPC's error shape instead, keeping every header the layers set
/// (`Retry-After`, rate-limit and security headers), so the official client reads
/// them as `UNAUTHORIZED`, `TOO_MANY_REQUESTS`, `PAYLOAD_TOO_LARGE`, ….
pub async fn problems_as_trpc_errors<F, Fut>(request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let is_trpc = request.uri().path().starts_with("/trpc");
    let response = next(request).await;
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes()
                .starts_with(crate::error::PROBLEM_JSON.as_bytes())
        });
    if !is_trpc || !is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = match axum::body::to_bytes(body, PROBLEM_BODY_BYTES_MAX).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|problem| {
                problem
                    .get("detail")
                    .and_then(|d| d.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let mut rendered = error_response(ApiError::new(parts.status, "trpc", detail));
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(
            percent_decode("events.list%2Cnotes.search").as_deref(),
            Some("events.list,notes.search")
        );
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn every_procedure_is_found_by_its_path() {
        for procedure in Procedure::ALL {
            assert_eq!(Procedure::from_path(procedure.path()), Some(procedure));
        }
        assert_eq!(Procedure::from_path("notes"), None);
    }

    #[test]
    fn batch_inputs_are_taken_by_index() {
        let mut inputs = Inputs::new(Some(r#"{"1":{"a":1}}"#.into()), true, 2);
        assert_eq!(inputs.get(0).unwrap(), None);
        assert_eq!(inputs.get(1).unwrap(), Some(serde_json::json!({"a": 1})));
        let mut inputs = Inputs::new(Some("[1]".into()), true, 1);
        assert!(inputs.get(0).is_err());
        let mut inputs = Inputs::new(Some("{".into()), false, 1);
        assert_eq!(inputs.get(0).unwrap_err().code, RpcCode::BadRequest);
        let mut inputs = Inputs::new(None, true, 3);
        assert_eq!(inputs.get(2).unwrap(), None);
    }
}
