//! An in-memory, insertion-ordered record store keyed by id.

use std::sync::Mutex;

use serde_json::{Map, Value};

/// Records (JSON objects with an `id` and a `name`), in insertion order.
#[derive(Default)]
pub struct Records {
    items: Mutex<Vec<Map<String, Value>>>,
}

impl Records {
    /// Appends a record.
    pub fn insert(&self, record: Map<String, Value>) {
        self.lock().push(record);
    }

    /// All records as a JSON array.
    pub fn all(&self) -> Value {
        Value::Array(self.lock().iter().cloned().map(Value::Object).collect())
    }

    /// The first record whose `field` equals `value`.
    pub fn find(&self, field: &str, value: &str) -> Option<Value> {
        self.lock().iter().find(|r| r.get(field).and_then(Value::as_str) == Some(value)).cloned().map(Value::Object)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Map<String, Value>>> {
        // A panic while holding the lock cannot leave a half-written Vec; keep serving.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}
