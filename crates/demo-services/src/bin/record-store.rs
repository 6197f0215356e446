//! record-store: `PORT` (default 7000). The shared record store of film-service and
//! rating-service replicas started with `STORE_URL=http://record-store:7000`.

use std::sync::Arc;

use legate_demo_services::{http_server, store::RecordStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    http_server::init_logging();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(7000);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let store = Arc::new(RecordStore::default());
    http_server::serve(listener, "record-store", move |req| store.clone().handle(req), http_server::termination()).await;
    Ok(())
}
