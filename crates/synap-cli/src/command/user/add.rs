//! `synap user add EMAIL [--role member|admin]`: creates an account (and its
//! `user.created` event). Act as it with `--user EMAIL`.

use crate::context::Context;
use crate::error::CliError;

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
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let user = context
        .store
        .create_user(&args.email, args.role.as_str())
        .await?;
    if context.out.is_json() {
        context.out.document(&user)
    } else {
        context.out.line(user.id.to_string())
    }
}
