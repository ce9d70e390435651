//! Figures for `/metrics` in the Prometheus text format (version 0.0.4), written
//! by hand: requests by method, matched route and status with latency
//! histograms; commands (commit latency) and events appended; event streams open;
//! workflow steps and runs of this process's workers, and the queue depth.
//!
//! - [`track`] is the request middleware. It labels a request with axum's
//!   [`MatchedPath`] (`/v1/entities/{id}`, never the id itself), so the label set
//!   is the route table, not the URL space. As a second guard the number of
//!   request series is capped at [`REQUEST_SERIES_MAX`]; requests that would add
//!   a series beyond it are counted under the route [`OVERFLOW_ROUTE`].
//! - [`Metrics::observe_command`] (or [`Metrics::execute`], which times a store
//!   command and records it) is what write routes call around `execute`.
//! - [`Metrics::stream_opened`] returns a guard that keeps the open-streams gauge
//!   right however a stream ends.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use synap_store::workflow::{QueueDepth, RunStatus};
use synap_store::{CommandOutcome, CommandRequest, Store, StoreResult};
use synap_workflow::Observer;

/// At most this many `(method, route, status)` request series are kept, plus one
/// [`OVERFLOW_ROUTE`] series per method and status. The route label comes from the
/// route table, so a real server stays far below; the cap only matters if
/// something unexpected (a bug, a future catch-all route) would otherwise grow the
/// set without bound.
pub const REQUEST_SERIES_MAX: usize = 1000;
/// The route label of requests counted after [`REQUEST_SERIES_MAX`] was reached.
pub const OVERFLOW_ROUTE: &str = "(other)";
/// The route label of requests no route matched (answered by the fallback).
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A latency histogram.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket of `LATENCY_BUCKETS` (the `+Inf` bucket is `count`).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Writes `_bucket`, `_sum` and `_count` lines; `labels` is `k="v",…` or empty.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (le, count) in LATENCY_BUCKETS.iter().zip(self.buckets.iter()) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RequestKey {
    method: &'static str,
    route: String,
    status: u16,
}

/// The server's metrics registry (one per `AppState`).
#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<HashMap<RequestKey, Histogram>>,
    commands: Mutex<Histogram>,
    events_appended: AtomicU64,
    streams_open: AtomicI64,
    streams_total: AtomicU64,
    streams_cut_slow: AtomicU64,
    /// Step executions by (workflow, step, outcome `ok`/`error`). Names come from
    /// the registry of the workflows this process runs, so the set is bounded.
    workflow_steps: Mutex<HashMap<(String, String, &'static str), Histogram>>,
    /// Finished runs by (workflow, final status), timed from enqueueing.
    workflow_runs: Mutex<HashMap<(String, &'static str), Histogram>>,
    workflow_lease_lost: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(HashMap::new()),
            commands: Mutex::new(Histogram::default()),
            events_appended: AtomicU64::new(0),
            streams_open: AtomicI64::new(0),
            streams_total: AtomicU64::new(0),
            streams_cut_slow: AtomicU64::new(0),
            workflow_steps: Mutex::new(HashMap::new()),
            workflow_runs: Mutex::new(HashMap::new()),
            workflow_lease_lost: AtomicU64::new(0),
        }
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// A label value with `\`, `"` and line breaks escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one answered request. `route` is the matched route pattern
    /// (`None` when no route matched).
    pub fn observe_request(
        &self,
        method: &Method,
        route: Option<&str>,
        status: u16,
        elapsed: Duration,
    ) {
        let mut key = RequestKey {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED_ROUTE).to_string(),
            status,
        };
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if !requests.contains_key(&key) && requests.len() >= REQUEST_SERIES_MAX {
            key.route = OVERFLOW_ROUTE.to_string();
        }
        requests
            .entry(key)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Records one store command: how long `execute` took (commit latency as the
    /// caller sees it) and how many events it appended.
    pub fn observe_command(&self, elapsed: Duration, events: usize) {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(elapsed.as_secs_f64());
        self.events_appended
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Runs a command on the store and records it (failed commands count with no
    /// events): the one call write routes make instead of `store.execute`.
    pub async fn execute(
        &self,
        store: &dyn Store,
        request: CommandRequest,
    ) -> StoreResult<CommandOutcome> {
        let started = Instant::now();
        let outcome = store.execute(request).await;
        let events = match &outcome {
            Ok(outcome) if !outcome.replayed => outcome.events.len(),
            _ => 0,
        };
        self.observe_command(started.elapsed(), events);
        outcome
    }

    /// Counts an event stream as open until the guard is dropped.
    pub fn stream_opened(self: &Arc<Self>) -> StreamGuard {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        self.streams_total.fetch_add(1, Ordering::Relaxed);
        StreamGuard {
            metrics: self.clone(),
        }
    }

    /// Counts a stream ended because its client did not keep up.
    pub fn stream_cut_slow(&self) {
        self.streams_cut_slow.fetch_add(1, Ordering::Relaxed);
    }

    /// Event streams open now.
    pub fn streams_open(&self) -> i64 {
        self.streams_open.load(Ordering::Relaxed)
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut requests: Vec<(RequestKey, Histogram)> = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        requests.sort_by(|a, b| a.0.cmp(&b.0));

        out.push_str(
            "# HELP synap_http_requests_total HTTP requests answered, by method, matched route and status.\n\
             # TYPE synap_http_requests_total counter\n",
        );
        for (key, histogram) in &requests {
            let _ = writeln!(
                out,
                "synap_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                key.method,
                escape(&key.route),
                key.status,
                histogram.count
            );
        }

        // Latency by method and route (statuses merged).
        let mut by_route: Vec<((&'static str, String), Histogram)> = Vec::new();
        for (key, histogram) in &requests {
            let id = (key.method, key.route.clone());
            match by_route.iter_mut().find(|(k, _)| *k == id) {
                Some((_, merged)) => merged.merge(histogram),
                None => by_route.push((id, histogram.clone())),
            }
        }
        out.push_str(
            "# HELP synap_http_request_duration_seconds Time from request to response head, by method and matched route.\n\
             # TYPE synap_http_request_duration_seconds histogram\n",
        );
        for ((method, route), histogram) in &by_route {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            histogram.render(&mut out, "synap_http_request_duration_seconds", &labels);
        }

        let commands = self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str(
            "# HELP synap_command_duration_seconds Time of store commands until committed (commit latency).\n\
             # TYPE synap_command_duration_seconds histogram\n",
        );
        commands.render(&mut out, "synap_command_duration_seconds", "");
        let _ = write!(
            out,
            "# HELP synap_events_appended_total Events appended to the log by this server's commands.\n\
             # TYPE synap_events_appended_total counter\n\
             synap_events_appended_total {}\n\
             # HELP synap_sse_streams_open Event streams open now.\n\
             # TYPE synap_sse_streams_open gauge\n\
             synap_sse_streams_open {}\n\
             # HELP synap_sse_streams_total Event streams opened.\n\
             # TYPE synap_sse_streams_total counter\n\
             synap_sse_streams_total {}\n\
             # HELP synap_sse_streams_cut_slow_total Event streams ended because the client did not keep up.\n\
             # TYPE synap_sse_streams_cut_slow_total counter\n\
             synap_sse_streams_cut_slow_total {}\n",
            self.events_appended.load(Ordering::Relaxed),
            self.streams_open.load(Ordering::Relaxed),
            self.streams_total.load(Ordering::Relaxed),
            self.streams_cut_slow.load(Ordering::Relaxed),
        );
        self.render_workflows(&mut out);
        out
    }

    fn render_workflows(&self, out: &mut String) {
        let mut steps: Vec<_> = self
            .workflow_steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        steps.sort_by(|a, b| a.0.cmp(&b.0));
        out.push_str(
            "# HELP synap_workflow_step_duration_seconds Step executions of this process's workers, by workflow, step and outcome.\n\
             # TYPE synap_workflow_step_duration_seconds histogram\n",
        );
        for ((workflow, step, outcome), histogram) in &steps {
            let labels = format!(
                "workflow=\"{}\",step=\"{}\",outcome=\"{outcome}\"",
                escape(workflow),
                escape(step)
            );
            histogram.render(out, "synap_workflow_step_duration_seconds", &labels);
        }
        let mut runs: Vec<_> = self
            .workflow_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        runs.sort_by(|a, b| a.0.cmp(&b.0));
        out.push_str(
            "# HELP synap_workflow_run_duration_seconds Runs finished by this process's workers, from enqueueing to the end, by workflow and status (failed runs are the failures).\n\
             # TYPE synap_workflow_run_duration_seconds histogram\n",
        );
        for ((workflow, status), histogram) in &runs {
            let labels = format!("workflow=\"{}\",status=\"{status}\"", escape(workflow));
            histogram.render(out, "synap_workflow_run_duration_seconds", &labels);
        }
        let _ = write!(
            out,
            "# HELP synap_workflow_lease_lost_total Step results refused because the worker had lost the run's lease.\n\
             # TYPE synap_workflow_lease_lost_total counter\n\
             synap_workflow_lease_lost_total {}\n",
            self.workflow_lease_lost.load(Ordering::Relaxed)
        );
    }
}

/// The queue depth gauge (runs per workflow and unfinished state, across every
/// process on the database), read from the store at scrape time.
pub fn render_queue_depth(out: &mut String, depth: &[QueueDepth]) {
    out.push_str(
        "# HELP synap_workflow_runs Unfinished workflow runs in the database, by workflow and status.\n\
         # TYPE synap_workflow_runs gauge\n",
    );
    for row in depth {
        let _ = writeln!(
            out,
            "synap_workflow_runs{{workflow=\"{}\",status=\"{}\"}} {}",
            escape(&row.workflow),
            row.status.as_str(),
            row.count
        );
    }
}

/// How far the search index is for the configured model: live entities whose
/// vectors are current, and those waiting for the indexer (after a model change,
/// all of them).
pub fn render_index_status(
    out: &mut String,
    model: &str,
    status: synap_store::vectors::IndexStatus,
) {
    out.push_str(
        "# HELP synap_search_index_entities Live entities by search-vector state for the configured embedding model.\n\
         # TYPE synap_search_index_entities gauge\n",
    );
    for (state, count) in [("indexed", status.indexed), ("pending", status.pending)] {
        let _ = writeln!(
            out,
            "synap_search_index_entities{{model=\"{}\",state=\"{state}\"}} {count}",
            escape(model)
        );
    }
}

impl Observer for Metrics {
    fn step_finished(&self, workflow: &str, step: &str, ok: bool, duration: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.workflow_steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((workflow.to_string(), step.to_string(), outcome))
            .or_default()
            .observe(duration.as_secs_f64());
    }

    fn run_finished(&self, workflow: &str, status: RunStatus, duration: Duration) {
        self.workflow_runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((workflow.to_string(), status.as_str()))
            .or_default()
            .observe(duration.as_secs_f64());
    }

    fn lease_lost(&self, _workflow: &str) {
        self.workflow_lease_lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps one stream counted as open; dropping it closes the count.
#[derive(Debug)]
pub struct StreamGuard {
    metrics: Arc<Metrics>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts every request by method, matched route and status and times it (to the
/// response head; a stream's body is not included).
/// It runs inside the router (as a per-route layer), where [`MatchedPath`] is known.
pub async fn track<F, Fut>(state: &AppState, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next(request).await;
    state.metrics.observe_request(
        &method,
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_series_are_bounded() {
        let metrics = Metrics::default();
        metrics.observe_request(
            &Method::GET,
            Some("/v1/entities/{id}"),
            200,
            Duration::from_millis(3),
        );
        metrics.observe_request(
            &Method::GET,
            Some("/v1/entities/{id}"),
            404,
            Duration::from_millis(30),
        );
        for i in 0..REQUEST_SERIES_MAX + 10 {
            metrics.observe_request(&Method::GET, Some(&format!("/r{i}")), 200, Duration::ZERO);
        }
        let text = metrics.render();
        assert!(text.contains(
            "synap_http_requests_total{method=\"GET\",route=\"/v1/entities/{id}\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "synap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entities/{id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "synap_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entities/{id}\",le=\"+Inf\"} 2"
        ));
        let series = text
            .lines()
            .filter(|l| l.starts_with("synap_http_requests_total{"))
            .count();
        assert_eq!(series, REQUEST_SERIES_MAX + 1);
        assert!(text.contains(&format!("route=\"{OVERFLOW_ROUTE}\",status=\"200\"}} 12")));
    }

    #[test]
    fn commands_and_streams_are_counted() {
        let metrics = Arc::new(Metrics::default());
        metrics.observe_command(Duration::from_millis(2), 3);
        let guard = metrics.stream_opened();
        assert_eq!(metrics.streams_open(), 1);
        let text = metrics.render();
        assert!(text.contains("synap_events_appended_total 3\n"));
        assert!(text.contains("synap_command_duration_seconds_count 1\n"));
        assert!(text.contains("synap_sse_streams_open 1\n"));
        drop(guard);
        assert_eq!(metrics.streams_open(), 0);
    }
}
