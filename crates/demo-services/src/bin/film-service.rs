//! film-service: `PORT` (default 5000), `RATING_URL` (default http://127.0.0.1:8080/ratings),
//! `STORE_URL` (optional: keep films in a shared record-store instead of this process's memory).

use std::sync::Arc;

use legate_demo_services::{film::FilmService, http_server, records::Records};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    http_server::init_logging();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5000);
    let rating_url = std::env::var("RATING_URL").unwrap_or_else(|_| "http://127.0.0.1:8080/ratings".into());
    let films = Records::from_env("films");
    tracing::info!("film-service on port {port}, records {}", if films.is_remote() { "in STORE_URL" } else { "in memory" });
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let service = Arc::new(FilmService::with_records(rating_url, films));
    http_server::serve(listener, "film-service", move |req| service.clone().handle(req), http_server::termination()).await;
    Ok(())
}
