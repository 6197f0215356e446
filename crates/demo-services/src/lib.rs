//! The seed's two in-memory services: `film-service` (port 5000) and `rating-service` (port 6000).
//! Both speak JSON over HTTP/1.1, log every request with their name and hostname, answer
//! `/health`, and accept the seed's single-quoted pseudo-JSON request bodies. With `STORE_URL` set
//! they keep their records in a shared `record-store` (port 7000) instead, so replicas are stateless.

pub mod film;
pub mod http_server;
pub mod pseudo_json;
pub mod rating;
pub mod records;
pub mod store;
