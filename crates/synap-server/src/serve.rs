//! (to be written) Binding and graceful shutdown.

use crate::state::AppState;
use tokio::net::TcpListener;

/// Serves `app(state)` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (listener, state, shutdown_tx, shutdown);
    Ok(())
}
