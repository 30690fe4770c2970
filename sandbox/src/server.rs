//! Binding and serving a router in the background, shared by both simulators.

use std::net::SocketAddr;

use axum::Router;

/// Binds `addr` and serves `router` on a spawned task; returns the bound address
/// (so port 0 callers learn the real port).
pub(crate) async fn spawn(router: Router, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok(local)
}
