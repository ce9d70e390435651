//! The one error type of every AI provider, and the retry decision the workflow
//! engine reads from it: [`AiError::is_retryable`] and [`AiError::retry_after`].
//!
//! Retryable: the provider or the network was in the way this time (a timeout, a
//! connection failure, HTTP 429, 408 or 5xx). Not retryable: asking again cannot help
//! (the credentials were refused, the request was rejected, the output did not pass
//! validation, the configuration or the local model is wrong).

use std::time::Duration;

/// Why an analysis or an embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// No complete answer within the configured timeout.
    #[error("{provider} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        provider: &'static str,
        timeout: Duration,
    },
    /// HTTP 429. `retry_after` is the provider's `Retry-After`, when it sent one.
    #[error("{provider} is rate limiting requests (HTTP 429){}", retry_after_text(*retry_after))]
    RateLimited {
        provider: &'static str,
        retry_after: Option<Duration>,
    },
    /// Any other non-success HTTP status. 408 and 5xx are retryable, the rest not.
    #[error("{provider} answered HTTP {status}: {message}")]
    Status {
        provider: &'static str,
        status: u16,
        /// The provider's own error message, shortened.
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or the answer could not be read.
    #[error("could not reach {provider}: {message}")]
    Connection {
        provider: &'static str,
        message: String,
    },
    /// The provider answered, but not with what the schema and the domain limits allow.
    #[error("{provider} returned invalid output: {reason}")]
    InvalidOutput {
        provider: &'static str,
        reason: String,
    },
    /// The configuration cannot work (missing key, missing model file, bad URL).
    #[error("AI configuration: {0}")]
    Config(String),
    /// The local model failed to load or to run.
    #[error("local embedding model: {0}")]
    Model(String),
}

impl AiError {
    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            AiError::Timeout { .. } | AiError::RateLimited { .. } | AiError::Connection { .. } => {
                true
            }
            AiError::Status { status, .. } => *status == 408 || *status >= 500,
            AiError::InvalidOutput { .. } | AiError::Config(_) | AiError::Model(_) => false,
        }
    }

    /// How long the provider asked us to wait before retrying, when it said so.
    /// The workflow engine uses it as the lower bound of its backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AiError::RateLimited { retry_after, .. } | AiError::Status { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short, stable name of the failure kind, for run records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AiError::Timeout { .. } => "timeout",
            AiError::RateLimited { .. } => "rate_limited",
            AiError::Status { .. } => "http_status",
            AiError::Connection { .. } => "connection",
            AiError::InvalidOutput { .. } => "invalid_output",
            AiError::Config(_) => "config",
            AiError::Model(_) => "model",
        }
    }

    pub(crate) fn invalid(provider: &'static str, reason: impl Into<String>) -> Self {
        AiError::InvalidOutput {
            provider,
            reason: reason.into(),
        }
    }
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry after {} s", d.as_secs()),
        None => String::new(),
    }
}
