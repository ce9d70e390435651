//! The conformance suite's webhook tests (feature `conformance`): subscriptions
//! are checked, limited and isolated; a command's events start one delivery run
//! per wanting subscription in the command's own transaction; failed attempts
//! count up to disabling. Expanded by `conformance_suite!` with the rest.

use crate::api::{PageRequest, StoreError};
use crate::conformance::{Harness, StoreFactory};
use crate::webhooks::{
    DeliveryAttempt, DeliveryInput, NewWebhook, WEBHOOK_DELIVER, WEBHOOKS_PER_USER_MAX,
};
use crate::workflow::RunFilter;
use synap_domain::DomainError;
use synap_domain::command::{Change, EntityCommand};
use uuid::Uuid;

fn subscription(url: &str, types: &[&str]) -> NewWebhook {
    NewWebhook {
        id: Uuid::now_v7(),
        url: url.into(),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        description: Some("test receiver".into()),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
    }
}

/// Subscriptions: created with their fields, listed, found and deleted only by
/// their owner; bad URLs and event types are refused; the per-user limit holds.
pub async fn webhook_subscriptions_are_checked_limited_and_isolated<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let store = h.store.as_ref();
    let made = store
        .create_webhook(
            &h.owner,
            subscription("https://example.com/hook", &["entity.created"]),
        )
        .await
        .expect("create");
    assert_eq!(made.user_id, h.owner.user_id);
    assert_eq!(made.event_types, vec!["entity.created".to_string()]);
    assert_eq!(made.description.as_deref(), Some("test receiver"));
    assert!(made.secret.starts_with("whsec_"));
    assert_eq!((made.consecutive_failures, made.disabled_at), (0, None));

    for (url, types) in [
        ("ftp://example.com", vec!["*"]),
        ("https://example.com", vec!["entity.exploded"]),
        ("https://example.com", vec![]),
    ] {
        let refused = store
            .create_webhook(&h.owner, subscription(url, &types))
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::Domain(DomainError::Validation { .. }))
            ),
            "{url} {types:?}: {refused:?}"
        );
    }

    let other = h.second_user("b@example.com").await;
    assert!(store.webhooks(&other).await.expect("list").is_empty());
    assert_eq!(store.webhook(&other, made.id).await.expect("get"), None);
    assert!(!store.delete_webhook(&other, made.id).await.expect("delete"));
    assert_eq!(
        store.webhooks(&h.owner).await.expect("list"),
        vec![made.clone()]
    );

    for _ in 1..WEBHOOKS_PER_USER_MAX {
        store
            .create_webhook(&h.owner, subscription("https://example.com/more", &["*"]))
            .await
            .expect("within the limit");
    }
    let over = store
        .create_webhook(
            &h.owner,
            subscription("https://example.com/one-more", &["*"]),
        )
        .await;
    assert!(matches!(over, Err(StoreError::InvalidInput(_))), "{over:?}");
    assert!(
        store
            .create_webhook(&other, subscription("https://example.com/b", &["*"]))
            .await
            .is_ok(),
        "the limit is per user"
    );

    assert!(
        store
            .delete_webhook(&h.owner, made.id)
            .await
            .expect("delete")
    );
    assert_eq!(store.webhook(&h.owner, made.id).await.expect("get"), None);
}

/// Every appended event starts one delivery run per live subscription that wants
/// it, in the command's transaction; a disabled subscription gets none; failed
/// attempts count up and disable it with the reason, and a success resets them.
pub async fn events_start_deliveries_and_failures_disable_the_subscription<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let store = h.store.as_ref();
    let me = h.me();
    let created_only = store
        .create_webhook(
            &h.owner,
            subscription("https://example.com/created", &["entity.created"]),
        )
        .await
        .expect("create");
    let everything = store
        .create_webhook(&h.owner, subscription("https://example.com/all", &["*"]))
        .await
        .expect("create");
    let other = h.second_user("b@example.com").await;
    store
        .create_webhook(&other, subscription("https://example.com/b", &["*"]))
        .await
        .expect("create");

    let id = me.note("Deliver me").await;
    me.must_change(id, vec![Change::Title("Delivered".into())])
        .await;
    let deliveries = || async {
        let page = store
            .list_runs(
                &h.owner,
                &RunFilter {
                    status: None,
                    workflow: Some(WEBHOOK_DELIVER.into()),
                },
                &PageRequest {
                    limit: Some(100),
                    cursor: None,
                },
            )
            .await
            .expect("runs");
        page.items
            .into_iter()
            .map(|run| {
                let input: DeliveryInput =
                    serde_json::from_value(run.input.clone()).expect("a delivery input");
                (input.webhook_id, input.message, run)
            })
            .collect::<Vec<_>>()
    };
    let runs = deliveries().await;
    let to = |hook: Uuid| runs.iter().filter(|(w, _, _)| *w == hook).count();
    assert_eq!(to(created_only.id), 1, "entity.created only");
    assert_eq!(to(everything.id), 2, "both events");
    assert_eq!(runs.len(), 3, "no delivery of another user's subscription");
    let (_, message, run) = runs
        .iter()
        .find(|(w, m, _)| *w == created_only.id && m["type"] == "entity.created")
        .expect("the created delivery");
    assert_eq!(message["data"]["aggregate_id"], id.0.to_string());
    assert_eq!(message["data"]["data"]["title"], "Deliver me");
    assert!(run.trigger_position.is_some(), "triggered by the event");
    assert_eq!(
        run.concurrency_key.as_deref(),
        Some(format!("webhook:{}", created_only.id).as_str())
    );
    assert!(
        message.to_string().len() < 2000,
        "a message carries the delta, not bodies: {message}"
    );

    // Failures count up and disable at the threshold; a success resets the count.
    let fail = |at_second: i64| DeliveryAttempt {
        at: jiff::Timestamp::from_second(1_800_000_000 + at_second).unwrap(),
        error: Some("the receiver answered HTTP 500".into()),
    };
    let after = store
        .record_attempt(&h.owner, everything.id, fail(1), 3)
        .await
        .expect("record")
        .expect("exists");
    assert_eq!((after.consecutive_failures, after.disabled_at), (1, None));
    assert_eq!(
        after.last_error.as_deref(),
        Some("the receiver answered HTTP 500")
    );
    let ok = DeliveryAttempt {
        at: jiff::Timestamp::from_second(1_800_000_010).unwrap(),
        error: None,
    };
    let after = store
        .record_attempt(&h.owner, everything.id, ok.clone(), 3)
        .await
        .expect("record")
        .expect("exists");
    assert_eq!(after.consecutive_failures, 0);
    assert_eq!(after.last_success_at, Some(ok.at));
    for second in 20..23 {
        store
            .record_attempt(&h.owner, everything.id, fail(second), 3)
            .await
            .expect("record");
    }
    let disabled = store
        .webhook(&h.owner, everything.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(disabled.consecutive_failures, 3);
    assert_eq!(disabled.disabled_at, Some(fail(22).at));
    assert!(
        disabled
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("3 delivery attempts failed in a row")),
        "{disabled:?}"
    );
    assert_eq!(
        store
            .record_attempt(&other, everything.id, fail(30), 3)
            .await
            .expect("record"),
        None,
        "another user cannot touch it"
    );

    // A disabled subscription gets nothing more.
    me.command(id, EntityCommand::Delete).await.expect("delete");
    let runs = deliveries().await;
    assert_eq!(
        runs.iter().filter(|(w, _, _)| *w == everything.id).count(),
        2
    );
    assert_eq!(
        runs.len(),
        3,
        "entity.deleted is not wanted by the other one"
    );
}
