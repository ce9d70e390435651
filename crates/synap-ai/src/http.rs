//! The HTTP plumbing the remote providers share: one JSON POST with a timeout, and
//! the mapping of every way it can fail onto [`AiError`] (and so onto the retry
//! decision). Provider modules only build bodies and read answers.

use crate::error::AiError;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Duration;

/// How long one request to a provider may take, end to end, unless configured.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// How long to wait for the TCP (and TLS) connection, within the request timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured; a provider asking for more is treated as asking
/// for this much (the workflow engine's own maximum backoff applies anyway).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3_600);
/// Characters of a provider's error message kept in an [`AiError`].
pub const ERROR_MESSAGE_CHARS_MAX: usize = 300;

/// A configured HTTP client for one provider.
#[derive(Debug, Clone)]
pub(crate) struct JsonClient {
    client: reqwest::Client,
    provider: &'static str,
    timeout: Duration,
}

impl JsonClient {
    pub(crate) fn new(provider: &'static str, timeout: Duration) -> Result<Self, AiError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(concat!("synap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(JsonClient {
            client,
            provider,
            timeout,
        })
    }

    /// POSTs `body` as JSON and returns the parsed JSON answer of a 2xx response.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: &Value,
    ) -> Result<Value, AiError> {
        let response = self
            .client
            .post(url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        if status.as_u16() == 429 {
            return Err(AiError::RateLimited {
                provider: self.provider,
                retry_after,
            });
        }
        if !status.is_success() {
            return Err(AiError::Status {
                provider: self.provider,
                status: status.as_u16(),
                message: error_message(&text),
                retry_after,
            });
        }
        serde_json::from_str(&text).map_err(|e| {
            AiError::invalid(
                self.provider,
                format!("the response body is not JSON ({e})"),
            )
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> AiError {
        if e.is_timeout() {
            AiError::Timeout {
                provider: self.provider,
                timeout: self.timeout,
            }
        } else {
            // Connection refused, reset, TLS failure, a body cut short: all transient
            // from here. The source chain says which.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            AiError::Connection {
                provider: self.provider,
                message,
            }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form needs a clock and is ignored), or
/// `retry-after-ms` as some OpenAI-compatible servers send it.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let wait = if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Duration::try_from_secs_f64(ms / 1000.0).ok()?
    } else {
        let secs = header("retry-after")?.parse::<f64>().ok()?;
        Duration::try_from_secs_f64(secs).ok()?
    };
    Some(wait.min(RETRY_AFTER_MAX))
}

/// The provider's own error message (`{"error": {"message": …}}` in both APIs), or
/// the start of the body.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let message = from_json.unwrap_or_else(|| body.trim().to_string());
    let message = if message.is_empty() {
        "(no message)".to_string()
    } else {
        message
    };
    message.chars().take(ERROR_MESSAGE_CHARS_MAX).collect()
}

/// `{base}/v1/{path}`, accepting a base URL given with or without the trailing
/// `/v1` (Ollama's documentation writes `http://localhost:11434/v1`).
pub(crate) fn endpoint(base_url: &str, path: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("https://api.openai.com", "chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://localhost:11434/v1/", "embeddings"),
            "http://localhost:11434/v1/embeddings"
        );
    }

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_MAX));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after", "-3".parse().unwrap());
        h.remove("retry-after-ms");
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#
            ),
            "invalid x-api-key"
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(
            error_message(&"x".repeat(1000)).len(),
            ERROR_MESSAGE_CHARS_MAX
        );
    }
}
