//! Shutdown as a parameter: [`on_signal`] cancels a token on Ctrl-C or SIGTERM, and every
//! loop takes a token, finishes the message in hand, and returns.

pub use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process gets Ctrl-C or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown signal received; draining");
        trigger.cancel();
    });
    token
}
