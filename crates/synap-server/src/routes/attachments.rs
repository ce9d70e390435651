//! `/v1/entities/{id}/attachments`: files attached to an entity. Uploads stream
//! to the object store under their own size limit (`attachment_limit_bytes`, not
//! the JSON body limit) — the raw bytes are the request body, the file name comes
//! in the `X-Filename` header; downloads stream back with `Range` support. Bytes are
//! stored once per (user, hash); events carry references only.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::routes::dto::{CanRead, CanWrite, CommonErrors, Problem, command_metadata};
use crate::routes::entities::not_found;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use serde::Serialize;
use synap_domain::entity::Attachment as DomainAttachment;
use synap_domain::ids::{AttachmentId, EntityId};
use synap_store::attachments::{self, AttachError, Upload};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The header that names an uploaded file (UTF-8, percent-encoded where needed).
pub const FILENAME_HEADER: &str = "x-filename";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_attachment, list_attachments))
        .routes(routes!(download_attachment, delete_attachment))
}

/// Whether a request is an attachment upload (which has its own body limit).
pub fn is_upload(request: &Request) -> bool {
    if request.method() != Method::POST {
        return false;
    }
    let path = request.uri().path();
    path.strip_prefix("/v1/entities/")
        .and_then(|rest| rest.strip_suffix("/attachments"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// A file attached to an entity.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attachment {
    pub id: Uuid,
    pub filename: String,
    /// Detected from the bytes; the declared `Content-Type` when they say nothing.
    pub media_type: String,
    pub size: u64,
    /// SHA-256 of the bytes (hex); also the download's `ETag`.
    pub hash: String,
    #[schema(value_type = String, format = DateTime)]
    pub added_at: Timestamp,
}

impl From<DomainAttachment> for Attachment {
    fn from(a: DomainAttachment) -> Self {
        Attachment {
            id: a.id.0,
            filename: a.filename,
            media_type: a.media_type,
            size: a.size,
            hash: a.hash.to_string(),
            added_at: a.added_at,
        }
    }
}

/// The attachments of an entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentList {
    pub items: Vec<Attachment>,
}

/// Attach a file to an entity.
///
/// The request body is the file's bytes, streamed to storage (never held whole in
/// memory), up to the attachment limit (100 MiB unless `SYNAP_ATTACHMENT_LIMIT`
/// says otherwise) — also for chunked bodies. The file name comes in `X-Filename`
/// (UTF-8, percent-encoded where needed). The media type is detected from the
/// bytes; `Content-Type` is the fallback. Answers 201 with the attachment; the
/// entity gets an `entity.attachment_added` event.
#[utoipa::path(
    post,
    path = "/v1/entities/{id}/attachments",
    tag = "attachments",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("X-Filename" = String, Header, description = "The file name, 1–255 characters without `/`, `\\` or control characters; percent-encode non-ASCII (e.g. `r%C3%A9sum%C3%A9.pdf`)."),
        ("Content-Type" = Option<String>, Header, description = "The declared media type, used when the bytes do not reveal one."),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes."),
    responses(
        (status = 201, description = "The new attachment.", body = Attachment,
            headers(("Location" = String, description = "Where to download it."))),
        (status = 400, description = "A malformed id (`invalid_id`), a missing `X-Filename` (`missing_filename`) or a body that broke off (`upload_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The entity is deleted (`entity_deleted`).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over the attachment limit (`payload_too_large`, with `limit_bytes`); nothing is kept.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad file name (`validation_failed`, `field`: `filename`) or too many attachments.", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn upload_attachment(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let limit_bytes = state.config.attachment_limit_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit_bytes) {
        return Err(too_large(limit_bytes));
    }
    let filename = headers
        .get(FILENAME_HEADER)
        .map(|v| percent_decode(v.as_bytes()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_filename",
                "name the file in the X-Filename header (percent-encode non-ASCII characters)",
            )
        })?
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_filename",
                "X-Filename is not UTF-8 once percent-decoded",
            )
        })?;
    let declared_media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()))
        .boxed();
    let scope = caller.scope();
    let upload = Upload {
        filename,
        declared_media_type,
        limit_bytes,
        metadata: command_metadata(&caller, &headers),
    };
    let entity = EntityId(id);
    let (attachment, _) = attachments::attach(state.store.as_ref(), scope, entity, upload, stream)
        .await
        .map_err(|error| match error {
            AttachError::TooLarge { limit_bytes } => too_large(limit_bytes),
            AttachError::Upload(message) => {
                ApiError::bad_request("upload_failed", format!("the upload broke off: {message}"))
            }
            AttachError::Store(error) => error.into(),
        })?;
    let location = format!("/v1/entities/{id}/attachments/{}", attachment.id);
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/")),
        )],
        Json(Attachment::from(attachment)),
    )
        .into_response())
}

fn too_large(limit_bytes: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the file is over the attachment limit of {limit_bytes} bytes"),
    )
    .with("limit_bytes", limit_bytes)
}

/// Percent-decodes a header value; `None` unless the result is UTF-8.
fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let byte = raw[i];
        if byte == b'%'
            && i + 2 < raw.len()
            && let (Some(high), Some(low)) = (hex_value(raw[i + 1]), hex_value(raw[i + 2]))
        {
            out.push(high * 16 + low);
            i += 3;
            continue;
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// List an entity's attachments.
///
/// Oldest first. A deleted entity still lists its attachments.
#[utoipa::path(
    get,
    path = "/v1/entities/{id}/attachments",
    tag = "attachments",
    params(("id" = Uuid, Path, description = "The entity's id.")),
    responses(
        (status = 200, description = "The attachments.", body = AttachmentList),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_attachments(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AttachmentList>> {
    let items = attachments::list(state.store.as_ref(), caller.scope(), EntityId(id))
        .await?
        .ok_or_else(|| not_found(EntityId(id)))?;
    Ok(Json(AttachmentList {
        items: items.into_iter().map(Attachment::from).collect(),
    }))
}

/// Download an attachment.
///
/// Streams the bytes with their media type, `Content-Length` and the SHA-256 as
/// `ETag`. A single `Range: bytes=…` answers 206 with that part (416 when it lies
/// outside the file); several ranges get the whole file.
#[utoipa::path(
    get,
    path = "/v1/entities/{id}/attachments/{attachment_id}",
    tag = "attachments",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("attachment_id" = Uuid, Path, description = "The attachment's id."),
        ("Range" = Option<String>, Header, description = "`bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`."),
    ),
    responses(
        (status = 200, description = "The file.", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("ETag" = String, description = "The SHA-256 of the bytes: `\"<hex>\"`."),
                    ("Accept-Ranges" = String, description = "`bytes`."))),
        (status = 206, description = "The requested range.", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Content-Range" = String, description = "`bytes START-END/SIZE`."))),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity or attachment, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range lies outside the file (`range_not_satisfiable`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn download_attachment(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath((id, attachment_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let scope = caller.scope();
    let attachment = attachments::find(
        state.store.as_ref(),
        scope,
        EntityId(id),
        AttachmentId(attachment_id),
    )
    .await?
    .ok_or_else(|| ApiError::not_found(format!("entity {id} has no attachment {attachment_id}")))?;
    let size = attachment.size;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match parse_range(value, size) {
            RangeRequest::Whole => None,
            RangeRequest::Part(range) => Some(range),
            RangeRequest::Unsatisfiable => {
                let mut response = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the file has {size} bytes; ask for a range inside them"),
                )
                .into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return Ok(response);
            }
        },
    };
    let stream = attachments::open(state.store.as_ref(), scope, &attachment, range.clone()).await?;
    let (status, length) = match &range {
        Some(range) => (StatusCode::PARTIAL_CONTENT, range.end - range.start),
        None => (StatusCode::OK, size),
    };
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&attachment.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", attachment.hash)) {
        headers.insert(header::ETAG, tag);
    }
    if let Some(range) = &range
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start, range.end - 1))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename*=UTF-8''{}",
        percent_encode(&attachment.filename)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // The user's file, never a page of this origin: scripts in it must not run here.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(response)
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable single range: send everything (RFC 9110 lets a server ignore it).
    Whole,
    Part(std::ops::Range<u64>),
    Unsatisfiable,
}

fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        // A suffix: the last N bytes.
        (true, false) => match end.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size),
            Err(_) => return RangeRequest::Whole,
        },
        (false, true) => match start.parse::<u64>() {
            Ok(s) => (s, size),
            Err(_) => return RangeRequest::Whole,
        },
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if e >= s => (s, e.saturating_add(1).min(size)),
            (Ok(_), Ok(_)) | (Err(_), _) | (_, Err(_)) => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if parsed.0 >= size || parsed.0 >= parsed.1 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(parsed.0..parsed.1)
}

/// RFC 5987 encoding of a file name for `filename*=UTF-8''…`.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Detach a file from an entity.
///
/// Appends `entity.attachment_removed`. The bytes stay stored: earlier versions
/// refer to them, and a revert can bring the attachment back. Answers 204.
#[utoipa::path(
    delete,
    path = "/v1/entities/{id}/attachments/{attachment_id}",
    tag = "attachments",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("attachment_id" = Uuid, Path, description = "The attachment's id."),
    ),
    responses(
        (status = 204, description = "Detached."),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity or attachment, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The entity is deleted (`entity_deleted`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn delete_attachment(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath((id, attachment_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let scope = caller.scope();
    let attachment_id = AttachmentId(attachment_id);
    if attachments::find(state.store.as_ref(), scope, EntityId(id), attachment_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "entity {id} has no attachment {attachment_id}"
        )));
    }
    attachments::detach(
        state.store.as_ref(),
        scope,
        EntityId(id),
        attachment_id,
        command_metadata(&caller, &headers),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Part(0..10));
        assert_eq!(parse_range("bytes=90-", 100), RangeRequest::Part(90..100));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Part(90..100));
        assert_eq!(parse_range("bytes=-200", 100), RangeRequest::Part(0..100));
        assert_eq!(
            parse_range("bytes=50-500", 100),
            RangeRequest::Part(50..100)
        );
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=9-3", 100), RangeRequest::Whole);
    }

    #[test]
    fn file_names_decode_and_encode() {
        assert_eq!(
            percent_decode(b"r%C3%A9sum%C3%A9.pdf").as_deref(),
            Some("résumé.pdf")
        );
        assert_eq!(percent_decode(b"100%.txt").as_deref(), Some("100%.txt"));
        assert_eq!(percent_decode(b"%FF"), None);
        assert_eq!(percent_encode("a b/é.txt"), "a%20b%2F%C3%A9.txt");
    }
}
