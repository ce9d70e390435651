//! `GET /v1/events/stream`: the caller's events as Server-Sent Events.
//!
//! Each event is one frame: `id: <position>`, `event: <type>`, `data: <the
//! stored event as JSON>`. A client resumes with `Last-Event-ID` (what
//! `EventSource` sends on reconnect; it wins over the query) or `?after=P`.
//!
//! One reader task per stream feeds a bounded channel that the response body
//! drains:
//!
//! 1. catch up: pages of `read_events` after the last position *sent*;
//! 2. live: note the head position before a read, read after the last position
//!    sent, then `wait_for_events(head)`; on wake (a commit, or the keep-alive
//!    period) read again after the last position sent.
//!
//! Every read starts after the last position that went into the channel, never
//! after a cached head, so the switch from catch-up to live has no gap and no
//! duplicate, and positions are strictly increasing (the log's contract).
//!
//! The channel holds at most `config.sse_buffer_events` frames, so a stream
//! never holds more than that many frames in memory. A client that does not read
//! lets it fill; when it stays full for a whole keep-alive period the reader ends
//! the stream (counted in `synap_sse_streams_cut_slow_total`): the body ends
//! after the queued frames and the client can resume with `Last-Event-ID`. The
//! stream also ends when the server shuts down (`state.shutdown`).

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::metrics::{Metrics, StreamGuard};
use crate::routes::dto::{CommonErrors, Problem};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use synap_domain::StoredEvent;
use synap_store::{EventFilter, Scope, Store};
use tokio::sync::{mpsc, watch};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Events per catch-up read (the store's page maximum).
pub const STREAM_PAGE_EVENTS: u32 = 500;
/// The reconnect delay suggested to clients (`retry:`), in milliseconds.
pub const RETRY_MILLIS: u32 = 2000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this position (default 0: from the first event). The
    /// `Last-Event-ID` header, when present, wins.
    pub after: Option<u64>,
}

/// Live feed of the caller's events (Server-Sent Events).
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    tag = "events",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this position (sent by EventSource on reconnect)"),
    ),
    responses(
        (status = 200, description = "An event stream: frames `id: <position>`, \
            `event: <type>`, `data: <event JSON>`, and `:` keep-alive comments",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad `after` (`invalid_query`) or `Last-Event-ID` (`invalid_last_event_id`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::Read)?;
    // An empty `Last-Event-ID` (a client that has seen no event yet) is no header.
    let last_event_id = headers
        .get("last-event-id")
        .filter(|value| !value.as_bytes().iter().all(u8::is_ascii_whitespace));
    let after = match last_event_id {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_last_event_id",
                    "Last-Event-ID must be an event position (a whole number)",
                )
            })?,
        None => query.after.unwrap_or(0),
    };

    let capacity = state.config.sse_buffer_events.max(1);
    let (frames, receiver) = mpsc::channel(capacity);
    let guard = state.metrics.stream_opened();
    let reader = Reader {
        store: state.store.clone(),
        scope: caller.scope(),
        last_sent: after,
        frames,
        shutdown: state.shutdown.clone(),
        keep_alive: state.config.sse_keep_alive,
        metrics: state.metrics.clone(),
    };
    tokio::spawn(reader.run(guard));

    let body = Body::from_stream(Frames { receiver });
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) must not buffer a live stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One SSE frame for an event.
pub fn event_frame(event: &StoredEvent) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.position,
        event.event_type()
    ))
}

const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";

/// Why the reader stopped.
enum Stop {
    /// The client went away, or the server is shutting down.
    Done,
    /// The buffer stayed full for a whole keep-alive period: the client does not read.
    Slow,
}

/// Resolves when the server starts shutting down (never, if nobody can tell it to).
async fn shutting_down(mut shutdown: watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Reader {
    store: Arc<dyn Store>,
    scope: Scope,
    /// The position of the last event put into the channel.
    last_sent: u64,
    frames: mpsc::Sender<Bytes>,
    shutdown: watch::Receiver<bool>,
    keep_alive: Duration,
    metrics: Arc<Metrics>,
}

impl Reader {
    async fn run(mut self, guard: StreamGuard) {
        let shutdown = shutting_down(self.shutdown.clone());
        let stop = tokio::select! {
            stop = self.follow() => stop,
            _ = shutdown => Stop::Done,
        };
        if let Stop::Slow = stop {
            self.metrics.stream_cut_slow();
        }
        // Dropping the sender (with `self`) ends the body once the client has
        // read what is queued.
        drop(guard);
    }

    /// Queues a frame. A full buffer is waited on for at most one keep-alive
    /// period (a reading client frees room long before; a catch-up burst only
    /// has to wait for the network); after that the client counts as not reading.
    async fn offer(&self, frame: Bytes) -> Result<(), Stop> {
        match self.frames.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Stop::Done),
            Err(mpsc::error::TrySendError::Full(frame)) => {
                match tokio::time::timeout(self.keep_alive, self.frames.send(frame)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(Stop::Done),
                    Err(_) => Err(Stop::Slow),
                }
            }
        }
    }

    /// Sends every event after `last_sent` that is committed now.
    async fn drain(&mut self) -> Result<(), Stop> {
        loop {
            let filter = EventFilter {
                after: self.last_sent,
                limit: Some(STREAM_PAGE_EVENTS),
                ..EventFilter::default()
            };
            let page = match self.store.read_events(&self.scope, &filter).await {
                Ok(page) => page,
                Err(error) => {
                    eprintln!("synap: event stream read failed: {error}");
                    return Err(Stop::Done);
                }
            };
            let full = page.len() >= STREAM_PAGE_EVENTS as usize;
            for event in &page {
                self.offer(event_frame(event)).await?;
                self.last_sent = event.position;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn follow(&mut self) -> Stop {
        if let Err(stop) = self
            .offer(Bytes::from(format!("retry: {RETRY_MILLIS}\n\n")))
            .await
        {
            return stop;
        }
        loop {
            // The head before the read: everything committed up to it is seen by
            // the read, so waiting for a head above it misses nothing.
            let head = match self.store.head_position().await {
                Ok(head) => head,
                Err(_) => return Stop::Done,
            };
            if let Err(stop) = self.drain().await {
                return stop;
            }
            tokio::select! {
                waited = self.store.wait_for_events(head, self.keep_alive) => match waited {
                    Ok(now) if now > head => {}
                    Ok(_) => {
                        // Quiet for a keep-alive period.
                        if let Err(stop) = self.offer(Bytes::from_static(KEEP_ALIVE_FRAME)).await {
                            return stop;
                        }
                    }
                    Err(_) => return Stop::Done,
                },
                _ = self.frames.closed() => return Stop::Done,
            }
        }
    }
}

/// The response body: frames from the reader until it stops.
struct Frames {
    receiver: mpsc::Receiver<Bytes>,
}

impl Stream for Frames {
    type Item = Result<Bytes, std::convert::Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}
