//! API token and session id format. A token is `syn_` + a 12-character public
//! prefix (the lookup key) + a 32-character secret, all base62; what is stored is
//! the prefix and the SHA-256 of the whole token.

use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

pub const TOKEN_MARKER: &str = "syn_";
pub const PREFIX_CHARS: usize = 12;
pub const SECRET_CHARS: usize = 32;
/// Random characters in a session id.
pub const SESSION_ID_CHARS: usize = 43;

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

/// The lookup prefix of a presented token, if it has the token shape.
pub fn prefix_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_MARKER)?;
    (rest.len() == PREFIX_CHARS + SECRET_CHARS && rest.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| &rest[..PREFIX_CHARS])
}

/// A fresh session id (the cookie value).
pub fn mint_session_id() -> String {
    random_chars(SESSION_ID_CHARS)
}

/// Hex SHA-256 of a token or session id: what the store keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_findable_prefix() {
        let (token, prefix) = mint_token();
        assert!(token.starts_with("syn_"));
        assert_eq!(prefix_of(&token), Some(prefix.as_str()));
        assert_eq!(prefix_of("syn_short"), None);
        assert_eq!(prefix_of("not-a-token"), None);
        assert_ne!(mint_token().0, token);
        assert_eq!(hash_secret(&token).len(), 64);
    }
}
