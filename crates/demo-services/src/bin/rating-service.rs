//! rating-service: `PORT` (default 6000).

use std::sync::Arc;

use legate_demo_services::{http_server, rating::RatingService};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    http_server::init_logging();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6000);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let service = Arc::new(RatingService::default());
    http_server::serve(listener, "rating-service", move |req| service.clone().handle(req), http_server::termination()).await;
    Ok(())
}
