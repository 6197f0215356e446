//! A connection's spare stream timers.
//!
//! tokio files a sleep in its timer wheel when the sleep is first polled, and takes it out again,
//! under the time driver's lock, when the sleep is dropped. The streams of a keep-alive connection
//! follow one another with the same timeouts, so the timer of each stream, handed back when the
//! stream ends, serves a later one without an allocation, a filing or a removal; an HTTP/2
//! connection keeps one per stream it carried at once, up to [`MAX_SPARES`].
//!
//! Invariant: a sleep from [`TimerSlot::sleep_by`] ends at the deadline asked for, or earlier,
//! never later. Its owner, finding no deadline passed when it ends, sets it again (as
//! `StreamLimits::expiry` and `BodyTimer` do for every early end). A spare set for a moment still
//! to come, and not after the new deadline, is therefore left as it is: a connection that keeps
//! serving sees its timer end early about once per timeout, instead of resetting it per stream.

use std::pin::Pin;
use std::sync::Mutex;

use tokio::time::{Instant, Sleep};

/// The most spare sleeps a connection keeps.
pub const MAX_SPARES: usize = 16;

/// Holds the spare sleeps of a connection's streams, the last given back on top.
#[derive(Debug, Default)]
pub struct TimerSlot {
    spares: Mutex<Vec<Pin<Box<Sleep>>>>,
}

// === impl TimerSlot ===

impl TimerSlot {
    /// A sleep that ends at `due` or earlier (see the module's invariant): the spare on top, as
    /// it is when it is set for a moment after `now` and not after `due`, else reset to `due`; a
    /// new one without a spare.
    pub fn sleep_by(&self, due: Instant, now: Instant) -> Pin<Box<Sleep>> {
        let spare = self.spares.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(mut sleep) => {
                let set_for = sleep.deadline();
                if set_for <= now || set_for > due {
                    sleep.as_mut().reset(due);
                }
                debug_assert!(sleep.deadline() <= due, "a stream timer must not end after its deadline");
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(due)),
        }
    }

    /// Keeps `sleep` for a later stream of the connection; with [`MAX_SPARES`] kept already, it
    /// is dropped.
    pub fn give_back(&self, sleep: Pin<Box<Sleep>>) {
        let refused = {
            let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
            if spares.len() < MAX_SPARES {
                spares.push(sleep);
                None
            } else {
                Some(sleep)
            }
        };
        // Dropped outside the lock: dropping a sleep takes the time driver's lock.
        drop(refused);
    }
}

#[cfg(test)]
impl TimerSlot {
    /// A slot with one spare, filed in the wheel for `due` as a stream's timer is once the
    /// stream has waited; with the spare's address.
    pub(crate) async fn with_filed_spare(due: Instant, now: Instant) -> (Self, *const Sleep) {
        let slot = Self::default();
        let mut sleep = slot.sleep_by(due, now);
        assert!(futures_util::poll!(sleep.as_mut()).is_pending(), "a spare due later than now");
        let address: *const Sleep = &*sleep;
        slot.give_back(sleep);
        (slot, address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn address(sleep: &Pin<Box<Sleep>>) -> *const Sleep {
        &**sleep
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_set_before_the_deadline_is_reused_as_it_is() {
        let start = Instant::now();
        let (slot, first_address) = TimerSlot::with_filed_spare(start + ms(10), start).await;

        // A later deadline: the same sleep, still set for the earlier moment; it ends there and
        // its owner sets it again.
        let mut second = slot.sleep_by(start + ms(50), start);
        assert_eq!(address(&second), first_address);
        assert_eq!(second.deadline(), start + ms(10));
        second.as_mut().await;
        assert_eq!(start.elapsed(), ms(10));
        slot.give_back(second);

        // A spare whose moment has passed is reset: it ends at the new deadline.
        let now = Instant::now();
        let third = slot.sleep_by(now + ms(5), now);
        assert_eq!(address(&third), first_address);
        third.await;
        assert_eq!(now.elapsed(), ms(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_set_after_the_deadline_is_reset_to_it() {
        let start = Instant::now();
        let (slot, _) = TimerSlot::with_filed_spare(start + ms(100), start).await;
        slot.sleep_by(start + ms(20), start).await;
        assert_eq!(start.elapsed(), ms(20));
    }

    #[tokio::test(start_paused = true)]
    async fn spares_up_to_the_limit_last_given_back_first() {
        let slot = TimerSlot::default();
        let now = Instant::now();
        let due = now + ms(10);
        let sleeps: Vec<_> = (0..MAX_SPARES + 1).map(|_| slot.sleep_by(due, now)).collect();
        let addresses: Vec<_> = sleeps.iter().map(address).collect();
        for sleep in sleeps {
            slot.give_back(sleep);
        }
        // The last one given back was past the limit, and dropped: the spares are the others,
        // the last given back first.
        let reused: Vec<_> = (0..MAX_SPARES).map(|_| slot.sleep_by(due, now)).collect();
        let expected: Vec<_> = addresses[..MAX_SPARES].iter().rev().copied().collect();
        assert_eq!(reused.iter().map(address).collect::<Vec<_>>(), expected);
    }
}
