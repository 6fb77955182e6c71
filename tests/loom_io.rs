//! Loom models of the epoll device's wait protocol (`runtime/io/reactor.rs`): a waiter
//! that snapshots, finds the kernel's buffer empty, installs itself and sleeps, against
//! the softirq that records an event and wakes whoever is installed (invariant 5: no
//! lost wakeup); a second waiter in the same direction; a close racing with a waiter.
//! Loom threads stand in for the green thread and the softirq, loom's park for the
//! scheduler's sleep.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_io`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use preempt::__loom::{IoWaker, READ, ScheduledIo};

/// A loom thread as a waker.
struct Parked(loom::thread::Thread);

impl IoWaker for Parked {
    fn into_raw(self) -> *mut () {
        Box::into_raw(Box::new(self)).cast()
    }
    unsafe fn from_raw(p: *mut ()) -> Self {
        // SAFETY: made by into_raw above.
        *unsafe { Box::from_raw(p.cast::<Parked>()) }
    }
    fn wake(self) {
        self.0.unpark();
    }
}

type Io = ScheduledIo<Parked>;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// The waiter's side of a read: returns once `data` was seen (or the io closed).
fn wait_for(io: &Io, data: &AtomicBool) -> bool {
    loop {
        let snap = io.snapshot(READ);
        if data.load(SeqCst) {
            return true; // the "read" succeeded
        }
        if io.is_closed() {
            return false;
        }
        io.arm(READ, Parked(loom::thread::current())).unwrap();
        // block_current's cancel step: re-check after publishing ourselves.
        while !io.ready_since(READ, snap) {
            loom::thread::park();
        }
        io.disarm(READ);
    }
}

#[test]
fn an_event_after_the_empty_read_is_never_lost() {
    model(|| {
        let io = Arc::new(Io::new());
        let data = Arc::new(AtomicBool::new(false));
        let (i2, d2) = (io.clone(), data.clone());
        let softirq = loom::thread::spawn(move || {
            d2.store(true, SeqCst); // the kernel queues data...
            if let Some(w) = i2.set_ready(READ) {
                w.wake(); // ...and the softirq reports the edge
            }
        });
        assert!(wait_for(&io, &data));
        softirq.join().unwrap();
    });
}

#[test]
fn a_close_wakes_the_waiter() {
    model(|| {
        let io = Arc::new(Io::new());
        let data = Arc::new(AtomicBool::new(false));
        let i2 = io.clone();
        let closer = loom::thread::spawn(move || i2.close());
        assert!(!wait_for(&io, &data));
        closer.join().unwrap();
    });
}

#[test]
fn a_second_waiter_in_one_direction_is_refused() {
    model(|| {
        let io = Io::new();
        io.arm(READ, Parked(loom::thread::current())).unwrap();
        assert!(io.arm(READ, Parked(loom::thread::current())).is_err());
        io.disarm(READ);
        assert!(io.arm(READ, Parked(loom::thread::current())).is_ok());
    });
}
