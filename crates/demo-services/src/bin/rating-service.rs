//! rating-service: `PORT` (default 6000), `STORE_URL` (optional: keep ratings in a shared
//! record-store instead of this process's memory).

use std::sync::Arc;

use legate_demo_services::{http_server, rating::RatingService, records::Records};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    http_server::init_logging();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6000);
    let ratings = Records::from_env("ratings");
    tracing::info!("rating-service on port {port}, records {}", if ratings.is_remote() { "in STORE_URL" } else { "in memory" });
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let service = Arc::new(RatingService::with_records(ratings));
    http_server::serve(listener, "rating-service", move |req| service.clone().handle(req), http_server::termination()).await;
    Ok(())
}
