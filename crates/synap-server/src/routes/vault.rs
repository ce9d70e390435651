//! `POST /v1/import` (a ZIP of a Markdown vault → entities, idempotently) and
//! `GET /v1/export` (every entity as Markdown in a streamed ZIP, now or `?at=` a
//! moment). Both act only in the caller's scope; the work is `synap_vault`'s.

use super::dto::{
    CanRead, CanWrite, CommonErrors, Problem, QueryParams, command_metadata, parse_time,
};
use crate::error::{ApiError, ApiResult};
use crate::security::errors::payload_too_large;
use crate::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::io::Write;
use synap_vault::source::SourceError;
use synap_vault::{
    ExportOptions, ImportOptions, ImportReport, VaultSource, export_vault, import_vault,
};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest ZIP `POST /v1/import` accepts, in bytes. (The server-wide body limit,
/// `body_limit_bytes`, applies first when it is lower.)
pub const IMPORT_ZIP_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Bytes of a streamed export ZIP sent per chunk.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks buffered between the ZIP writer and the connection.
const EXPORT_CHUNKS_BUFFERED: usize = 8;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(export))
}

/// One file or link that could not be mapped.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportProblem {
    /// The vault path it concerns.
    pub path: String,
    /// `not_utf8`, `unreadable`, `too_large`, `unsafe_path`, `bad_frontmatter`,
    /// `broken_link`, `ambiguous_link`, `invalid_value`, `attachment_pending`,
    /// `deleted_entity` or `rejected`.
    pub kind: String,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    /// Markdown files found.
    pub notes: u64,
    pub created: u64,
    pub updated: u64,
    /// Files whose entity already matched (nothing written).
    pub unchanged: u64,
    /// Files not imported (see `problems`).
    pub skipped: u64,
    pub relations_created: u64,
    /// Embedded files attached to their notes.
    pub attachments_added: u64,
    /// Events appended in all (`source: migration`).
    pub events: u64,
    pub problems: Vec<ImportProblem>,
}

impl From<ImportReport> for ImportSummary {
    fn from(report: ImportReport) -> Self {
        ImportSummary {
            notes: report.notes,
            created: report.created,
            updated: report.updated,
            unchanged: report.unchanged,
            skipped: report.skipped,
            relations_created: report.relations_created,
            attachments_added: report.attachments_added,
            events: report.events,
            problems: report
                .problems
                .into_iter()
                .map(|p| ImportProblem {
                    path: p.path,
                    kind: p.kind.to_string(),
                    message: p.message,
                })
                .collect(),
        }
    }
}

/// Import a Markdown vault.
///
/// The body is a ZIP of an Obsidian- or Logseq-style vault. Importing the same
/// vault again changes nothing; an edited vault appends only its changes. Files
/// that cannot be mapped are listed in `problems` and never stop the import.
#[utoipa::path(
    post,
    path = "/v1/import",
    tag = "vault",
    params(
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    request_body(content = Vec<u8>, content_type = "application/zip", description = "A ZIP of the vault (at most 256 MiB)."),
    responses(
        (status = 200, description = "What was created, changed and left alone, and what could not be mapped.", body = ImportSummary),
        (status = 400, description = "The body is not a ZIP archive (`invalid_archive`).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The ZIP is over the limit (`payload_too_large`), or holds too many files or too much Markdown (`archive_too_large`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn import(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ImportSummary>> {
    let limit = IMPORT_ZIP_BYTES_MAX.min(state.config.body_limit_bytes);
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| payload_too_large(limit))?;
    let source =
        tokio::task::spawn_blocking(move || VaultSource::read_zip(std::io::Cursor::new(bytes)))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|error| match error {
                SourceError::Zip(_) | SourceError::Io(_) => ApiError::bad_request(
                    "invalid_archive",
                    format!(
                        "the body is not a readable ZIP archive ({error}); send a ZIP of the vault"
                    ),
                ),
                SourceError::TooManyFiles
                | SourceError::TooLarge
                | SourceError::TooManyFileBytes => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "archive_too_large",
                    error.to_string(),
                ),
            })?;
    let options = ImportOptions {
        metadata: command_metadata(&caller, &headers),
        progress: None,
    };
    let report = import_vault(state.store.clone(), caller.scope(), source, options).await?;
    Ok(Json(report.into()))
}

/// Export every entity as Markdown.
///
/// A ZIP with one `.md` file per entity (frontmatter with id, type, title, tags,
/// task fields, metadata and typed relations; links as wikilinks), in the folders
/// the entities came from. Importing it gives back the same entities.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "vault",
    params(
        ("at" = Option<String>, Query, format = DateTime, description = "Export the knowledge base as it was at this RFC 3339 time (default: now)."),
    ),
    responses(
        (status = 200, description = "The vault as a ZIP, streamed.", content_type = "application/zip", body = Vec<u8>,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"synap-export.zip\"`."))),
        (status = 400, description = "A malformed or unknown parameter (`invalid_query`, with `parameter`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn export(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = QueryParams::parse(raw.as_deref(), &["at"])?;
    let at = query
        .single("at")?
        .map(|text| parse_time("at", text))
        .transpose()?;
    let vault = export_vault(state.store.clone(), caller.scope(), ExportOptions { at }).await?;
    let (sender, mut receiver) =
        mpsc::channel::<Result<Bytes, std::io::Error>>(EXPORT_CHUNKS_BUFFERED);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES),
        };
        let written = vault
            .write_zip_stream(&mut writer)
            .map_err(std::io::Error::other)
            .and_then(|()| writer.flush());
        if let Err(error) = written {
            // The client sees a truncated download; the connection ends with an error.
            let _ = sender.blocking_send(Err(error));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"synap-export.zip\""),
    );
    Ok(response)
}

/// Sends what the ZIP writer writes to the response body, in chunks.
struct ChunkWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= EXPORT_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(EXPORT_CHUNK_BYTES),
        ));
        self.sender.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}
