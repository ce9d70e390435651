//! Account rules every backend applies before it stores anything: what a valid
//! email, role, display name, token name and scope list are, with the limits
//! named once. Backends only add their SQL.

use crate::api::{NewUser, StoreError, StoreResult};
use jiff::Timestamp;
use synap_domain::DomainError;

/// The email of the local owner, the account one person uses without set-up.
pub const LOCAL_OWNER_EMAIL: &str = "owner@localhost";
/// Longest email address accepted.
pub const EMAIL_CHARS_MAX: usize = 254;
/// Longest display name accepted.
pub const DISPLAY_NAME_CHARS_MAX: usize = 100;
/// Longest token name accepted.
pub const TOKEN_NAME_CHARS_MAX: usize = 100;
/// The scopes a token may carry.
pub const TOKEN_SCOPES: &[&str] = &["read", "write", "admin"];

/// Account times are stored with microsecond precision; answers carry what is
/// stored.
pub fn stored(at: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(at.as_microsecond()).unwrap_or(at)
}

/// A refusal naming the field at fault.
pub fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    DomainError::Validation {
        field,
        message: message.into(),
    }
    .into()
}

/// A checked user: trimmed email, role and display name.
#[derive(Debug, Clone, Copy)]
pub struct CheckedUser<'a> {
    pub email: &'a str,
    pub role: &'a str,
    pub display_name: Option<&'a str>,
}

/// Checks a new user's email, role and display name.
pub fn check_user(user: &NewUser) -> StoreResult<CheckedUser<'_>> {
    let email = user.email.trim();
    let valid = email.chars().count() <= EMAIL_CHARS_MAX
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(invalid(
            "email",
            format!("{email:?} is not an email address"),
        ));
    }
    let role = user.role.as_str();
    if !matches!(role, "owner" | "admin" | "member") {
        return Err(invalid(
            "role",
            format!("{role:?} is not a role; use owner, admin or member"),
        ));
    }
    let display_name = user
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    if let Some(name) = display_name
        && (name.chars().count() > DISPLAY_NAME_CHARS_MAX || name.chars().any(char::is_control))
    {
        return Err(invalid(
            "display_name",
            format!(
                "a display name has at most {DISPLAY_NAME_CHARS_MAX} characters and no control characters"
            ),
        ));
    }
    Ok(CheckedUser {
        email,
        role,
        display_name,
    })
}

/// A trimmed, checked token name.
pub fn token_name(name: &str) -> StoreResult<&str> {
    let name = name.trim();
    let chars = name.chars().count();
    if !(1..=TOKEN_NAME_CHARS_MAX).contains(&chars) || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!(
                "a token name has 1 to {TOKEN_NAME_CHARS_MAX} characters and no control characters"
            ),
        ));
    }
    Ok(name)
}

/// Checked scopes, each once, in the order given.
pub fn token_scopes(scopes: &[String]) -> StoreResult<Vec<String>> {
    let mut checked: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !TOKEN_SCOPES.contains(&scope.as_str()) {
            return Err(invalid(
                "scopes",
                format!("{scope:?} is not a scope; use read, write or admin"),
            ));
        }
        if !checked.contains(scope) {
            checked.push(scope.clone());
        }
    }
    if checked.is_empty() {
        return Err(invalid(
            "scopes",
            "a token needs at least one scope: read, write or admin",
        ));
    }
    Ok(checked)
}
