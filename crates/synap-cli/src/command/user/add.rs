//! `synap user add EMAIL [--role member|admin] [--password-stdin]`: creates an
//! account (and its `user.created` event, which carries no secret). With
//! `--password-stdin` the first line of standard input becomes the password,
//! stored only as an Argon2id hash. Act as the user with `--user EMAIL`.

use crate::context::Context;
use crate::credentials;
use crate::error::CliError;
use std::io::BufRead;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user's email address (unique, case-insensitive)
    pub email: String,
    /// What the user may do
    #[arg(long, value_name = "ROLE", default_value = "member")]
    pub role: Role,
    /// Read a password (for signing in to the web app) from the first line of
    /// standard input
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let password_hash = if args.password_stdin {
        let password = password_line()?;
        credentials::validate_password(&password)?;
        Some(credentials::hash_password(password).await?)
    } else {
        None
    };
    let user = context
        .store
        .create_user(synap_store::NewUser {
            email: args.email,
            role: args.role.as_str().to_string(),
            password_hash,
            display_name: None,
        })
        .await?;
    if context.out.is_json() {
        context.out.document(&user)
    } else {
        context.out.line(user.id.to_string())
    }
}

/// The first line of standard input, without its line break.
fn password_line() -> Result<String, CliError> {
    let mut line = String::new();
    // A line longer than any accepted password is refused without reading it all.
    let limit = (credentials::PASSWORD_CHARS_MAX * 4 + 2) as u64;
    std::io::Read::take(std::io::stdin().lock(), limit)
        .read_line(&mut line)
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::InvalidData {
                CliError::usage("--password-stdin: standard input is not UTF-8 text")
            } else {
                CliError::error(format!("cannot read standard input: {error}"))
            }
        })?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err(CliError::usage(
            "--password-stdin: standard input has no password; pipe one line, e.g. `printf '%s\\n' \"$PASSWORD\" | synap user add EMAIL --password-stdin`",
        ));
    }
    Ok(password.to_string())
}
