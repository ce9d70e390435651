//! Webhook subscriptions: a user's wish to have chosen events POSTed to a URL,
//! signed per Standard Webhooks. This module owns the stored shape, its limits and
//! checks ([`NewWebhook::check`]), the store contract ([`WebhookStore`]), and which
//! deliveries a command starts ([`delivery_runs`]).
//!
//! Deliveries are workflow runs ([`WEBHOOK_DELIVER`]), one per event and
//! subscription, inserted by the command pipeline in the same transaction as the
//! events (invariant 7): an event is never committed without its deliveries, and a
//! delivery never exists without its event. The run's input carries the message —
//! the event's envelope and delta, never a content body. The worker that delivers
//! (signing, the SSRF check, retries, disabling after repeated failures) lives in
//! `synap-flows`.

use crate::api::{Scope, StoreError, StoreResult};
use crate::workflow::NewRun;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use synap_domain::StoredEvent;
use synap_domain::event::CATALOGUE;
use synap_domain::ids::UserId;
use uuid::Uuid;

/// The workflow that delivers one message to one subscription.
pub const WEBHOOK_DELIVER: &str = "webhook.deliver";
/// Subscriptions one user may hold.
pub const WEBHOOKS_PER_USER_MAX: usize = 20;
/// Longest URL.
pub const WEBHOOK_URL_CHARS_MAX: usize = 2000;
/// Most event types one subscription names.
pub const WEBHOOK_EVENT_TYPES_MAX: usize = 50;
/// Longest description.
pub const WEBHOOK_DESCRIPTION_CHARS_MAX: usize = 200;
/// Longest failure reason kept (`last_error`, `disabled_reason`).
pub const WEBHOOK_ERROR_CHARS_MAX: usize = 500;
/// The event type that subscribes to every event.
pub const ALL_EVENTS: &str = "*";
/// Notifications that are not events of the log but may be subscribed to like
/// them: `capture.enriched`, sent by `capture.enrich` when a captured thought has
/// been analysed, applied and indexed.
pub const NOTIFICATION_TYPES: &[&str] = &["capture.enriched"];

/// A subscription to create. `secret` is the Standard Webhooks signing secret
/// (`whsec_` + base64), made by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub secret: String,
}

/// A stored subscription and how its deliveries have gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: Uuid,
    pub user_id: UserId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// The signing secret; shown to the user only when the subscription is made.
    #[serde(skip)]
    pub secret: String,
    pub created_at: Timestamp,
    /// Set when deliveries failed [`disable_after`](WebhookStore::record_attempt)
    /// times in a row; nothing is delivered while it is set.
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    /// Failed delivery attempts since the last success.
    pub consecutive_failures: u32,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

impl Webhook {
    /// Whether this subscription wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        wants(&self.event_types, event_type)
    }
}

fn wants(event_types: &[String], event_type: &str) -> bool {
    event_types
        .iter()
        .any(|t| t == ALL_EVENTS || t == event_type)
}

impl NewWebhook {
    /// Checks the limits and the shape of the URL and event types (whether the
    /// target may be reached is the deliverer's check, at delivery time).
    pub fn check(&self) -> StoreResult<()> {
        let field = |field: &'static str, message: String| {
            StoreError::Domain(synap_domain::DomainError::Validation { field, message })
        };
        if self.url.chars().count() > WEBHOOK_URL_CHARS_MAX {
            return Err(field(
                "url",
                format!("the URL is longer than {WEBHOOK_URL_CHARS_MAX} characters"),
            ));
        }
        let parsed = url::Url::parse(self.url.trim())
            .map_err(|e| field("url", format!("not a URL ({e}); give http(s)://host/path")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(field(
                "url",
                "only http:// and https:// URLs with a host can receive webhooks".into(),
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(field(
                "url",
                "the URL must not carry credentials; webhooks are authenticated by their signature"
                    .into(),
            ));
        }
        if self.event_types.is_empty() || self.event_types.len() > WEBHOOK_EVENT_TYPES_MAX {
            return Err(field(
                "event_types",
                format!(
                    "name 1 to {WEBHOOK_EVENT_TYPES_MAX} event types, like entity.created, or \"*\" for all"
                ),
            ));
        }
        for event_type in &self.event_types {
            let known = event_type == ALL_EVENTS
                || NOTIFICATION_TYPES.contains(&event_type.as_str())
                || CATALOGUE.iter().any(|(name, _)| name == event_type);
            if !known {
                return Err(field(
                    "event_types",
                    format!("{event_type:?} is not an event type; types look like entity.created"),
                ));
            }
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > WEBHOOK_DESCRIPTION_CHARS_MAX)
        {
            return Err(field(
                "description",
                format!("at most {WEBHOOK_DESCRIPTION_CHARS_MAX} characters"),
            ));
        }
        Ok(())
    }
}

/// One delivery attempt's result, for [`WebhookStore::record_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    /// `None`: the receiver answered 2xx.
    pub error: Option<String>,
}

/// The input of a [`WEBHOOK_DELIVER`] run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryInput {
    pub webhook_id: Uuid,
    /// The message body, as sent.
    pub message: Value,
}

/// The Standard Webhooks message for an event: `type`, `timestamp` and `data`
/// (the envelope and the delta).
pub fn message(event: &StoredEvent) -> Value {
    json!({
        "type": event.event_type(),
        "timestamp": event.recorded_at,
        "data": {
            "id": event.id,
            "position": event.position,
            "aggregate_type": event.aggregate_type().as_str(),
            "aggregate_id": event.aggregate_id,
            "version": event.version,
            "data": event.payload.data(),
            "metadata": event.metadata,
        }
    })
}

/// The delivery runs a command's events start: one per event and live
/// subscription that wants it, each keyed for the concurrency limit by its
/// subscription (deliveries to one receiver go one at a time).
pub fn delivery_runs(webhooks: &[(Uuid, Vec<String>)], events: &[StoredEvent]) -> Vec<NewRun> {
    let mut runs = Vec::new();
    for event in events {
        for (id, event_types) in webhooks {
            if wants(event_types, event.event_type()) {
                runs.push(delivery_run(*id, message(event)));
            }
        }
    }
    runs
}

/// The run that delivers `message` to one subscription, keyed for the
/// concurrency limit by the subscription (deliveries to one receiver go a few at
/// a time). Events' deliveries and `capture.enriched` notifications alike.
pub fn delivery_run(webhook_id: Uuid, message: Value) -> NewRun {
    let input = DeliveryInput {
        webhook_id,
        message,
    };
    NewRun::new(
        WEBHOOK_DELIVER,
        serde_json::to_value(input).unwrap_or(Value::Null),
    )
    .with_concurrency_key(format!("webhook:{webhook_id}"))
}

/// Cuts a failure reason to [`WEBHOOK_ERROR_CHARS_MAX`].
pub fn short_error(error: &str) -> String {
    error.chars().take(WEBHOOK_ERROR_CHARS_MAX).collect()
}

/// What a backend stores for webhooks. Contract: every method acts in the
/// caller's scope (another user's subscription is like a missing one); a
/// subscription beyond [`WEBHOOKS_PER_USER_MAX`] is refused; `record_attempt`
/// resets the failure count on success, adds one on failure, and disables the
/// subscription (with the reason) when the count reaches `disable_after`.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, scope: &Scope, webhook: NewWebhook) -> StoreResult<Webhook>;
    /// The user's subscriptions, oldest first.
    async fn webhooks(&self, scope: &Scope) -> StoreResult<Vec<Webhook>>;
    async fn webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<Webhook>>;
    /// `false` when the user has no such subscription.
    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool>;
    /// Records a delivery attempt; `None` when the subscription is gone.
    async fn record_attempt(
        &self,
        scope: &Scope,
        id: Uuid,
        attempt: DeliveryAttempt,
        disable_after: u32,
    ) -> StoreResult<Option<Webhook>>;
}

/// The next failure count and, when it reaches `disable_after`, the reason to
/// disable: the rule both backends apply in `record_attempt`.
pub fn after_attempt(
    failures_before: u32,
    attempt: &DeliveryAttempt,
    disable_after: u32,
) -> (u32, Option<String>) {
    match &attempt.error {
        None => (0, None),
        Some(error) => {
            let failures = failures_before.saturating_add(1);
            let disable = (failures >= disable_after.max(1)).then(|| {
                short_error(&format!(
                    "{failures} delivery attempts failed in a row; the last: {error}"
                ))
            });
            (failures, disable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(url: &str, types: &[&str]) -> NewWebhook {
        NewWebhook {
            id: Uuid::now_v7(),
            url: url.into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            description: None,
            secret: "whsec_c2VjcmV0".into(),
        }
    }

    #[test]
    fn urls_and_event_types_are_checked() {
        assert!(
            new("https://example.com/hook", &["entity.created"])
                .check()
                .is_ok()
        );
        assert!(new("http://10.0.0.1:8080/x", &["*"]).check().is_ok());
        for bad in [
            "ftp://example.com",
            "not a url",
            "https://user:pw@example.com/",
        ] {
            assert!(new(bad, &["*"]).check().is_err(), "{bad}");
        }
        assert!(new("https://example.com", &[]).check().is_err());
        assert!(
            new("https://example.com", &["entity.exploded"])
                .check()
                .is_err()
        );
    }

    #[test]
    fn failures_count_up_to_disabling_and_a_success_resets_them() {
        let failed = DeliveryAttempt {
            at: Timestamp::UNIX_EPOCH,
            error: Some("HTTP 500".into()),
        };
        assert_eq!(after_attempt(0, &failed, 3), (1, None));
        let (count, reason) = after_attempt(2, &failed, 3);
        assert_eq!(count, 3);
        assert!(
            reason
                .unwrap()
                .contains("3 delivery attempts failed in a row; the last: HTTP 500")
        );
        let ok = DeliveryAttempt {
            at: Timestamp::UNIX_EPOCH,
            error: None,
        };
        assert_eq!(after_attempt(2, &ok, 3), (0, None));
    }
}
