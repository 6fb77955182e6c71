//! Channels with `std::sync::mpsc`'s API: [`channel`] (unbounded) and
//! [`sync_channel`] (bounded; a bound of 0 is a rendezvous: `send` returns once the
//! receiver has taken the value, `try_send` succeeds only if a receiver waits), whose blocking calls park green threads through the scheduler and plain OS
//! threads through `parking_lot_core`.
//!
//! One `RawSpinLock` guards the queue and the endpoint counts; two wait queues hold
//! blocked receivers (`readable`) and blocked senders (`writable`), each ordered by
//! priority. Lock order: the state lock, then a wait queue's lock. A blocking call
//! queues itself while still holding the state lock and releases it inside the wait
//! queue (`WaitQueue::wait`), so a peer that changes the state afterwards finds it
//! queued: no lost wakeups. Wakeups happen after the locks are released.
//!
//! Errors are std's own types (`SendError`, `RecvError`, `TryRecvError`…), with std's
//! disconnect semantics: `recv` drains what was sent before the last sender went away,
//! and `send` fails (returning the value) once the receiver is gone.

use super::RawSpinLock;
use super::waitqueue::WaitQueue;
use crate::preempt;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

struct State<T> {
    queue: VecDeque<T>,
    /// `None`: unbounded.
    bound: Option<usize>,
    /// Values sent and taken so far: a rendezvous sender waits until its value is
    /// taken (`taken` reaches its ticket).
    sent: u64,
    taken: u64,
    senders: usize,
    receiver: bool,
}

struct Chan<T> {
    state: RawSpinLock<State<T>>,
    readable: WaitQueue,
    writable: WaitQueue,
}

impl<T> Chan<T> {
    fn new(bound: Option<usize>) -> Arc<Chan<T>> {
        Arc::new(Chan {
            state: RawSpinLock::new(State {
                queue: VecDeque::new(),
                bound,
                sent: 0,
                taken: 0,
                senders: 1,
                receiver: true,
            }),
            readable: WaitQueue::new(),
            writable: WaitQueue::new(),
        })
    }

    /// Sends, blocking while the channel is full if `block`.
    #[track_caller]
    fn send(&self, value: T, block: bool) -> Result<(), TrySendError<T>> {
        if block {
            preempt::might_sleep();
        }
        let mut value = Some(value);
        loop {
            let mut s = self.state.lock();
            if !s.receiver {
                return Err(TrySendError::Disconnected(value.take().expect("value")));
            }
            // A rendezvous (bound 0) passes one value at a time through a slot of one,
            // and a `try_send` only to a receiver already waiting.
            let rendezvous = s.bound == Some(0);
            let cap = s.bound.map(|b| b.max(1));
            let room = cap.is_none_or(|c| s.queue.len() < c)
                && (block || !rendezvous || self.readable.has_waiters());
            if room {
                s.queue.push_back(value.take().expect("value"));
                s.sent += 1;
                let ticket = s.sent;
                drop(s);
                self.readable.wake_one();
                if rendezvous && block {
                    self.await_taken(ticket);
                }
                return Ok(());
            }
            if !block {
                return Err(TrySendError::Full(value.take().expect("value")));
            }
            self.writable.sleep(s, None);
        }
    }

    /// A rendezvous sender's wait until the receiver has taken value number `ticket`
    /// (or is gone: the value went with it).
    fn await_taken(&self, ticket: u64) {
        loop {
            let s = self.state.lock();
            if s.taken >= ticket || !s.receiver {
                return;
            }
            self.writable.sleep(s, None);
        }
    }

    #[track_caller]
    fn recv(&self, deadline: Option<Instant>, block: bool) -> Result<T, RecvTimeoutError> {
        if block {
            preempt::might_sleep();
        }
        loop {
            let mut s = self.state.lock();
            if let Some(v) = s.queue.pop_front() {
                s.taken += 1;
                let bound = s.bound;
                drop(s);
                match bound {
                    // Rendezvous senders wait for their own ticket: wake them all.
                    Some(0) => self.writable.wake_all(),
                    Some(_) => self.writable.wake_one(),
                    None => {}
                }
                return Ok(v);
            }
            if s.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            if !block || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            // A timeout loops once more: a value may have come with the deadline.
            self.readable.sleep(s, deadline);
        }
    }
}

/// Creates an unbounded channel, like [`std::sync::mpsc::channel`].
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let c = Chan::new(None);
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// Creates a channel holding at most `bound` values, like
/// [`std::sync::mpsc::sync_channel`]; `send` blocks while it is full. A bound of 0 is
/// a rendezvous: `send` returns once the receiver has taken the value (or has been
/// dropped, taking the value with it), and `try_send` succeeds only while a receiver
/// waits in `recv`.
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let c = Chan::new(Some(bound));
    (SyncSender { chan: c.clone() }, Receiver { chan: c })
}

/// The sending half of [`channel`]; clone it for more senders.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends a value; never blocks.
    ///
    /// # Errors
    /// If the receiver is gone; the value is returned.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value, false).map_err(|e| match e {
            TrySendError::Disconnected(v) | TrySendError::Full(v) => SendError(v),
        })
    }
}

/// The sending half of [`sync_channel`]; clone it for more senders.
pub struct SyncSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> SyncSender<T> {
    /// Sends a value, blocking while the channel is full.
    ///
    /// # Errors
    /// If the receiver is gone; the value is returned.
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value, true).map_err(|e| match e {
            TrySendError::Disconnected(v) | TrySendError::Full(v) => SendError(v),
        })
    }

    /// Sends a value if there is room, without blocking.
    ///
    /// # Errors
    /// `Full` or `Disconnected`, with the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.send(value, false)
    }
}

macro_rules! sender_common {
    ($t:ident) => {
        impl<T> Clone for $t<T> {
            fn clone(&self) -> $t<T> {
                self.chan.state.lock().senders += 1;
                $t {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $t<T> {
            fn drop(&mut self) {
                let last = {
                    let mut s = self.chan.state.lock();
                    s.senders -= 1;
                    s.senders == 0
                };
                if last {
                    self.chan.readable.wake_all();
                }
            }
        }

        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    };
}

sender_common!(Sender);
sender_common!(SyncSender);

/// The receiving half of a channel.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives a value, blocking until one comes.
    ///
    /// # Errors
    /// Once every sender is gone and the channel is empty.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None, true).map_err(|_| RecvError)
    }

    /// Receives a value if one is waiting.
    ///
    /// # Errors
    /// `Empty`, or `Disconnected` once every sender is gone and the channel is empty.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.recv(None, false).map_err(|e| match e {
            RecvTimeoutError::Timeout => TryRecvError::Empty,
            RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, or `Disconnected` once every sender is gone and the channel is empty.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        self.chan.recv(deadline, true)
    }

    /// Receives a value, waiting until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`recv_timeout`](Receiver::recv_timeout).
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline), true)
    }

    /// Blocks for each value until every sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }

    /// The values waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let dropped = {
            let mut s = self.chan.state.lock();
            s.receiver = false;
            std::mem::take(&mut s.queue)
        };
        // Values are dropped outside the lock (their destructors may block).
        drop(dropped);
        self.chan.writable.wake_all();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
