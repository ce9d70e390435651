//! SIGTERM and SIGINT for the long-running commands (`synap serve`, `synap
//! worker`): installed before they announce themselves, so a signal sent right
//! after the announcement is a graceful shutdown, never the default "terminate now".

use crate::error::CliError;

/// SIGTERM and SIGINT, listened for from the moment they are installed.
pub struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let failed = |error: std::io::Error| {
                CliError::error(format!("cannot listen for signals: {error}"))
            };
            Ok(Signals {
                terminate: signal(SignalKind::terminate()).map_err(failed)?,
                interrupt: signal(SignalKind::interrupt()).map_err(failed)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Resolves at the first SIGTERM or SIGINT.
    pub async fn received(self) {
        #[cfg(unix)]
        {
            let Signals {
                mut terminate,
                mut interrupt,
            } = self;
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
