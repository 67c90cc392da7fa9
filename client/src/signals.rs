//! Stopping long-running commands (`simulate`, `monitor`) cleanly.

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and
/// `docker compose` send).
pub async fn stop_requested() {
    use actix_rt::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = actix_rt::signal::ctrl_c() => {}
        () = terminated => {}
    }
}
