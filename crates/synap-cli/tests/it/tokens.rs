//! `synap token create|list|revoke` and `synap user add --password-stdin`: secrets
//! are shown once and stored only as hashes; tokens belong to the acting user.

use crate::support::Synap;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use serde_json::Value;
use sha2::{Digest, Sha256};
use synap_store::Accounts;
use synap_store_sqlite::{SqliteConfig, SqliteStore};

const MISSING: &str = "01900000-0000-7000-8000-000000000000";

/// Opens the instance's database directly (after the binary has exited).
fn with_store<T>(synap: &Synap, work: impl AsyncFnOnce(&SqliteStore) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(SqliteConfig::new(synap.path("synap.db"))).expect("open");
        work(&store).await
    })
}

/// Every byte the database keeps on disk (main file and write-ahead log).
fn database_bytes(synap: &Synap) -> Vec<u8> {
    ["synap.db", "synap.db-wal"]
        .iter()
        .filter_map(|name| std::fs::read(synap.path(name)).ok())
        .flatten()
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn tokens(synap: &Synap, extra: &[&str]) -> Vec<Value> {
    let mut args = extra.to_vec();
    args.extend(["token", "list"]);
    synap.json(&args)["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of tokens"))
        .clone()
}

#[test]
fn a_token_is_printed_once_and_stored_only_as_a_prefix_and_hash() {
    let synap = Synap::new();
    let run = synap.run(&["token", "create"]);
    assert!(
        run.stderr.contains("not shown again"),
        "the note goes to stderr: {}",
        run.stderr
    );
    let token = run.success();
    assert_eq!(
        token.lines().count(),
        1,
        "stdout is just the token: {token}"
    );
    let rest = token.strip_prefix("syn_").expect("syn_ marker");
    assert_eq!(rest.len(), 44, "12 prefix + 32 secret characters: {token}");
    assert!(rest.chars().all(|c| c.is_ascii_alphanumeric()), "{token}");

    let listed = tokens(&synap, &[]);
    assert_eq!(listed.len(), 1);
    let info = &listed[0];
    assert_eq!(info["name"], "cli", "default name");
    assert_eq!(info["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(info["prefix"], &rest[..12]);
    assert!(info.get("expires_at").is_none(), "no expiry by default");
    assert!(info.get("revoked_at").is_none());
    let id = info["id"].as_str().expect("an id").to_string();

    let table = synap.ok(&["token", "list"]);
    assert!(table.contains(&id) && table.contains("active"), "{table}");
    for shown in [table.as_str(), &listed[0].to_string()] {
        assert!(!shown.contains(&token), "listing shows the secret: {shown}");
        assert!(!shown.contains(&rest[12..]), "{shown}");
    }

    let events = synap.json(&["events", "--type", "user.token_created"]);
    let event = &events["items"][0];
    assert_eq!(event["data"]["token_id"], id.as_str());
    assert_eq!(event["data"]["name"], "cli");
    let event_text = events.to_string();
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    assert!(!event_text.contains(&token) && !event_text.contains(&hash));
    assert!(!event_text.contains(&rest[12..]));

    // What is stored is the prefix and the SHA-256 of the whole token, never the token.
    let bytes = database_bytes(&synap);
    assert!(!contains(&bytes, &token), "the token is stored in clear");
    assert!(
        !contains(&bytes, &rest[12..]),
        "the secret is stored in clear"
    );
    let credential = with_store(&synap, async |store| {
        store.token_by_prefix(&rest[..12]).await.expect("lookup")
    })
    .expect("the token is found by its prefix");
    assert_eq!(credential.secret_hash, hash);
    assert_eq!(credential.user.email, "owner@localhost");
}

#[test]
fn name_scopes_and_expiry_are_chosen_at_creation() {
    let synap = Synap::new();
    let created = synap.json(&[
        "token",
        "create",
        "--name",
        "backup job",
        "--scope",
        "admin",
        "--scope",
        "read,admin",
        "--expires-in",
        "30",
    ]);
    let token = created["token"].as_str().expect("the token, once");
    assert!(token.starts_with("syn_"));
    assert_eq!(created["name"], "backup job");
    assert_eq!(created["scopes"], serde_json::json!(["admin", "read"]));
    let expires: jiff::Timestamp = created["expires_at"]
        .as_str()
        .expect("an expiry")
        .parse()
        .expect("RFC 3339");
    let in_30_days = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(30 * 24);
    assert!(
        (in_30_days - expires).abs() < jiff::SignedDuration::from_mins(5),
        "{expires}"
    );

    let listed = tokens(&synap, &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["expires_at"], created["expires_at"]);
    assert!(
        listed[0].get("token").is_none(),
        "the list never has the token"
    );
    let table = synap.ok(&["token", "list"]);
    assert!(table.contains("active until"), "{table}");

    let second = synap.json(&["token", "create", "--name", "second"]);
    let ids: Vec<Value> = tokens(&synap, &[])
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(
        ids,
        [second["id"].clone(), created["id"].clone()],
        "newest first"
    );
}

#[test]
fn bad_names_scopes_and_expiries_are_usage_errors() {
    let synap = Synap::new();
    assert_eq!(synap.run(&["token", "create", "--scope", "delete"]).code, 2);
    assert_eq!(synap.run(&["token", "create", "--expires-in", "0"]).code, 2);
    assert_eq!(synap.run(&["token", "create", "--expires-in", "x"]).code, 2);
    let name = synap.fails(&["token", "create", "--name", "  "], 2);
    assert!(name.starts_with("name:"), "{name}");
    let long = "n".repeat(101);
    synap.fails(&["token", "create", "--name", &long], 2);
    assert!(tokens(&synap, &[]).is_empty(), "nothing was created");
    assert!(synap.ok(&["token", "list"]).contains("no tokens yet"));
}

#[test]
fn revoking_is_for_the_tokens_owner_and_happens_once() {
    let synap = Synap::new();
    synap.ok(&["user", "add", "bob@example.com"]);
    let created = synap.json(&["token", "create"]);
    let id = created["id"].as_str().expect("an id").to_string();

    // Another user neither sees nor revokes it.
    assert!(tokens(&synap, &["--user", "bob@example.com"]).is_empty());
    let message = synap.fails(&["--user", "bob@example.com", "token", "revoke", &id], 3);
    assert!(message.contains("synap token list"), "{message}");
    assert!(tokens(&synap, &[])[0].get("revoked_at").is_none());

    assert_eq!(synap.ok(&["token", "revoke", &id]), "revoked");
    let listed = tokens(&synap, &[]);
    assert!(listed[0]["revoked_at"].is_string(), "{}", listed[0]);
    assert!(synap.ok(&["token", "list"]).contains("revoked"));
    let again = synap.json(&["token", "revoke", &id]);
    assert_eq!(again["revoked"], false, "already revoked: {again}");
    assert_eq!(synap.ok(&["token", "revoke", &id]), "already revoked");

    synap.fails(&["token", "revoke", MISSING], 3);
    let malformed = synap.fails(&["token", "revoke", "nope"], 2);
    assert!(malformed.starts_with("not an id"), "{malformed}");

    let events = synap.json(&["events", "--type", "user.token_revoked"]);
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one revocation, one event");
    assert_eq!(items[0]["data"], serde_json::json!({"token_id": id}));

    // Bob's own token is his.
    let bobs = synap.json(&["--user", "bob@example.com", "token", "create"]);
    assert_eq!(tokens(&synap, &["--user", "bob@example.com"]).len(), 1);
    assert_eq!(tokens(&synap, &[]).len(), 1);
    synap.fails(&["token", "revoke", bobs["id"].as_str().expect("an id")], 3);
}

#[test]
fn user_add_with_password_stdin_stores_an_argon2id_hash() {
    let synap = Synap::new();
    let id = synap
        .run_with_stdin(
            &["user", "add", "ada@example.com", "--password-stdin"],
            "correct horse battery\n",
        )
        .success();
    let hash = with_store(&synap, async |store| {
        let user = store
            .user_by_email("ada@example.com")
            .await
            .expect("lookup")
            .expect("the user exists");
        assert_eq!(user.id.to_string(), id);
        store.password_hash(user.id).await.expect("hash")
    })
    .expect("a password hash is stored");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let parsed = PasswordHash::new(&hash).expect("a PHC string");
    assert!(
        argon2::Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok(),
        "the line break is not part of the password"
    );
    assert!(!contains(&database_bytes(&synap), "correct horse battery"));
    let events = synap
        .json(&["--user", "ada@example.com", "events"])
        .to_string();
    assert!(!events.contains("argon2") && !events.contains("correct horse"));

    // Without --password-stdin there is no password.
    synap.ok(&["user", "add", "bob@example.com"]);
    let none = with_store(&synap, async |store| {
        let bob = store
            .user_by_email("bob@example.com")
            .await
            .expect("lookup")
            .expect("bob");
        store.password_hash(bob.id).await.expect("hash")
    });
    assert_eq!(none, None);
}

#[test]
fn a_missing_or_short_password_creates_no_user() {
    let synap = Synap::new();
    let empty = synap
        .run_with_stdin(&["user", "add", "ann@example.com", "--password-stdin"], "")
        .failure(2);
    assert!(empty.contains("--password-stdin"), "{empty}");
    let short = synap
        .run_with_stdin(
            &["user", "add", "ann@example.com", "--password-stdin"],
            "short\n",
        )
        .failure(2);
    assert!(short.contains("8 to 128 characters"), "{short}");
    synap.fails(&["--user", "ann@example.com", "list"], 3);
}
