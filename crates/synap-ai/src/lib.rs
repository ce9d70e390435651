//! Synap's AI providers, used by the `capture.enrich` workflow and semantic search.
//!
//! - **Analysis** ([`Analyzer`]): a captured thought → an [`Analysis`] (title, 3–5
//!   tags, intent note/task/idea/event, due date and priority for tasks). Providers:
//!   [`LocalAnalyzer`] (the default; offline and deterministic),
//!   [`AnthropicAnalyzer`] (Messages API, forced tool call) and [`OpenAiAnalyzer`]
//!   (any OpenAI-compatible chat completions endpoint, strict JSON schema). Every
//!   provider's output passes the same validation ([`Analysis::validate`]).
//! - **Embeddings** ([`Embedder`]): texts → normalised vectors, with [`chunk_text`]
//!   for long bodies. Providers: [`embed::openai::OpenAiEmbedder`] and, with the
//!   default `local-embeddings` feature, `embed::local::LocalEmbedder`
//!   (all-MiniLM-L6-v2 with candle, from a directory of model files).
//! - **Errors** ([`AiError`]) say whether a retry can help
//!   ([`AiError::is_retryable`], [`AiError::retry_after`]); providers never retry by
//!   themselves — the workflow engine owns retries, backoff and the fallback.
//! - **Configuration** ([`AiConfig`], [`build_analyzer`], [`build_embedder`]).
//!
//! Invariants: this crate does no storage and serves no HTTP; it reads the clock only
//! through the `now` it is given; no input makes it panic.
//!
//! Typical use by the workflow step:
//!
//! ```no_run
//! # async fn step(analyzer: &dyn synap_ai::Analyzer) -> Result<(), synap_ai::AiError> {
//! let request = synap_ai::AnalysisRequest {
//!     text: "Buy milk tomorrow at 3pm".into(),
//!     now: "2026-11-28T09:00:00Z".parse().unwrap(),
//!     time_zone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
//! };
//! match analyzer.analyze(&request).await {
//!     Ok(analysis) => { /* apply title, tags, type, due date as events */ }
//!     Err(e) if e.is_retryable() => { /* let the engine retry, after e.retry_after() */ }
//!     Err(e) => { /* non-retryable: fall back, record e in the run */ }
//! }
//! # Ok(()) }
//! ```

pub mod analysis;
pub mod anthropic;
pub mod config;
pub mod embed;
pub mod error;
mod http;
pub mod local;
pub mod openai;

pub use analysis::{
    ANALYSIS_TAGS_MAX, ANALYSIS_TAGS_MIN, Analysis, AnalysisRequest, Analyzer,
    analysis_json_schema, parse_analysis_json,
};
pub use anthropic::{AnthropicAnalyzer, AnthropicConfig};
pub use config::{
    AiConfig, AnalyzerConfig, AnalyzerProvider, ApiKey, EmbeddingConfig, EmbeddingProvider,
    build_analyzer, build_embedder,
};
pub use embed::{
    CHUNK_CHARS_DEFAULT, CHUNK_OVERLAP_CHARS_DEFAULT, Chunk, Embedder, chunk_text, cosine,
};
pub use error::AiError;
pub use http::{CONNECT_TIMEOUT, REQUEST_TIMEOUT_DEFAULT, RETRY_AFTER_MAX};
pub use local::LocalAnalyzer;
pub use openai::{OpenAiAnalyzer, OpenAiConfig};
