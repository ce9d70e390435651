//! `webhook.deliver`: POSTs one message to one subscription, signed per Standard
//! Webhooks (<https://www.standardwebhooks.com>).
//!
//! The command pipeline enqueues one run per event and wanting subscription in the
//! event's own transaction (`synap_store::webhooks`); this workflow is the one
//! step that sends it:
//!
//! - **Signing.** Headers `webhook-id` (the run id, `msg_…`, the same on every
//!   retry so receivers can drop duplicates), `webhook-timestamp` (Unix seconds)
//!   and `webhook-signature` (`v1,` + base64 of HMAC-SHA256 over
//!   `{id}.{timestamp}.{body}`, keyed with the subscription's `whsec_` secret).
//! - **SSRF.** The host is resolved here and every address checked: loopback,
//!   private, link-local, shared (CGNAT), multicast and unspecified targets are
//!   refused unless configuration allows them ([`WebhookConfig::allow_private`]).
//!   The request then goes to the checked address (no second lookup a DNS
//!   rebinding could change), and redirects are not followed.
//! - **Retries and disabling.** A non-2xx answer, a timeout or a refused connection
//!   is a failed attempt: recorded on the subscription and retried by the engine
//!   with backoff, up to [`DELIVERY_ATTEMPTS`]. After
//!   [`WebhookConfig::disable_after`] failed attempts in a row the subscription is
//!   disabled with the reason, which the user sees in `GET /v1/webhooks`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use synap_store::webhooks::{DeliveryAttempt, DeliveryInput, NewWebhook, WEBHOOK_DELIVER, Webhook};
use synap_store::{Clock, Store};
use synap_workflow::{RetryPolicy, StepContext, StepError, Workflow};

/// Attempts per message (the first and its retries).
pub const DELIVERY_ATTEMPTS: u32 = 8;
/// First and longest wait between attempts: 10 s, 20 s, 40 s, … up to an hour, so
/// eight attempts span about 40 minutes of a receiver being down.
pub const DELIVERY_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const DELIVERY_BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Longest one delivery may take (connect, send, answer).
pub const DELIVERY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Failed attempts in a row after which a subscription is disabled.
pub const DISABLE_AFTER_DEFAULT: u32 = 20;
/// Deliveries to one subscription in flight at once (across all workers).
pub const DELIVERIES_PER_WEBHOOK_MAX: u32 = 4;
/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the spec allows 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// How deliveries behave (`SYNAP_WEBHOOK_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Deliver to loopback, private and link-local addresses too (a receiver on
    /// the same machine or network). Off by default: a user could otherwise make
    /// the server call its own neighbours (SSRF).
    pub allow_private: bool,
    pub timeout: Duration,
    pub disable_after: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            timeout: DELIVERY_TIMEOUT_DEFAULT,
            disable_after: DISABLE_AFTER_DEFAULT,
        }
    }
}

/// A new signing secret: `whsec_` + base64 of [`SECRET_BYTES`] random bytes.
pub fn new_secret(random: [u8; SECRET_BYTES]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(random))
}

/// A subscription to create, as the HTTP API and the CLI make it: the target
/// checked (see [`check_target`]), a fresh id, and the signing secret made from
/// `random` (bytes from the operating system's generator). The store checks the
/// rest (event types, lengths, the per-user limit).
pub fn subscription(
    url: String,
    event_types: Vec<String>,
    description: Option<String>,
    allow_private: bool,
    random: [u8; SECRET_BYTES],
) -> Result<NewWebhook, String> {
    check_target(&url, allow_private)?;
    Ok(NewWebhook {
        id: uuid::Uuid::now_v7(),
        url,
        event_types,
        description,
        secret: new_secret(random),
    })
}

/// The `webhook-signature` value: `v1,` + base64(HMAC-SHA256(key, id.timestamp.body)),
/// the key being the base64-decoded part of the secret after `whsec_`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| format!("the subscription's secret is not base64: {e}"))?;
    let mac = hmac_sha256(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(mac)))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Why an address may not receive webhooks, if it may not: everything but
/// public unicast.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// The check made when a subscription is created, before any lookup: a URL whose
/// host is an address (or `localhost`) that may not receive webhooks is refused
/// at once. Names are checked again, resolved, at every delivery.
pub fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let parsed = url::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    let refused = |what: &str| {
        format!(
            "{} is {what}; webhooks go to public addresses only (an operator can allow \
             private targets with SYNAP_WEBHOOK_ALLOW_PRIVATE=1)",
            parsed.host_str().unwrap_or_default()
        )
    };
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => match forbidden_address(IpAddr::V4(ip)) {
            Some(why) => Err(refused(why)),
            None => Ok(()),
        },
        Some(url::Host::Ipv6(ip)) => match forbidden_address(IpAddr::V6(ip)) {
            Some(why) => Err(refused(why)),
            None => Ok(()),
        },
        Some(url::Host::Domain(name))
            if name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Err(refused("a loopback address"))
        }
        _ => Ok(()),
    }
}

/// What `webhook.deliver` needs.
#[derive(Clone)]
pub struct DeliveryContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: WebhookConfig,
}

impl std::fmt::Debug for DeliveryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The `webhook.deliver` definition.
pub fn webhook_deliver(context: Arc<DeliveryContext>) -> Workflow {
    let policy = RetryPolicy::attempts(DELIVERY_ATTEMPTS)
        .with_backoff(DELIVERY_BACKOFF_INITIAL, DELIVERY_BACKOFF_MAX);
    // The step's own timeout leaves room for the lookup around the request's.
    let step_timeout = context.config.timeout * 2 + Duration::from_secs(5);
    Workflow::new(WEBHOOK_DELIVER)
        .concurrency_limit(DELIVERIES_PER_WEBHOOK_MAX)
        .step_with("deliver", policy, step_timeout, move |step| {
            let context = context.clone();
            async move { deliver(&context, &step).await }
        })
}

/// Why one attempt failed, and whether trying again can help.
struct Failure {
    reason: String,
    retryable: bool,
}

async fn deliver(context: &DeliveryContext, step: &StepContext) -> Result<Value, StepError> {
    let input: DeliveryInput = serde_json::from_value(step.input.clone())
        .map_err(|e| StepError::non_retryable(format!("the run's input is not usable: {e}")))?;
    let store = context.store.as_ref();
    let webhook = store
        .webhook(&step.scope, input.webhook_id)
        .await
        .map_err(StepError::retryable)?;
    let Some(webhook) = webhook else {
        return Ok(json!({ "skipped": "the subscription was deleted" }));
    };
    if webhook.disabled_at.is_some() {
        return Ok(json!({ "skipped": "the subscription is disabled" }));
    }
    let message_id = format!("msg_{}", step.run_id.simple());
    let outcome = send(context, &webhook, &message_id, &input.message).await;
    let attempt = DeliveryAttempt {
        at: context.clock.now(),
        error: outcome.as_ref().err().map(|f| f.reason.clone()),
    };
    let after = store
        .record_attempt(
            &step.scope,
            webhook.id,
            attempt,
            context.config.disable_after,
        )
        .await
        .map_err(StepError::retryable)?;
    match outcome {
        Ok(status) => Ok(json!({ "status": status, "webhook_id": message_id })),
        Err(failure) => {
            let disabled = after.is_some_and(|w| w.disabled_at.is_some());
            if disabled {
                Err(StepError::non_retryable(format!(
                    "{}; the subscription is now disabled",
                    failure.reason
                )))
            } else if failure.retryable {
                Err(StepError::retryable(failure.reason))
            } else {
                Err(StepError::non_retryable(failure.reason))
            }
        }
    }
}

/// One signed POST to the subscription's checked address; the status on 2xx.
async fn send(
    context: &DeliveryContext,
    webhook: &Webhook,
    message_id: &str,
    message: &Value,
) -> Result<u16, Failure> {
    let permanent = |reason: String| Failure {
        reason,
        retryable: false,
    };
    let url = url::Url::parse(&webhook.url)
        .map_err(|e| permanent(format!("the subscription's URL is not usable: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| permanent("the subscription's URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let address = resolve(&host, port, context.config.allow_private).await?;

    let body = message.to_string();
    let timestamp = context.clock.now().as_second();
    let signature = signature(&webhook.secret, message_id, timestamp, &body).map_err(permanent)?;
    let client = reqwest::Client::builder()
        .resolve(&host, address)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(context.config.timeout)
        .user_agent(concat!("Synap-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| permanent(format!("cannot build the HTTP client: {e}")))?;
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| Failure {
            reason: if e.is_timeout() {
                format!("no answer within {} ms", context.config.timeout.as_millis())
            } else {
                format!("cannot reach {host}: {e}")
            },
            retryable: true,
        })?;
    let status = answer.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(Failure {
            reason: format!("the receiver answered HTTP {}", status.as_u16()),
            retryable: true,
        })
    }
}

/// The first address of `host` that may receive webhooks; a name any of whose
/// addresses is forbidden is refused whole (a name that mixes public and private
/// addresses is how rebinding attacks start).
async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, Failure> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure {
            reason: format!("cannot resolve {host}: {e}"),
            retryable: true,
        })?
        .collect();
    if !allow_private
        && let Some((address, why)) = addresses
            .iter()
            .find_map(|a| forbidden_address(a.ip()).map(|why| (a, why)))
    {
        return Err(Failure {
            reason: format!(
                "refused: {host} resolves to {}, {why}; webhooks go to public addresses only \
                 (SYNAP_WEBHOOK_ALLOW_PRIVATE=1 allows private targets)",
                address.ip()
            ),
            retryable: false,
        });
    }
    addresses.first().copied().ok_or_else(|| Failure {
        reason: format!("{host} has no address"),
        retryable: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: key "Jefe".
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_signature_follows_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let signed = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn only_public_addresses_may_receive() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                forbidden_address(private.parse().unwrap()).is_some(),
                "{private}"
            );
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert_eq!(forbidden_address(public.parse().unwrap()), None, "{public}");
        }
        assert!(check_target("http://127.0.0.1:9/x", false).is_err());
        assert!(check_target("http://[::1]/x", false).is_err());
        assert!(check_target("http://localhost/x", false).is_err());
        assert!(check_target("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_target("https://example.com/x", false).is_ok());
    }
}
