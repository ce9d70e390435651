//! Credentials for `synap token create` and `synap user add`: the server's token
//! format and password hashing (`synap_server::auth`), with failures turned into
//! one-line CLI errors. One format, one place.

use crate::error::CliError;
use synap_server::auth::password;

pub use synap_server::auth::password::PASSWORD_CHARS_MAX;
pub use synap_server::auth::tokens::{TOKEN_MARKER, hash_secret, mint_token};

/// Checks a password's length (a usage error names the rule).
pub fn validate_password(password: &str) -> Result<(), CliError> {
    password::validate(password)
        .map_err(|error| CliError::usage(format!("password: {}", error.detail)))
}

/// The Argon2id PHC string of `password`.
pub async fn hash_password(password: String) -> Result<String, CliError> {
    password::hash(password)
        .await
        .map_err(|_| CliError::error("cannot hash the password"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use synap_server::auth::tokens;

    #[test]
    fn tokens_have_the_server_format() {
        let (token, prefix) = mint_token();
        assert_eq!(tokens::prefix_of(&token), Some(prefix.as_str()));
        assert_eq!(hash_secret(&token).len(), 64);
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
