//! A timer for tasks that poll it on every wake beside other futures: a connection's idle timer
//! next to its codec (the downstream connection's and the upstream pool's).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio::time::{Instant, Sleep};

/// A sleep that is polled only after its timer has woken the task (and on the first poll after
/// it is set, to register with the timer): the task's other wakes cost a flag check instead of a
/// poll of the timer entry.
///
/// Invariants: while `registered`, the timer entry holds `waker`, so a fired timer sets
/// `signal.fired` before it wakes the task; `signal.task` holds `task` unless `signal.fired` is
/// set (the wake takes it).
pub struct WokenSleep {
    sleep: Pin<Box<Sleep>>,
    signal: Arc<Signal>,
    /// The waker the timer entry is given: it raises `signal.fired`, then wakes the task.
    waker: Waker,
    /// Whether the timer entry has been polled since the sleep was last set.
    registered: bool,
    /// The task waker last given to `signal.task`.
    task: Option<Waker>,
}

/// What the timer's wake leaves for the next poll.
struct Signal {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

// === impl WokenSleep ===

impl WokenSleep {
    /// A sleep until `deadline`.
    pub fn until(deadline: Instant) -> Self {
        let signal = Arc::new(Signal { fired: AtomicBool::new(false), task: AtomicWaker::new() });
        let waker = Waker::from(signal.clone());
        Self { sleep: Box::pin(tokio::time::sleep_until(deadline)), signal, waker, registered: false, task: None }
    }

    /// Sets the sleep to end at `deadline` instead.
    pub fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.registered = false;
    }
}

impl Future for WokenSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let fired = this.signal.fired.swap(false, Ordering::AcqRel);
        // The timer's wake took the task waker out of `signal.task`: give it again then, and
        // whenever the task's waker changed.
        if fired || this.task.as_ref().is_none_or(|t| !t.will_wake(cx.waker())) {
            this.signal.task.register(cx.waker());
            this.task = Some(cx.waker().clone());
        }
        if this.registered && !fired {
            return Poll::Pending;
        }
        this.registered = true;
        this.sleep.as_mut().poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ends_at_its_deadline_and_again_once_reset() {
        let start = Instant::now();
        let mut sleep = WokenSleep::until(start + Duration::from_secs(5));
        (&mut sleep).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
        sleep.reset(Instant::now() + Duration::from_secs(2));
        (&mut sleep).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn other_wakes_do_not_end_it_early() {
        let start = Instant::now();
        let mut sleep = WokenSleep::until(start + Duration::from_secs(10));
        let mut ticks = 0;
        loop {
            tokio::select! {
                biased;
                () = &mut sleep => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => ticks += 1,
            }
        }
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        assert_eq!(ticks, 9, "woken by the other timer in between");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_while_pending_moves_the_deadline() {
        let start = Instant::now();
        let mut sleep = WokenSleep::until(start + Duration::from_secs(10));
        assert!(futures_util::poll!(&mut sleep).is_pending());
        sleep.reset(start + Duration::from_secs(3));
        (&mut sleep).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_its_task_each_time_it_fires() {
        let start = Instant::now();
        let waiter = tokio::spawn(async move {
            let mut sleep = WokenSleep::until(start + Duration::from_secs(1));
            for n in 2..=4 {
                (&mut sleep).await;
                sleep.reset(start + Duration::from_secs(n));
            }
            (&mut sleep).await;
        });
        waiter.await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(4));
    }
}
