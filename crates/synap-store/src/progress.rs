//! Progress reports from blocking maintenance work (rebuild, verify, migrate),
//! relayed to the async caller's callback, which need not be `Send`.

use crate::api::{Progress, StoreResult};
use tokio::sync::mpsc;

/// A progress callback that can cross to a blocking thread.
pub type Report = Box<dyn Fn(u64, u64) + Send + Sync>;

/// The receiving end of a [`Report`].
pub type Reports = mpsc::UnboundedReceiver<(u64, u64)>;

/// A callback for blocking work and the receiver of its reports.
pub fn reporter() -> (Report, Reports) {
    let (sender, receiver) = mpsc::unbounded_channel::<(u64, u64)>();
    let report: Report = Box::new(move |done, total| {
        let _ = sender.send((done, total));
    });
    (report, receiver)
}

/// Awaits `task`, calling `progress` for every report it sends meanwhile.
pub async fn forward<T>(
    progress: Progress<'_>,
    mut reports: Reports,
    task: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    tokio::pin!(task);
    loop {
        tokio::select! {
            result = &mut task => {
                while let Ok((done, total)) = reports.try_recv() { progress(done, total); }
                return result;
            }
            Some((done, total)) = reports.recv() => progress(done, total),
        }
    }
}
