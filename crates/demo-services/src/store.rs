//! record-store: the shared record store of the scaled demo (`STORE_URL`). A tiny key/value HTTP
//! service holding insertion-ordered JSON records per collection, in memory:
//!
//! * `GET /records/{collection}`: all records of the collection, a JSON array (`[]` if none);
//! * `POST /records/{collection}` with a JSON object: appends it and answers all records,
//!   including the new one, as one atomic step.
//!
//! It runs as a single replica: it is the one stateful part, so that any number of film-service
//! and rating-service replicas agree on what exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use serde_json::Value;

use crate::http_server::{error_reply, json_reply, Reply, Request};

/// The record store's state.
#[derive(Default)]
pub struct RecordStore {
    collections: Mutex<HashMap<String, Vec<Value>>>,
}

impl RecordStore {
    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request) -> Reply {
        let Some(name) = req.path.strip_prefix("/records/") else {
            return error_reply(StatusCode::NOT_FOUND, "not found");
        };
        if name.is_empty() || name.contains('/') {
            return error_reply(StatusCode::NOT_FOUND, "not found");
        }
        match req.method {
            Method::GET => {
                let collections = self.lock();
                let items = collections.get(name).cloned().unwrap_or_default();
                json_reply(StatusCode::OK, &Value::Array(items))
            }
            Method::POST => match serde_json::from_slice::<Value>(&req.body) {
                Ok(record @ Value::Object(_)) => {
                    let mut collections = self.lock();
                    let items = collections.entry(name.to_string()).or_default();
                    items.push(record);
                    json_reply(StatusCode::OK, &Value::Array(items.clone()))
                }
                _ => error_reply(StatusCode::BAD_REQUEST, "a record is a JSON object"),
            },
            _ => error_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Value>>> {
        self.collections.lock().unwrap_or_else(|e| e.into_inner())
    }
}
