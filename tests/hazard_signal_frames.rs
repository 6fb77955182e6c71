//! HAZARDS.md H9, H10 and H12 under `Model::Full` with fast ticks: signal frames fit the
//! minimum stack, the vDSO's stack probing is safe there, and no sleep is cut short by
//! the tick (`EINTR`).

mod support;

use preempt::thread::{self, Builder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[test]
fn h9_h12_minimum_stacks_survive_preemption_and_the_vdso() {
    let _l = support::runtime_lock();
    assert!(!preempt::irq::handler_uses_altstack());
    let min = preempt::min_stack_size();
    // The minimum leaves room for the kernel's signal frame on this CPU.
    assert!(min >= 16 << 10, "minimum {min}");
    // Round-robin at priority 0: every tick preempts, the most signal frames.
    let rt = support::full_rr(preempt::MIN_TICK);
    let clock_reads = rt.block_on(move || {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                Builder::new()
                    .stack_size(min)
                    .spawn(move || {
                        let t0 = Instant::now();
                        let mut reads = 0u64;
                        if i % 2 == 0 {
                            // H12: the vDSO's clock_gettime, over and over.
                            while t0.elapsed() < Duration::from_millis(300) {
                                reads += 1;
                            }
                        } else {
                            // A plain spinner: preempted anywhere in its own code.
                            let mut x = 0u64;
                            while t0.elapsed() < Duration::from_millis(300) {
                                for k in 0..1000 {
                                    x = x.wrapping_mul(31).wrapping_add(k);
                                }
                                std::hint::black_box(x);
                            }
                        }
                        reads
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert!(clock_reads > 0);
    let s = rt.stats();
    // The clock readers were preempted too: the vDSO and libc's clock_gettime wrapper
    // are on the allowlist of pure routines, so they run on the minimum stack with the
    // preemption stub's frame below theirs.
    assert!(s.preemptions >= 1000, "{s:?}");
}

#[test]
fn h10_sleeps_are_never_cut_short_by_the_tick() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(100));
    rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // Keeps the CPU busy so the tick runs throughout.
        let spinner = thread::spawn(move || {
            while !s.load(Relaxed) {
                std::hint::spin_loop();
            }
        });
        for i in 0..200u64 {
            let asked = Duration::from_micros(50 + (i * 37) % 900);
            let t0 = Instant::now();
            thread::sleep(asked);
            assert!(t0.elapsed() >= asked, "sleep {i} returned early");
            let t0 = Instant::now();
            thread::park_timeout(asked);
            // park_timeout may return early only when unparked; nobody unparks us.
            assert!(t0.elapsed() >= asked, "park_timeout {i} returned early");
        }
        stop.store(true, Relaxed);
        spinner.join().unwrap();
    });
    // And with the CPU idle between sleeps (the idle wait, tick stopped).
    rt.block_on(|| {
        for i in 0..100u64 {
            let asked = Duration::from_micros(20 + (i * 53) % 700);
            let t0 = Instant::now();
            thread::sleep(asked);
            assert!(t0.elapsed() >= asked);
        }
    });
}

/// How deep a green thread's stack has ever been used, in bytes: the distance from its
/// top (near `top`, an address in its first frame) to the lowest byte that is not zero.
/// Only for a stack mapped fresh for the thread (a size the pool does not keep).
fn stack_depth_used(top: usize, size: usize) -> usize {
    // The first frame lies within a few KiB of the stack's top: start well inside it.
    let bottom = top - size + (16 << 10);
    let lowest = (bottom..top)
        // SAFETY: [bottom, top) lies inside this thread's mapped stack, below its live
        // frames; nothing else writes there while it runs this loop.
        .find(|&a| unsafe { std::ptr::read_volatile(a as *const u8) } != 0)
        .unwrap_or(top);
    top - lowest
}

/// H9: the timer interrupt never builds one preemption's frames on top of another's. A
/// tick that lands while the preemption stub returns to the interrupted code (after the
/// scheduler resumed the thread) only defers: redirecting it would stack a second stub
/// frame (5.4 KiB) on the first, and a thread that met such ticks repeatedly overflowed
/// its stack. Here a thread that sleeps 10 µs at a time preempts four hogs on each
/// wakeup, and its timer often fires just as a hog is resumed: the hogs must need no
/// more than the minimum stack (when such ticks redirected, debug runs measured up to
/// 31 KiB, past the 16 KiB minimum of the time in 3 runs of 4; now ~10 KiB).
#[test]
fn h9_preemption_frames_never_stack_up() {
    let _l = support::runtime_lock();
    let min = preempt::min_stack_size();
    const SIZE: usize = 256 << 10; // not the pool's size: a fresh, zeroed mapping
    let rt = support::full_fair(Duration::from_millis(1));
    let depths = rt.block_on(move || {
        let sleeper = thread::spawn(|| {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(500) {
                thread::sleep(Duration::from_micros(10));
                let t1 = Instant::now();
                while t1.elapsed() < Duration::from_micros(10) {
                    std::hint::spin_loop();
                }
            }
        });
        let hs: Vec<_> = (0..4)
            .map(|_| {
                Builder::new()
                    .stack_size(SIZE)
                    .spawn(move || {
                        let marker = 0u8; // a local: on this thread's stack
                        let top = std::hint::black_box(&marker) as *const u8 as usize;
                        let t0 = Instant::now();
                        let mut x = 0u64;
                        while t0.elapsed() < Duration::from_millis(500) {
                            for k in 0..1000 {
                                x = x.wrapping_mul(31).wrapping_add(k);
                            }
                            std::hint::black_box(x);
                        }
                        stack_depth_used(top, SIZE)
                    })
                    .unwrap()
            })
            .collect();
        let depths = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>();
        sleeper.join().unwrap();
        depths
    });
    let s = rt.stats();
    // (~900 in half a second here.)
    assert!(s.preemptions >= 300, "{s:?}");
    eprintln!("stack used by preempted hogs: {depths:?} bytes (minimum stack {min})");
    for d in depths {
        assert!(
            d < min,
            "a preempted hog used {d} bytes of stack, minimum {min}"
        );
    }
}
