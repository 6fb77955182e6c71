//! HAZARDS.md H3, the watchdog half: an OS lock held by a preempted green thread blocks
//! its whole carrier in the kernel; the stuck-carrier watchdog names the carrier, the
//! thread and the situation within a second or two instead of leaving a silent hang.

mod support;

use preempt::thread::{self, Builder};
use preempt::{Model, Runtime};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs test `test` in a child and returns the first stderr line containing `needle`
/// (within `limit`), killing the child afterwards: it is expected to hang.
fn first_line_of_hanging_child(
    test: &str,
    needle: &str,
    limit: Duration,
) -> Option<(String, Duration)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env(support::CHILD_ENV, test)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let needle = needle.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&needle) {
                let _ = tx.send((line, start.elapsed()));
                return;
            }
        }
    });
    let found = rx.recv_timeout(limit).ok();
    let _ = child.kill();
    let _ = child.wait();
    found
}

#[test]
fn a_carrier_blocked_on_a_std_mutex_is_reported() {
    const T: &str = "a_carrier_blocked_on_a_std_mutex_is_reported";
    if support::is_child(T) {
        // SAFETY: deliberately broken contract (a std Mutex shared by green threads of
        // one CPU), in a child process, to show what the watchdog says.
        let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
            .build()
            .unwrap();
        rt.block_on(|| {
            let lock = Arc::new(Mutex::new(0u64));
            let waiter_started = Arc::new(AtomicBool::new(false));
            let (l, w) = (lock.clone(), waiter_started.clone());
            let holder = Builder::new()
                .name("holder".into())
                .spawn(move || {
                    let _g = l.lock().unwrap();
                    // Spin with the lock held until preempted and the waiter has run.
                    while !w.load(SeqCst) {
                        std::hint::spin_loop();
                    }
                })
                .unwrap();
            let waiter = Builder::new()
                .name("waiter".into())
                .spawn(move || {
                    waiter_started.store(true, SeqCst);
                    *lock.lock().unwrap() += 1; // blocks the carrier in futex_wait
                })
                .unwrap();
            let _ = (holder.join(), waiter.join());
        });
        unreachable!("the carrier is deadlocked");
    }
    let (line, after) = first_line_of_hanging_child(T, "preempt watchdog", Duration::from_secs(10))
        .expect("the watchdog said nothing within 10 s");
    assert!(
        after < Duration::from_secs(5),
        "reported only after {after:?}"
    );
    assert!(line.contains("cpu0 (carrier tid"), "{line}");
    assert!(line.contains("green thread 'waiter'"), "{line}");
    assert!(line.contains("blocked in the kernel"), "{line}");
    assert!(line.contains("std::sync::Mutex"), "{line}");
}

#[test]
fn a_spinner_under_model_none_is_reported_as_running() {
    const T: &str = "a_spinner_under_model_none_is_reported_as_running";
    if support::is_child(T) {
        let rt = Runtime::builder().build().unwrap();
        rt.block_on(|| {
            let other = thread::spawn(|| ());
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(1500) {
                std::hint::spin_loop();
            }
            other.join().unwrap();
        });
        std::thread::sleep(Duration::from_secs(30)); // wait to be killed
        return;
    }
    let (line, _) = first_line_of_hanging_child(T, "preempt watchdog", Duration::from_secs(10))
        .expect("the watchdog said nothing within 10 s");
    assert!(line.contains("green thread 'main'"), "{line}");
    assert!(
        line.contains("running without reaching a preemption point"),
        "{line}"
    );
}

/// H3's other half: the same program with `preempt::sync::Mutex` completes, since the
/// waiter sleeps as a green thread (lending the holder its priority) instead of
/// blocking its carrier in the kernel.
#[test]
fn the_same_program_completes_with_preempt_sync_mutex() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    let t0 = Instant::now();
    let total = rt.block_on(|| {
        let lock = Arc::new(preempt::sync::Mutex::new(0u64));
        let waiter_started = Arc::new(AtomicBool::new(false));
        let (l, w) = (lock.clone(), waiter_started.clone());
        let holder = Builder::new()
            .name("holder".into())
            .spawn(move || {
                let mut g = l.lock().unwrap();
                while !w.load(SeqCst) {
                    std::hint::spin_loop();
                }
                *g += 1;
            })
            .unwrap();
        let l = lock.clone();
        let waiter = Builder::new()
            .name("waiter".into())
            .spawn(move || {
                waiter_started.store(true, SeqCst);
                *l.lock().unwrap() += 1;
            })
            .unwrap();
        holder.join().unwrap();
        waiter.join().unwrap();
        *lock.lock().unwrap()
    });
    assert_eq!(total, 2);
    assert!(t0.elapsed() < Duration::from_secs(5));
}
