//! `Barrier`: std's barrier on the wait queue. A generation counter tells a woken
//! waiter whether its round is over (wakeups may be spurious).

use super::RawSpinLock;
use super::waitqueue::WaitQueue;
use std::fmt;

/// Lets `n` threads wait for each other, like [`std::sync::Barrier`].
pub struct Barrier {
    /// (arrived in this round, generation)
    state: RawSpinLock<(usize, u64)>,
    n: usize,
    waiters: WaitQueue,
}

/// What [`Barrier::wait`] returns: exactly one thread per round is the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this thread was the last to arrive (std's leader).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    crate::loom::const_fn_unless_loom! {
        /// A barrier for `n` threads (`n` of 0 or 1 never blocks).
        pub fn new(n: usize) -> Barrier {
            Barrier {
                state: RawSpinLock::new((0, 0)),
                n,
                waiters: WaitQueue::new(),
            }
        }
    }

    /// Blocks until `n` threads have called `wait` in this round.
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        crate::preempt::might_sleep();
        let mut s = self.state.lock();
        s.0 += 1;
        if s.0 >= self.n {
            s.0 = 0;
            s.1 += 1;
            let woken = self.waiters.notify_all(0);
            drop(s);
            for w in woken {
                w.wake();
            }
            return BarrierWaitResult(true);
        }
        let generation = s.1;
        loop {
            self.waiters.sleep(s, None);
            s = self.state.lock();
            if s.1 != generation {
                return BarrierWaitResult(false);
            }
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}
