//! Insertion-ordered records keyed by id: either in this process's memory (the seed's behaviour,
//! one copy per replica) or in a shared `record-store` service (`STORE_URL`), which makes the
//! film and rating replicas stateless so that a POST and a later GET agree whichever replicas
//! the proxy picks.

use std::sync::Mutex;

use http::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::http_server::request_json;

/// The environment variable that switches the services to a shared record store.
pub const STORE_URL_ENV: &str = "STORE_URL";

/// Where a service keeps its records.
pub enum Records {
    /// In this process's memory.
    Memory(Mutex<Vec<Map<String, Value>>>),
    /// In a `record-store` service: `{base}/records/{collection}`.
    Remote {
        /// The collection's URL, e.g. `http://record-store:7000/records/films`.
        url: String,
    },
}

impl Default for Records {
    fn default() -> Self {
        Records::Memory(Mutex::default())
    }
}

/// A failure to reach or understand the shared record store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record store: {}", self.0)
    }
}

impl Records {
    /// Records kept in the record store at `base_url` (`http://host:port`) under `collection`.
    pub fn remote(base_url: &str, collection: &str) -> Self {
        Records::Remote { url: format!("{}/records/{collection}", base_url.trim_end_matches('/')) }
    }

    /// Remote records when `STORE_URL` is set (and not empty), in-memory ones otherwise.
    pub fn from_env(collection: &str) -> Self {
        match std::env::var(STORE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Self::remote(url.trim(), collection),
            _ => Self::default(),
        }
    }

    /// Whether the records live in a shared store.
    pub fn is_remote(&self) -> bool {
        matches!(self, Records::Remote { .. })
    }

    /// Appends a record and returns all records (including it) as a JSON array.
    pub async fn insert(&self, record: Map<String, Value>) -> Result<Value, StoreError> {
        match self {
            Records::Memory(items) => {
                let mut items = lock(items);
                items.push(record);
                Ok(array(&items))
            }
            Records::Remote { url } => {
                let value = Value::Object(record);
                expect_array(request_json(Method::POST, url, Some(&value)).await)
            }
        }
    }

    /// All records as a JSON array.
    pub async fn all(&self) -> Result<Value, StoreError> {
        match self {
            Records::Memory(items) => Ok(array(&lock(items))),
            Records::Remote { url } => expect_array(request_json(Method::GET, url, None).await),
        }
    }

    /// The first record whose `field` equals `value`.
    pub async fn find(&self, field: &str, value: &str) -> Result<Option<Value>, StoreError> {
        let all = self.all().await?;
        let items = all.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(items.iter().find(|r| r.get(field).and_then(Value::as_str) == Some(value)).cloned())
    }
}

fn array(items: &[Map<String, Value>]) -> Value {
    Value::Array(items.iter().cloned().map(Value::Object).collect())
}

fn expect_array(answer: Result<(StatusCode, bytes::Bytes), String>) -> Result<Value, StoreError> {
    let (status, body) = answer.map_err(StoreError)?;
    if !status.is_success() {
        return Err(StoreError(format!("answered {}: {}", status.as_u16(), String::from_utf8_lossy(&body))));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Array(_)) => Ok(v),
        Ok(_) | Err(_) => Err(StoreError("answered something other than a JSON array".into())),
    }
}

fn lock(items: &Mutex<Vec<Map<String, Value>>>) -> std::sync::MutexGuard<'_, Vec<Map<String, Value>>> {
    // A panic while holding the lock cannot leave a half-written Vec; keep serving.
    items.lock().unwrap_or_else(|e| e.into_inner())
}
