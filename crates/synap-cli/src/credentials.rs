//! Secrets the CLI makes: API tokens and password hashes.
//!
//! The token format and the password parameters are duplicated on purpose from
//! `crates/synap-server/src/auth/tokens.rs` and `crates/synap-server/src/auth/password.rs`
//! (the CLI does not depend on the server). Keep the copies identical: a token
//! minted here must authenticate there, and a password set here must verify there.
//!
//! A token is `syn_` + a 12-character public prefix (the lookup key) + a
//! 32-character secret, all base62; the store keeps the prefix and the hex
//! SHA-256 of the whole token, never the token.

use crate::error::CliError;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng as SaltRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

pub const TOKEN_MARKER: &str = "syn_";
pub const PREFIX_CHARS: usize = 12;
pub const SECRET_CHARS: usize = 32;

/// Shortest and longest password accepted (as the server's `auth::password`).
pub const PASSWORD_CHARS_MIN: usize = 8;
pub const PASSWORD_CHARS_MAX: usize = 128;

fn random_chars(count: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(count)
        .map(char::from)
        .collect()
}

/// A fresh token: `(whole token, prefix)`.
pub fn mint_token() -> (String, String) {
    let prefix = random_chars(PREFIX_CHARS);
    let token = format!("{TOKEN_MARKER}{prefix}{}", random_chars(SECRET_CHARS));
    (token, prefix)
}

/// Hex SHA-256 of a token: what the store keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a password's length (a usage error names the rule).
pub fn validate_password(password: &str) -> Result<(), CliError> {
    let chars = password.chars().count();
    if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars) {
        return Err(CliError::usage(format!(
            "password: a password has {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

/// The Argon2id PHC string of `password` (default parameters, random salt). Slow
/// on purpose, so it runs on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, CliError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut SaltRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|error| CliError::error(format!("cannot hash the password: {error}")))?
    .map_err(|error| CliError::error(format!("cannot hash the password: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn tokens_have_the_server_format() {
        let (token, prefix) = mint_token();
        let rest = token.strip_prefix("syn_").unwrap_or_default();
        assert_eq!(rest.len(), PREFIX_CHARS + SECRET_CHARS);
        assert!(rest.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(&rest[..PREFIX_CHARS], prefix);
        assert_ne!(mint_token().0, token);
        let hash = hash_secret(&token);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn passwords_are_argon2id_and_verify() {
        let hash = hash_password("correct horse".into()).await.ok();
        let hash = hash.unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let parsed = PasswordHash::new(&hash).ok();
        assert!(parsed.is_some_and(|parsed| {
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        }));
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
