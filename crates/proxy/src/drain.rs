//! Envoy's drain manager: when downstream connections should be closed after their current
//! response (HTTP/1: `connection: close`; HTTP/2: GOAWAY).
//!
//! As in Envoy's `DrainManagerImpl::drainClose`: always while `POST /healthcheck/fail` is in
//! force; during a drain sequence (`POST /drain_listeners?graceful`), always with the
//! `immediate` strategy, and with the `gradual` one with a probability that grows linearly from
//! 0 to 1 over `--drain-time-s`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// `--drain-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStrategy {
    /// `gradual` (Envoy's default): more and more connections are closed over the drain time.
    Gradual,
    /// `immediate`: every connection is closed as soon as draining starts.
    Immediate,
}

/// Decides whether a response closes its connection because the server drains.
#[derive(Debug)]
pub struct DrainManager {
    /// `POST /healthcheck/fail` is in force (shared with the admin server).
    health_check_failed: Arc<AtomicBool>,
    /// When the drain sequence started.
    draining_since: OnceLock<Instant>,
    /// `--drain-time-s`.
    drain_time: Duration,
    /// `--drain-strategy`.
    strategy: DrainStrategy,
}

// === impl DrainManager ===

impl DrainManager {
    /// A drain manager reading the health-check-failed flag `health_check_failed`.
    pub fn new(drain_time: Duration, strategy: DrainStrategy, health_check_failed: Arc<AtomicBool>) -> Self {
        Self { health_check_failed, draining_since: OnceLock::new(), drain_time, strategy }
    }

    /// Starts the drain sequence; `false` when it had already started.
    pub fn start_draining(&self) -> bool {
        self.draining_since.set(Instant::now()).is_ok()
    }

    /// Whether the drain sequence has started.
    pub fn draining(&self) -> bool {
        self.draining_since.get().is_some()
    }

    /// The drain time (`--drain-time-s`).
    pub fn drain_time(&self) -> Duration {
        self.drain_time
    }

    /// Whether the connection of the response being sent should close (Envoy's
    /// `drainClose()`).
    pub fn drain_close(&self) -> bool {
        if self.health_check_failed.load(Ordering::Relaxed) {
            return true;
        }
        let Some(since) = self.draining_since.get() else { return false };
        self.drain_close_at(since.elapsed(), rand::random::<u64>())
    }

    /// `drain_close` `elapsed` into the drain sequence, with the random draw `random`: Envoy
    /// compares whole seconds elapsed with a random number modulo the drain time in seconds.
    fn drain_close_at(&self, elapsed: Duration, random: u64) -> bool {
        let total = self.drain_time.as_secs();
        if self.strategy == DrainStrategy::Immediate || total == 0 {
            return true;
        }
        elapsed.as_secs().min(total) > random % total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(secs: u64, strategy: DrainStrategy) -> (DrainManager, Arc<AtomicBool>) {
        let failed = Arc::new(AtomicBool::new(false));
        (DrainManager::new(Duration::from_secs(secs), strategy, failed.clone()), failed)
    }

    #[test]
    fn a_failed_health_check_closes_every_connection() {
        let (m, failed) = manager(600, DrainStrategy::Gradual);
        assert!(!m.drain_close());
        failed.store(true, Ordering::Relaxed);
        assert!(m.drain_close() && !m.draining());
    }

    #[test]
    fn the_gradual_strategy_closes_more_connections_over_time() {
        let (m, _) = manager(10, DrainStrategy::Gradual);
        assert!(m.start_draining() && !m.start_draining());
        let closes = |secs| (0..10).filter(|r| m.drain_close_at(Duration::from_secs(secs), *r)).count();
        assert_eq!((closes(0), closes(3), closes(10), closes(99)), (0, 3, 10, 10));
    }

    #[test]
    fn immediate_or_zero_drain_time_closes_at_once() {
        let (m, _) = manager(600, DrainStrategy::Immediate);
        assert!(!m.drain_close());
        m.start_draining();
        assert!(m.drain_close());
        let (z, _) = manager(0, DrainStrategy::Gradual);
        assert!(z.drain_close_at(Duration::ZERO, 5));
    }
}
