//! Lock-free Envoy-compatible stats.
//!
//! CONTRACT (implemented by the stats work; other crates rely on exactly this API):
//! - `Store` is a cheap `Clone` handle (Arc inside), shared by all threads.
//! - `Store::counter/gauge/histogram(name)` get-or-create a stat by its Envoy flat name
//!   (`cluster.film.upstream_rq_total`). The returned handle is a cheap `Clone` (Arc) whose
//!   updates are single atomic ops. Callers on hot paths create handles once and keep them.
//! - Tags for Prometheus are extracted from the flat name with Envoy's default tag extractors,
//!   once, at creation.
//! - Renderers: `render_text`, `render_json`, `render_prometheus` (used by the admin crate).
