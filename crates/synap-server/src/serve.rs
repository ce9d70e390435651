//! Serving the app on a listener, and graceful shutdown.
//!
//! When `shutdown_signal` resolves: `state.shutdown` flips to `true` (event
//! streams end), the listener stops accepting, idle keep-alive connections close,
//! and in-flight requests finish — for at most `config.shutdown_grace`, after
//! which `serve` returns anyway and what is left is dropped with the runtime.
//! Nothing needs flushing: a command is acknowledged only after the store has
//! committed it.

use crate::app::app;
use crate::state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// Serves `app(state)` on `listener` until `shutdown_signal` resolves, then shuts
/// down gracefully (see the module documentation). `shutdown_tx` is the sender
/// [`AppState::new`] returned.
pub async fn serve<F>(
    listener: TcpListener,
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
    shutdown_signal: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let grace = state.config.shutdown_grace;
    let (began_tx, began_rx) = oneshot::channel::<()>();
    let signal = async move {
        shutdown_signal.await;
        // Streams see this and end, so their connections can finish.
        shutdown_tx.send_replace(true);
        let _ = began_tx.send(());
    };
    let server = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    let deadline = async move {
        if began_rx.await.is_err() {
            // The signal future was dropped without firing: no deadline.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            eprintln!(
                "synap: connections still open after {:?}; closing them",
                grace
            );
            Ok(())
        }
    }
}
