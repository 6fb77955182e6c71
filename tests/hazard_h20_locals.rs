//! HAZARDS.md H20: `thread_local!` is shared by every green thread of a carrier. The
//! safe alternatives: `task_local!` (one value per green thread), and per-CPU access
//! under `preempt::disable()`.

mod support;

use preempt::{Runtime, thread};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

preempt::task_local! {
    static MINE: Cell<u64> = Cell::new(0);
    static DROPS_ON_EXIT: DropCounter = DropCounter;
}

thread_local! {
    static PER_CPU: Cell<u64> = const { Cell::new(0) };
}

static DROPPED: AtomicU64 = AtomicU64::new(0);
struct DropCounter;
impl Drop for DropCounter {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Relaxed);
    }
}

const THREADS: u64 = 8;
const INCREMENTS: u64 = 100_000;

/// Widens the gap between a read and its write, where a preemption would lose the
/// update if the value were shared.
fn window() {
    for _ in 0..8 {
        std::hint::spin_loop();
    }
}

#[test]
fn each_green_thread_sees_only_its_own_task_local() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0: every tick switches, the densest preemption.
    let rt = support::full_rr(Duration::from_micros(100));
    let counts = rt.block_on(|| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                thread::spawn(|| {
                    for _ in 0..INCREMENTS {
                        // A non-atomic read-modify-write: a lost update would show if the
                        // value were shared with a thread that preempted us in between.
                        MINE.with(|c| {
                            let v = c.get();
                            window();
                            c.set(v + 1)
                        });
                    }
                    MINE.with(Cell::get)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(counts, vec![INCREMENTS; THREADS as usize]);
    assert!(rt.stats().preemptions >= 100, "{:?}", rt.stats());
}

#[test]
fn per_cpu_data_under_disable_loses_no_update() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0: every tick tries to switch, inside sections too.
    let rt = support::full_rr(Duration::from_micros(100));
    let total = rt.block_on(|| {
        PER_CPU.with(|c| c.set(0));
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                thread::spawn(|| {
                    for _ in 0..INCREMENTS {
                        let _g = preempt::disable();
                        PER_CPU.with(|c| {
                            let v = c.get();
                            window();
                            c.set(v + 1)
                        });
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        PER_CPU.with(Cell::get)
    });
    assert_eq!(total, THREADS * INCREMENTS);
    assert!(rt.stats().deferred_atomic >= 100, "{:?}", rt.stats());
}

#[test]
fn task_locals_are_dropped_when_their_thread_exits() {
    let _l = support::runtime_lock();
    let rt = Runtime::builder().build().unwrap();
    let before = DROPPED.load(Relaxed);
    rt.block_on(|| {
        let hs: Vec<_> = (0..5)
            .map(|_| thread::spawn(|| DROPS_ON_EXIT.with(|_| ())))
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        // Never touched here: nothing to drop for this thread.
        assert!(MINE.try_with(Cell::get).is_some());
    });
    assert_eq!(DROPPED.load(Relaxed) - before, 5);
    assert!(MINE.try_with(Cell::get).is_none(), "not a green thread");
}
