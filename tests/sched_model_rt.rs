//! `Model::Rt`: what it adds to `Full`. A `SpinLock` holder is preemptible (under `Full`
//! the same section holds every other thread off), and the epoll device's work runs in
//! its priority-50 thread (under `Full` it preempts any thread).
//!
//! Every runtime here keeps the `preemptive` contract: the green threads share only
//! atomics and the runtime's own locks.

mod support;

use preempt::sync::SpinLock;
use preempt::{Model, Priority, thread};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use support::spin;

/// A priority-0 thread holds a `SpinLock` for 30 ms; a priority-10 thread sleeps 2 ms
/// and then looks, and takes the lock (blocking under `Rt`, boosting the holder).
/// Returns whether the lock was still held when it ran, and its lateness.
fn holder_vs_sleeper(rt: &preempt::Runtime) -> (bool, Duration) {
    rt.block_on(|| {
        let lock = Arc::new(SpinLock::new(0u32));
        let held = Arc::new(AtomicBool::new(false));
        let (l, h) = (lock.clone(), held.clone());
        // The sleeper goes first (it outranks main and blocks in its sleep at once).
        let sleeper = thread::Builder::new()
            .priority(Priority::new(10))
            .spawn(move || {
                let due = Instant::now() + Duration::from_millis(2);
                thread::sleep_until(due);
                let late = due.elapsed();
                let was_held = h.load(SeqCst);
                *l.lock() += 1; // under Rt: sleeps, boosting the holder
                (was_held, late)
            })
            .unwrap();
        let (l, h) = (lock.clone(), held.clone());
        let holder = thread::spawn(move || {
            let mut g = l.lock();
            h.store(true, SeqCst);
            spin(Duration::from_millis(30));
            *g += 1;
            h.store(false, SeqCst);
        });
        let r = sleeper.join().unwrap();
        holder.join().unwrap();
        assert_eq!(*lock.lock(), 2);
        r
    })
}

#[test]
fn an_rt_spinlock_holder_is_preempted_a_full_one_is_not() {
    let _l = support::runtime_lock();
    let rt = support::rt(Duration::from_millis(1));
    assert_eq!(rt.model(), Model::Rt);
    let (held, late) = holder_vs_sleeper(&rt);
    assert!(
        held,
        "under Rt the sleeper ran only after the section ({late:?} late)"
    );
    assert!(
        late < Duration::from_millis(5),
        "under Rt the sleeper woke {late:?} late"
    );
    drop(rt);

    let rt = support::full(Duration::from_millis(1));
    let (held, late) = holder_vs_sleeper(&rt);
    assert!(
        !held,
        "under Full the holder was preempted inside its section"
    );
    assert!(
        late > Duration::from_millis(20),
        "woke {late:?} late under Full"
    );
}

/// A priority-70 thread spins while data arrives for a priority-0 reader. Returns the
/// softirq passes the CPU ran from just before the data was written to the end of the
/// spin.
fn passes_during_a_high_priority_spin(rt: &Arc<preempt::Runtime>) -> u64 {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let rt2 = rt.clone();
    let written = Arc::new(AtomicBool::new(false));
    let spinning = Arc::new(AtomicBool::new(false));
    let (w, s) = (written.clone(), spinning.clone());
    let writer = std::thread::spawn(move || {
        b.write_all(b"w").unwrap();
        while !s.load(SeqCst) {
            std::hint::spin_loop();
        }
        b.write_all(b"ping").unwrap();
        w.store(true, SeqCst);
    });
    let passes = rt.block_on(move || {
        let mut a = preempt::os::unix::net::UnixStream::from_std(a).unwrap();
        let warm = Arc::new(AtomicBool::new(false));
        let w = warm.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4];
            a.read_exact(&mut buf[..1]).unwrap();
            w.store(true, SeqCst);
            a.read_exact(&mut buf).unwrap();
            buf
        });
        while !warm.load(SeqCst) {
            thread::yield_now();
        }
        let hi = thread::Builder::new()
            .priority(Priority::new(70))
            .spawn(move || {
                // Counted from before the data is written: its interrupt can come
                // before this thread sees `written` (the writer delayed between its
                // write and the store).
                let p0 = rt2.stats().net_softirq_passes;
                spinning.store(true, SeqCst);
                while !written.load(SeqCst) {
                    std::hint::spin_loop();
                }
                spin(Duration::from_millis(20));
                rt2.stats().net_softirq_passes - p0
            })
            .unwrap();
        let passes = hi.join().unwrap();
        assert_eq!(&reader.join().unwrap(), b"ping");
        passes
    });
    writer.join().unwrap();
    passes
}

#[test]
fn rt_device_work_waits_for_threads_above_its_irq_thread() {
    let _l = support::runtime_lock();
    let rt = Arc::new(support::rt(Duration::from_millis(1)));
    let passes = passes_during_a_high_priority_spin(&rt);
    assert_eq!(
        passes, 0,
        "under Rt the device preempted a priority-70 thread {passes} times"
    );
    drop(rt);

    let rt = Arc::new(support::full(Duration::from_millis(1)));
    let passes = passes_during_a_high_priority_spin(&rt);
    assert!(
        passes > 0,
        "under Full the device interrupt ran no pass during the spin"
    );
}
