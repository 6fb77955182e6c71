//! HAZARDS.md H1: allocators are not re-entrant per OS thread. 64 green threads on one
//! CPU allocate, free and format under a fast tick; nothing hangs, no data is corrupted,
//! and the deferral counters show why: ticks inside libc's `malloc` called directly (as C
//! code or a `-sys` crate would) are deferred by the PC check, ticks inside this binary's
//! global allocator by `NoPreempt`.

mod support;

use preempt::alloc::NoPreempt;
use preempt::{Model, Runtime, thread};
use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: NoPreempt<System> = NoPreempt(System);

#[test]
fn sixty_four_threads_allocate_under_a_fast_tick() {
    let _l = support::runtime_lock();
    // SAFETY: the threads share only atomics; the allocator is wrapped.
    // Round-robin at priority 0: every tick switches, the densest preemption.
    let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
        .tick(Duration::from_micros(100))
        .fair(false)
        .build()
        .unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let p = progress.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let worker = std::thread::spawn(move || {
        let bad = rt.block_on(move || {
            let hs: Vec<_> = (0..64u64)
                .map(|t| {
                    let p = p.clone();
                    thread::spawn(move || {
                        let t0 = Instant::now();
                        let mut bad = 0u64;
                        let mut i = 0u64;
                        while t0.elapsed() < Duration::from_millis(800) {
                            let size = 16 << (i % 13); // 16 B ..= 64 KiB
                            let fill = (t * 31 + i) as u8;
                            let v = vec![fill; size];
                            let s = format!("{t}:{i}:{}", v.len());
                            let mut kept: Vec<Box<[u8]>> = Vec::new();
                            for k in 0..4 {
                                kept.push(vec![fill ^ k; 64 + k as usize * 100].into());
                            }
                            // Checksums: every byte still what this thread wrote.
                            bad += v.iter().filter(|&&b| b != fill).count() as u64;
                            for (k, b) in kept.iter().enumerate() {
                                bad += b.iter().filter(|&&x| x != fill ^ k as u8).count() as u64;
                            }
                            if s != format!("{t}:{i}:{size}") {
                                bad += 1;
                            }
                            // Past the wrapper: libc's own allocator, unprotected but
                            // for the PC check — `realloc` included, which copies with
                            // `memcpy` under the arena's lock, where the check must
                            // defer although `memcpy` itself is preemptible.
                            // SAFETY: blocks from malloc/realloc, checked for null,
                            // written and read within their length, freed once.
                            unsafe {
                                let mut p = libc::malloc(16).cast::<u8>();
                                let mut n = 16;
                                for k in 0..64usize {
                                    assert!(!p.is_null());
                                    std::ptr::write_bytes(p, fill, n);
                                    // Another block after it, so that growing copies.
                                    let q = libc::malloc(16 << (k % 13));
                                    n = if n >= 96 << 10 { 16 } else { n * 2 };
                                    p = libc::realloc(p.cast(), n).cast();
                                    bad += u64::from(!p.is_null() && *p != fill);
                                    libc::free(q);
                                }
                                libc::free(p.cast());
                            }
                            i += 1;
                            p.fetch_add(1, Relaxed);
                        }
                        bad
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        d.store(true, Relaxed);
        (bad, rt.stats())
    });
    support::watchdog(
        Duration::from_secs(60),
        Duration::from_secs(5),
        || progress.load(Relaxed),
        || done.load(Relaxed),
    );
    let (bad, s) = worker.join().unwrap();
    assert_eq!(bad, 0, "corrupted data");
    assert!(s.preemptions > 100, "{s:?}");
    assert!(
        s.deferred_pc > 0,
        "no tick landed in libc's allocator: {s:?}"
    );
    assert!(
        s.deferred_atomic > 0,
        "no tick landed in the wrapped allocator: {s:?}"
    );
}
