//! RANDOM: a uniformly random host. Envoy's random balancer ignores weights.

/// The RANDOM policy (stateless).
pub struct Random;

impl Random {
    /// A random index below `n`.
    pub fn pick(&self, n: usize) -> usize {
        (rand::random::<u64>() % n as u64) as usize
    }
}
