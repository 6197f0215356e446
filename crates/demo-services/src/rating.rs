//! rating-service: ratings of films, all 5 stars (seed 000).

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::film::store_unavailable;
use crate::http_server::{error_reply, json_reply, Reply, Request};
use crate::pseudo_json::{parse_object, required_str};
use crate::records::Records;

/// The rating service's state.
#[derive(Default)]
pub struct RatingService {
    ratings: Records,
}

impl RatingService {
    /// A rating service that keeps its ratings in `ratings` (e.g. a shared record store).
    pub fn with_records(ratings: Records) -> Self {
        Self { ratings }
    }

    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request) -> Reply {
        let rest = req.path.strip_prefix("/ratings");
        match (&req.method, rest) {
            (&Method::GET, Some("" | "/")) => match req.param("name") {
                Some(name) => match self.ratings.find("name", name).await {
                    Ok(Some(r)) => json_reply(StatusCode::OK, &r),
                    Ok(None) => error_reply(StatusCode::NOT_FOUND, &format!("no rating for '{name}'")),
                    Err(e) => store_unavailable(e),
                },
                None => match self.ratings.all().await {
                    Ok(all) => json_reply(StatusCode::OK, &all),
                    Err(e) => store_unavailable(e),
                },
            },
            (&Method::GET, Some(id)) if id.starts_with('/') => match self.ratings.find("id", &id[1..]).await {
                Ok(Some(r)) => json_reply(StatusCode::OK, &r),
                Ok(None) => error_reply(StatusCode::NOT_FOUND, "no such rating"),
                Err(e) => store_unavailable(e),
            },
            (&Method::POST, Some("" | "/")) => self.create(&req.body).await,
            (_, Some(_)) => error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (_, None) => error_reply(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn create(&self, body: &[u8]) -> Reply {
        let parsed = parse_object(body).and_then(|obj| {
            let name = required_str(&obj, "name")?;
            let id = match obj.get("id") {
                Some(_) => required_str(&obj, "id")?,
                None => uuid::Uuid::new_v4().to_string(),
            };
            let rating = obj.get("rating").map_or(Ok("5".to_string()), |_| required_str(&obj, "rating"))?;
            Ok((id, name, rating))
        });
        match parsed {
            Ok((id, name, rating)) => {
                let mut record = Map::new();
                record.insert("id".into(), Value::String(id));
                record.insert("name".into(), Value::String(name));
                record.insert("rating".into(), Value::String(rating));
                match self.ratings.insert(record).await {
                    Ok(all) => json_reply(StatusCode::OK, &all),
                    Err(e) => store_unavailable(e),
                }
            }
            Err(e) => error_reply(StatusCode::BAD_REQUEST, &e.0),
        }
    }
}
