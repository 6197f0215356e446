//! film-service: films with id, name and language (seed 000). Creating a film creates its
//! rating by calling rating-service through the mesh (the front proxy).

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::http_server::{error_reply, json_reply, post_json, Reply, Request};
use crate::pseudo_json::{parse_object, required_str};
use crate::records::{Records, StoreError};

/// The film service's state.
pub struct FilmService {
    films: Records,
    /// Where ratings are created: the mesh's `/ratings` route, e.g. `http://127.0.0.1:8080/ratings`.
    rating_url: String,
}

impl FilmService {
    /// A film service that creates ratings at `rating_url`.
    pub fn new(rating_url: String) -> Self {
        Self::with_records(rating_url, Records::default())
    }

    /// A film service that keeps its films in `films` (e.g. a shared record store).
    pub fn with_records(rating_url: String, films: Records) -> Self {
        Self { films, rating_url }
    }

    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request) -> Reply {
        let rest = req.path.strip_prefix("/films");
        match (&req.method, rest) {
            (&Method::GET, Some("" | "/")) => match req.param("name") {
                Some(name) => match self.films.find("name", name).await {
                    Ok(Some(f)) => json_reply(StatusCode::OK, &f),
                    Ok(None) => error_reply(StatusCode::NOT_FOUND, &format!("no film named '{name}'")),
                    Err(e) => store_unavailable(e),
                },
                None => match self.films.all().await {
                    Ok(all) => json_reply(StatusCode::OK, &all),
                    Err(e) => store_unavailable(e),
                },
            },
            (&Method::GET, Some(id)) if id.starts_with('/') => match self.films.find("id", &id[1..]).await {
                Ok(Some(f)) => json_reply(StatusCode::OK, &f),
                Ok(None) => error_reply(StatusCode::NOT_FOUND, "no such film"),
                Err(e) => store_unavailable(e),
            },
            (&Method::POST, Some("" | "/")) => self.create(&req.body).await,
            (_, Some(_)) => error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (_, None) => error_reply(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn create(&self, body: &[u8]) -> Reply {
        let parsed = parse_object(body).and_then(|obj| Ok((required_str(&obj, "name")?, required_str(&obj, "language")?)));
        let (name, language) = match parsed {
            Ok(v) => v,
            Err(e) => return error_reply(StatusCode::BAD_REQUEST, &e.0),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let rating = json!({ "id": id, "name": name, "rating": "5" });
        match post_json(&self.rating_url, &rating).await {
            Ok((status, _)) if status.is_success() => {}
            Ok((status, body)) => {
                let detail = String::from_utf8_lossy(&body);
                return error_reply(
                    StatusCode::BAD_GATEWAY,
                    &format!("rating-service answered {}: {detail}", status.as_u16()),
                );
            }
            Err(e) => return error_reply(StatusCode::BAD_GATEWAY, &format!("rating-service unreachable: {e}")),
        }
        let mut record = Map::new();
        record.insert("name".into(), Value::String(name));
        record.insert("language".into(), Value::String(language));
        record.insert("id".into(), Value::String(id));
        match self.films.insert(record).await {
            Ok(all) => json_reply(StatusCode::OK, &all),
            Err(e) => store_unavailable(e),
        }
    }
}

/// 503 with the store's failure: the film or rating services cannot answer without their records.
pub(crate) fn store_unavailable(e: StoreError) -> Reply {
    error_reply(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}
