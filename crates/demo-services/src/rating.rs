//! rating-service: ratings of films, all 5 stars (seed 000).

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::http_server::{error_reply, json_reply, Reply, Request};
use crate::pseudo_json::{parse_object, required_str};
use crate::records::Records;

/// The rating service's state.
#[derive(Default)]
pub struct RatingService {
    ratings: Records,
}

impl RatingService {
    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request) -> Reply {
        let rest = req.path.strip_prefix("/ratings");
        match (&req.method, rest) {
            (&Method::GET, Some("" | "/")) => match req.param("name") {
                Some(name) => match self.ratings.find("name", name) {
                    Some(r) => json_reply(StatusCode::OK, &r),
                    None => error_reply(StatusCode::NOT_FOUND, &format!("no rating for '{name}'")),
                },
                None => json_reply(StatusCode::OK, &self.ratings.all()),
            },
            (&Method::GET, Some(id)) if id.starts_with('/') => match self.ratings.find("id", &id[1..]) {
                Some(r) => json_reply(StatusCode::OK, &r),
                None => error_reply(StatusCode::NOT_FOUND, "no such rating"),
            },
            (&Method::POST, Some("" | "/")) => self.create(&req.body),
            (_, Some(_)) => error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            (_, None) => error_reply(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn create(&self, body: &[u8]) -> Reply {
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
                self.ratings.insert(record);
                json_reply(StatusCode::OK, &self.ratings.all())
            }
            Err(e) => error_reply(StatusCode::BAD_REQUEST, &e.0),
        }
    }
}
