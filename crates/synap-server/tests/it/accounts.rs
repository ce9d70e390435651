//! Accounts, sessions and API tokens, in process: registration open and closed,
//! login with identical failures, the session cookie's life (refresh after a day,
//! expiry, logout), tokens (create, list, use, revoke, expire), scope rules, and
//! that secrets are stored only hashed.

use crate::server_harness::{Auth, Harness, request, test_config};
use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::time::Duration;
use synap_server::ServerConfig;
use synap_store::Accounts;

const PASSWORD: &str = "correct horse battery";
const HOUR: Duration = Duration::from_secs(3600);

fn open_registration() -> ServerConfig {
    ServerConfig {
        allow_registration: true,
        ..test_config()
    }
}

async fn login(
    h: &Harness,
    email: &str,
    password: &str,
    token: bool,
) -> crate::server_harness::Answer {
    h.call(request(
        Method::POST,
        "/v1/auth/login",
        Auth::None,
        Some(json!({"email": email, "password": password, "token": token})),
    ))
    .await
}

async fn me(h: &Harness, auth: Auth<'_>) -> crate::server_harness::Answer {
    h.call(request(Method::GET, "/v1/me", auth, None)).await
}

#[tokio::test]
async fn registration_is_closed_by_default() {
    let h = Harness::manual(test_config()).await;
    let answer = h
        .call(request(
            Method::POST,
            "/v1/auth/register",
            Auth::None,
            Some(json!({"email": "ada@example.com", "password": PASSWORD})),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(answer.json()["code"], "registration_closed");
    assert!(
        h.store
            .user_by_email("ada@example.com")
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn open_registration_creates_a_member_with_a_session() {
    let h = Harness::manual(open_registration()).await;
    let answer = h
        .call(request(
            Method::POST,
            "/v1/auth/register",
            Auth::None,
            Some(json!({"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"})),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "member");
    assert_eq!(body["user"]["display_name"], "Ada");
    assert!(body["user"].get("password_hash").is_none());
    let set_cookie = answer.header("set-cookie").expect("a cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=604800"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "no Secure in development");
    assert_eq!(answer.header("cache-control"), Some("no-store"));

    let cookie = answer.session_cookie().expect("a session cookie");
    let me = me(&h, Auth::Cookie(&cookie)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user"]["email"], "ada@example.com");
    assert_eq!(me.json()["credential"], "session");
    assert_eq!(me.json()["scopes"], json!(["read", "write"]));

    // The same email again, and a short password: refused, nothing stored.
    let again = h
        .call(request(
            Method::POST,
            "/v1/auth/register",
            Auth::None,
            Some(json!({"email": "ADA@example.com", "password": PASSWORD})),
        ))
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.json()["code"], "validation_failed");
    let short = h
        .call(request(
            Method::POST,
            "/v1/auth/register",
            Auth::None,
            Some(json!({"email": "bob@example.com", "password": "short"})),
        ))
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.json()["field"], "password");
    let unknown_field = h
        .call(request(
            Method::POST,
            "/v1/auth/register",
            Auth::None,
            Some(json!({"email": "bob@example.com", "password": PASSWORD, "role": "owner"})),
        ))
        .await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        h.store
            .user_by_email("bob@example.com")
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn production_cookies_are_secure() {
    let h = Harness::manual(ServerConfig {
        environment: synap_server::config::Environment::Production,
        ..test_config()
    })
    .await;
    h.user("ada@example.com", PASSWORD, "member").await;
    let answer = login(&h, "ada@example.com", PASSWORD, false).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header("set-cookie")
            .expect("cookie")
            .contains("; Secure")
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let h = Harness::manual(test_config()).await;
    h.user("ada@example.com", PASSWORD, "member").await;

    let wrong_password = login(&h, "ada@example.com", "not the password", false).await;
    let unknown_email = login(&h, "nobody@example.com", PASSWORD, false).await;
    // The local owner has no password: the same answer again.
    let owner = h.store.local_owner().await.expect("owner");
    let passwordless = login(&h, &owner.email, PASSWORD, false).await;

    for answer in [&wrong_password, &unknown_email, &passwordless] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.header("set-cookie").is_none());
    }
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.body, passwordless.body);
    assert_eq!(wrong_password.headers, unknown_email.headers);
    assert_eq!(wrong_password.headers, passwordless.headers);
    assert_eq!(wrong_password.json()["code"], "unauthorized");

    // The right password, with the email in another case.
    let good = login(&h, "ADA@Example.com", PASSWORD, false).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text());
    assert_eq!(good.json()["user"]["email"], "ada@example.com");
    assert!(good.json().get("token").is_none());
    let cookie = good.session_cookie().expect("a session cookie");
    assert_eq!(me(&h, Auth::Cookie(&cookie)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_can_hand_out_a_token() {
    let h = Harness::manual(test_config()).await;
    h.user("ada@example.com", PASSWORD, "member").await;
    let answer = login(&h, "ada@example.com", PASSWORD, true).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let token = answer.json()["token"]["token"]
        .as_str()
        .expect("a token")
        .to_string();
    assert!(token.starts_with("syn_"));
    assert_eq!(answer.json()["token"]["scopes"], json!(["read", "write"]));
    let me = me(&h, Auth::Bearer(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["credential"], "token");
    assert_eq!(me.json()["scopes"], json!(["read", "write"]));
}

#[tokio::test]
async fn sessions_refresh_after_a_day_and_end_after_a_week_idle() {
    let h = Harness::manual(test_config()).await;
    h.user("ada@example.com", PASSWORD, "member").await;
    let cookie = login(&h, "ada@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");

    h.advance(23 * HOUR);
    let early = me(&h, Auth::Cookie(&cookie)).await;
    assert_eq!(early.status, StatusCode::OK);
    assert!(
        early.header("set-cookie").is_none(),
        "no refresh before 24 h"
    );

    h.advance(2 * HOUR);
    let refreshed = me(&h, Auth::Cookie(&cookie)).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let set_cookie = refreshed
        .header("set-cookie")
        .expect("refreshed after 24 h");
    assert!(set_cookie.starts_with(&format!("synap_session={cookie};")));
    assert!(set_cookie.contains("Max-Age=604800"));

    // 7 days after login, but 6 days after the refresh: still valid.
    h.advance(6 * 24 * HOUR);
    assert_eq!(me(&h, Auth::Cookie(&cookie)).await.status, StatusCode::OK);

    // A week and a bit with no request: expired.
    h.advance(7 * 24 * HOUR + HOUR);
    let expired = me(&h, Auth::Cookie(&cookie)).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.json()["code"], "unauthorized");
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let h = Harness::manual(test_config()).await;
    h.user("ada@example.com", PASSWORD, "member").await;
    let cookie = login(&h, "ada@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");
    let out = h
        .call(request(
            Method::POST,
            "/v1/auth/logout",
            Auth::Cookie(&cookie),
            None,
        ))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let cleared = out.header("set-cookie").expect("a clearing cookie");
    assert!(cleared.starts_with("synap_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"));
    assert_eq!(
        me(&h, Auth::Cookie(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Logging out needs a credential.
    let anonymous = h
        .call(request(Method::POST, "/v1/auth/logout", Auth::None, None))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_are_created_listed_used_and_revoked() {
    let h = Harness::manual(test_config()).await;
    let ada = h.user("ada@example.com", PASSWORD, "member").await;
    let cookie = login(&h, "ada@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");

    let created = h
        .call(request(
            Method::POST,
            "/v1/tokens",
            Auth::Cookie(&cookie),
            Some(json!({"name": "laptop", "scopes": ["read", "read"]})),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let body = created.json();
    let token = body["token"].as_str().expect("the secret").to_string();
    let id = body["id"].as_str().expect("an id").to_string();
    assert_eq!(body["name"], "laptop");
    assert_eq!(body["scopes"], json!(["read"]));
    assert!(token.starts_with(&format!("syn_{}", body["prefix"].as_str().expect("prefix"))));

    let me_answer = me(&h, Auth::Bearer(&token)).await;
    assert_eq!(me_answer.status, StatusCode::OK);
    assert_eq!(me_answer.json()["token_id"], id.as_str());
    assert_eq!(me_answer.json()["scopes"], json!(["read"]));

    let listed = h
        .call(request(
            Method::GET,
            "/v1/tokens",
            Auth::Bearer(&token),
            None,
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = listed.json()["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert!(items[0].get("token").is_none());
    assert!(!listed.text().contains(&token), "the secret is shown once");

    // Another user's token id behaves like a missing one.
    let bob = h.plain_user("bob@example.com").await;
    let bob_token = h.token(bob.id, &["read", "write"]).await;
    let bobs = h
        .call(request(
            Method::GET,
            "/v1/tokens",
            Auth::Bearer(&bob_token),
            None,
        ))
        .await;
    let bob_token_id = bobs.json()["items"][0]["id"]
        .as_str()
        .expect("bob's token id")
        .to_string();
    let foreign = h
        .call(request(
            Method::DELETE,
            &format!("/v1/tokens/{bob_token_id}"),
            Auth::Cookie(&cookie),
            None,
        ))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.json()["code"], "not_found");
    assert_eq!(
        me(&h, Auth::Bearer(&bob_token)).await.status,
        StatusCode::OK
    );

    let malformed = h
        .call(request(
            Method::DELETE,
            "/v1/tokens/not-a-uuid",
            Auth::Cookie(&cookie),
            None,
        ))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    let revoked = h
        .call(request(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Auth::Cookie(&cookie),
            None,
        ))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let rejected = me(&h, Auth::Bearer(&token)).await;
    assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected.json()["code"], "unauthorized");
    let twice = h
        .call(request(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Auth::Cookie(&cookie),
            None,
        ))
        .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
    let tokens = h.store.list_tokens(ada.id).await.expect("tokens");
    assert!(tokens[0].revoked_at.is_some());
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let h = Harness::manual(test_config()).await;
    h.user("ada@example.com", PASSWORD, "member").await;
    let cookie = login(&h, "ada@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");
    let now = h.state.clock.now();
    let in_an_hour = now + HOUR;
    let created = h
        .call(request(
            Method::POST,
            "/v1/tokens",
            Auth::Cookie(&cookie),
            Some(
                json!({"name": "short", "scopes": ["read"], "expires_at": in_an_hour.to_string()}),
            ),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let token = created.json()["token"].as_str().expect("token").to_string();
    assert_eq!(me(&h, Auth::Bearer(&token)).await.status, StatusCode::OK);
    h.advance(2 * HOUR);
    assert_eq!(
        me(&h, Auth::Bearer(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let past = h
        .call(request(
            Method::POST,
            "/v1/tokens",
            Auth::Cookie(&cookie),
            Some(json!({"name": "past", "scopes": ["read"], "expires_at": now.to_string()})),
        ))
        .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(past.json()["field"], "expires_at");
}

async fn mint_with(h: &Harness, auth: Auth<'_>, body: Value) -> crate::server_harness::Answer {
    h.call(request(Method::POST, "/v1/tokens", auth, Some(body)))
        .await
}

#[tokio::test]
async fn scopes_are_enforced_and_never_widened() {
    let h = Harness::manual(test_config()).await;
    let member = h.user("ada@example.com", PASSWORD, "member").await;
    let read_only = h.token(member.id, &["read"]).await;
    let write_only = h.token(member.id, &["write"]).await;
    let read_write = h.token(member.id, &["read", "write"]).await;

    // A read-only token cannot mint (minting writes).
    let answer = mint_with(
        &h,
        Auth::Bearer(&read_only),
        json!({"name": "x", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["code"], "forbidden");
    // A write-only token cannot list.
    let answer = h
        .call(request(
            Method::GET,
            "/v1/tokens",
            Auth::Bearer(&write_only),
            None,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // … nor read the event stream.
    let answer = h
        .call(request(
            Method::GET,
            "/v1/events/stream",
            Auth::Bearer(&write_only),
            None,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // A write-only token cannot mint the read scope it lacks.
    let answer = mint_with(
        &h,
        Auth::Bearer(&write_only),
        json!({"name": "x", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Nobody without admin mints admin: not a read/write token, not a member's session.
    let answer = mint_with(
        &h,
        Auth::Bearer(&read_write),
        json!({"name": "x", "scopes": ["admin"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let cookie = login(&h, "ada@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");
    let answer = mint_with(
        &h,
        Auth::Cookie(&cookie),
        json!({"name": "x", "scopes": ["read", "admin"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Unknown and missing scopes are input errors.
    let answer = mint_with(
        &h,
        Auth::Bearer(&read_write),
        json!({"name": "x", "scopes": ["root"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["field"], "scopes");
    let answer = mint_with(
        &h,
        Auth::Bearer(&read_write),
        json!({"name": "x", "scopes": []}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A read/write token mints a subset.
    let answer = mint_with(
        &h,
        Auth::Bearer(&read_write),
        json!({"name": "x", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);

    // The owner's session may mint admin; an admin token may too.
    let owner = h.user("boss@example.com", PASSWORD, "admin").await;
    let boss_cookie = login(&h, "boss@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");
    let answer = mint_with(
        &h,
        Auth::Cookie(&boss_cookie),
        json!({"name": "ops", "scopes": ["admin", "read"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json()["scopes"], json!(["read", "admin"]));
    let admin_token = answer.json()["token"].as_str().expect("token").to_string();
    let answer = mint_with(
        &h,
        Auth::Bearer(&admin_token),
        json!({"name": "ops2", "scopes": ["admin"]}),
    )
    .await;
    // The admin token lacks write, so it cannot mint at all.
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let full = h.token(owner.id, &["read", "write", "admin"]).await;
    let answer = mint_with(
        &h,
        Auth::Bearer(&full),
        json!({"name": "ops3", "scopes": ["admin"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_token_cannot_mint_a_token_that_outlives_it() {
    let h = Harness::manual(test_config()).await;
    h.user("ada@example.com", PASSWORD, "member").await;
    let cookie = login(&h, "ada@example.com", PASSWORD, false)
        .await
        .session_cookie()
        .expect("cookie");
    let now = h.state.clock.now();
    let day = now + 24 * HOUR;
    let parent = mint_with(
        &h,
        Auth::Cookie(&cookie),
        json!({"name": "day", "scopes": ["read", "write"], "expires_at": day.to_string()}),
    )
    .await;
    assert_eq!(parent.status, StatusCode::CREATED);
    let parent_token = parent.json()["token"].as_str().expect("token").to_string();
    let parent_expiry = parent.json()["expires_at"].clone();

    let later = now + 48 * HOUR;
    let answer = mint_with(
        &h,
        Auth::Bearer(&parent_token),
        json!({"name": "longer", "scopes": ["read"], "expires_at": later.to_string()}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let answer = mint_with(
        &h,
        Auth::Bearer(&parent_token),
        json!({"name": "inherits", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json()["expires_at"], parent_expiry);
}

/// Every file of the data directory (database, WAL), as bytes.
fn data_files(h: &Harness) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(h.dir.path())
        .expect("list")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            (
                entry.path().display().to_string(),
                std::fs::read(entry.path()).expect("read"),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_stored_only_hashed() {
    let h = Harness::manual(test_config()).await;
    let ada = h.user("ada@example.com", PASSWORD, "member").await;
    let answer = login(&h, "ada@example.com", PASSWORD, true).await;
    let cookie = answer.session_cookie().expect("cookie");
    let login_token = answer.json()["token"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let created = mint_with(
        &h,
        Auth::Cookie(&cookie),
        json!({"name": "api", "scopes": ["read", "write"]}),
    )
    .await;
    let api_token = created.json()["token"].as_str().expect("token").to_string();

    let events = serde_json::to_string(&h.events_of(ada.id).await).expect("JSON");
    assert!(events.contains("user.token_created"), "{events}");
    let files = data_files(&h);
    assert!(files.iter().any(|(_, bytes)| !bytes.is_empty()));
    for token in [&login_token, &api_token] {
        // The secret part (after `syn_` and the 12-character lookup prefix).
        let secret = &token[4 + 12..];
        let hash = synap_server::auth::tokens::hash_secret(token);
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret), "{name} holds a token secret");
            assert!(!contains(bytes, token), "{name} holds a token");
        }
        assert!(!events.contains(secret), "an event holds a token secret");
        assert!(!events.contains(&hash), "an event holds a token hash");
        assert!(
            files.iter().any(|(_, bytes)| contains(bytes, &hash)),
            "the hash is what is kept"
        );
    }
    for (name, bytes) in &files {
        assert!(!contains(bytes, &cookie), "{name} holds a session id");
        assert!(!contains(bytes, PASSWORD), "{name} holds a password");
    }
    assert!(!events.contains(&cookie));
}

#[tokio::test]
async fn me_needs_a_credential_and_bad_ones_are_refused() {
    let h = Harness::manual(test_config()).await;
    let anonymous = me(&h, Auth::None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .header(header::WWW_AUTHENTICATE.as_str())
            .is_some()
    );
    let forged = me(
        &h,
        Auth::Bearer("syn_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let unknown_session = me(&h, Auth::Cookie("no-such-session")).await;
    assert_eq!(unknown_session.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failures_lock_the_email_out_even_for_the_right_password() {
    let h = Harness::manual(ServerConfig {
        login_failures_max: 3,
        login_lockout: Duration::from_secs(600),
        ..test_config()
    })
    .await;
    h.user("ada@example.com", PASSWORD, "member").await;
    for _ in 0..3 {
        let answer = login(&h, "ada@example.com", "wrong password", false).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let locked = login(&h, "ada@example.com", PASSWORD, false).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.header("retry-after").is_some());
    assert!(locked.header("set-cookie").is_none());
    // An unknown email locks the same way: the answer does not tell them apart.
    for _ in 0..3 {
        login(&h, "nobody@example.com", "wrong password", false).await;
    }
    let unknown = login(&h, "nobody@example.com", PASSWORD, false).await;
    assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(unknown.json()["code"], locked.json()["code"]);

    h.advance(Duration::from_secs(601));
    let after = login(&h, "ada@example.com", PASSWORD, false).await;
    assert_eq!(after.status, StatusCode::OK);
}
