//! `synap`, the command line: parses the arguments, runs one command on a tokio
//! runtime, and turns the outcome into an exit code (0 success, 1 error, 2 usage,
//! 3 not found, 4 conflict). Errors are one line on standard error; no panics, no
//! backtraces.
//!
//! Code map: [`cli`] (the argument grammar and global flags), [`settings`]
//! (layered configuration), [`context`] (opened store, acting user), [`command`]
//! (one folder per command tree), [`input`] (parsing what users type), [`output`]
//! (tables and JSON), [`error`] (exit codes and the one error table),
//! [`credentials`] (API tokens and password hashes), [`signals`] (graceful stops),
//! [`workers`] (workflow workers for `serve` and `worker`).

mod cli;
mod command;
mod context;
mod credentials;
mod error;
mod input;
mod output;
mod settings;
mod signals;
mod workers;

use clap::Parser;
use error::CliError;
use std::process::ExitCode;
use std::time::Duration;

/// How long the runtime waits for background work (the store's threads) to end
/// after the command has finished.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    // Clap prints its own usage errors and exits 2 (0 for --help and --version).
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return CliError::error(format!("cannot start the async runtime: {error}")).report();
        }
    };
    let outcome = runtime.block_on(command::run(cli));
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}
