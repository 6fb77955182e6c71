//! The misuse list of HAZARDS.md that applies to the foundation: each gets a clear
//! error or panic message, never a hang or a crash.

mod support;

use preempt::thread::{self, Builder};
use preempt::{Model, Priority, Runtime};
use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn panic_message(r: std::thread::Result<impl Sized>) -> String {
    let Err(p) = r else {
        panic!("expected a panic")
    };
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn bad_builder_values_are_errors() {
    let _l = support::runtime_lock();
    let cases: [(preempt::Builder, ErrorKind, &str); 8] = [
        (
            Runtime::builder().cpus(0),
            ErrorKind::InvalidInput,
            "at least one CPU",
        ),
        (
            Runtime::builder().cpus(2),
            ErrorKind::Unsupported,
            "only one CPU",
        ),
        (
            Runtime::builder().tick(Duration::from_micros(10)),
            ErrorKind::InvalidInput,
            "out of range",
        ),
        (
            Runtime::builder().tick(Duration::from_secs(1)),
            ErrorKind::InvalidInput,
            "out of range",
        ),
        (
            Runtime::builder().stack_size(4096),
            ErrorKind::InvalidInput,
            "below the minimum",
        ),
        (
            Runtime::builder().name("a\0b"),
            ErrorKind::InvalidInput,
            "NUL",
        ),
        (
            Runtime::builder().model(Model::Full),
            ErrorKind::InvalidInput,
            "Builder::preemptive",
        ),
        (
            Runtime::builder().model(Model::Rt),
            ErrorKind::InvalidInput,
            "Builder::preemptive",
        ),
    ];
    for (builder, kind, text) in cases {
        let e = builder.build().unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(text), "{e:?} lacks {text:?}");
    }
    // Valid edge values are accepted.
    drop(Runtime::builder().tick(preempt::MIN_TICK).build().unwrap());
    drop(Runtime::builder().tick(preempt::MAX_TICK).build().unwrap());
    let min = preempt::min_stack_size();
    drop(Runtime::builder().stack_size(min).build().unwrap());
}

#[test]
fn priority_out_of_range_panics() {
    assert_eq!(Priority::try_new(100), None);
    assert_eq!(Priority::try_new(99), Some(Priority::MAX));
    let msg = panic_message(catch_unwind(|| Priority::new(100)));
    assert!(msg.contains("out of range"), "{msg}");
}

#[test]
fn second_live_runtime_is_an_error() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let e = Runtime::builder().build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceBusy);
    assert!(e.to_string().contains("already live"), "{e}");
    // From inside a green thread too.
    let inner = rt.block_on(|| Runtime::builder().build().map(drop).unwrap_err());
    assert_eq!(inner.kind(), ErrorKind::ResourceBusy);
    drop(rt);
    // Once dropped, a new one can be built.
    drop(support::runtime());
}

#[test]
fn thread_builder_errors() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let min = preempt::min_stack_size();
        let e = Builder::new()
            .stack_size(min - 4096)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains(&format!("minimum of {min} bytes")),
            "{e}"
        );
        // Rounded up to pages, a size just above the minimum is fine.
        Builder::new()
            .stack_size(min - 1)
            .spawn(|| ())
            .unwrap()
            .join()
            .unwrap();
        let e = Builder::new().name("x\0y".into()).spawn(|| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        // A closure too large for its stack is refused, not written past the end. (Built
        // on a thread with a large stack: the array must live somewhere first.)
        let e = Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                let big = [1u8; 96 << 10];
                Builder::new().spawn(move || big.len()).unwrap_err()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("does not fit"), "{e}");
    });
}

#[test]
fn joining_yourself_is_a_deadlock_error() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    // The thread receives its own handle and tries to join it.
    let verdict = rt.block_on(|| {
        let cell: Arc<Mutex<Option<thread::JoinHandle<()>>>> = Arc::new(Mutex::new(None));
        let out = Arc::new(Mutex::new(String::new()));
        let (c, o) = (cell.clone(), out.clone());
        let h = thread::spawn(move || {
            let me = c.lock().unwrap().take().unwrap();
            *o.lock().unwrap() = panic_message(catch_unwind(AssertUnwindSafe(|| me.join())));
        });
        *cell.lock().unwrap() = Some(h);
        // Wait until the thread has written its verdict.
        while out.lock().unwrap().is_empty() {
            thread::yield_now();
        }
        out.lock().unwrap().clone()
    });
    assert!(verdict.contains("tried to join itself"), "{verdict}");
    assert!(verdict.contains("deadlock"), "{verdict}");
}

#[test]
fn runtime_calls_outside_a_runtime_panic_clearly() {
    type Check = Box<dyn Fn() + std::panic::RefUnwindSafe>;
    let checks: [(&str, Check); 7] = [
        ("spawn", Box::new(|| drop(thread::spawn(|| ())))),
        ("yield_now", Box::new(thread::yield_now)),
        (
            "sleep",
            Box::new(|| thread::sleep(Duration::from_millis(1))),
        ),
        ("park", Box::new(thread::park)),
        ("current", Box::new(|| drop(thread::current()))),
        ("scope", Box::new(|| thread::scope(|_| ()))),
        (
            "Builder::spawn",
            Box::new(|| drop(Builder::new().spawn(|| ()))),
        ),
    ];
    for (what, f) in checks {
        let msg = panic_message(catch_unwind(&*f));
        assert!(
            msg.contains("must be called from a preempt runtime"),
            "{what}: {msg}"
        );
    }
    assert!(thread::try_current().is_none());
}

#[test]
fn block_on_inside_a_green_thread_panics() {
    let _l = support::runtime_lock();
    let rt = Arc::new(support::runtime());
    let r = rt.clone();
    let msg =
        rt.block_on(move || panic_message(catch_unwind(AssertUnwindSafe(|| r.block_on(|| ())))));
    assert!(msg.contains("called from a green thread"), "{msg}");
    drop(Arc::try_unwrap(rt).unwrap());
}

#[test]
fn dropping_a_runtime_with_live_threads_aborts_after_the_timeout() {
    const T: &str = "dropping_a_runtime_with_live_threads_aborts_after_the_timeout";
    if support::is_child(T) {
        let rt = Runtime::builder()
            .shutdown_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        // Parks forever: nobody will unpark it.
        drop(rt.spawn(|| {
            loop {
                thread::park();
            }
        }));
        drop(rt);
        unreachable!("drop should have aborted");
    }
    let out = support::run_child(T);
    let err = support::stderr(&out);
    assert_eq!(support::signal(&out), Some(libc::SIGABRT), "{err}");
    assert!(
        err.contains("runtime dropped with 1 green thread(s) still running"),
        "{err}"
    );
}

#[test]
fn sleeping_in_atomic_context_is_reported() {
    const T: &str = "sleeping_in_atomic_context_is_reported";
    if support::is_child(T) {
        let rt = support::runtime();
        let r = rt.block_on(|| {
            thread::Builder::new()
                .name("atomic-sleeper".into())
                .priority(Priority::new(5))
                .spawn(|| {
                    let _g = preempt::disable();
                    thread::sleep(Duration::from_millis(1));
                })
                .unwrap()
                .join()
        });
        assert!(r.is_err());
        // The runtime is still usable: the guard was released while unwinding.
        assert_eq!(preempt::count(), 0);
        assert_eq!(rt.block_on(preempt::count), 0);
        return;
    }
    let out = support::run_child(T);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("BUG: sleeping function called from invalid context at tests/misuse.rs:"),
        "{err}"
    );
    assert!(
        err.contains("thread: 'atomic-sleeper', priority: 5"),
        "{err}"
    );
}

#[test]
fn sleeping_in_hardirq_context_is_reported_and_aborts() {
    const T: &str = "sleeping_in_hardirq_context_is_reported_and_aborts";
    if support::is_child(T) {
        let rt = support::runtime();
        rt.block_on(|| {
            thread::Builder::new()
                .name("irq-sleeper".into())
                .spawn(|| {
                    preempt::irq::__run_in_hardirq(|| {
                        assert!(preempt::in_interrupt());
                        thread::sleep(Duration::from_millis(1));
                    })
                })
                .unwrap()
                .join()
        })
        .ok();
        unreachable!("nothing may unwind out of an interrupt: the child must abort");
    }
    let out = support::run_child(T);
    let err = support::stderr(&out);
    assert_eq!(support::signal(&out), Some(libc::SIGABRT), "{err}");
    assert!(
        err.contains("BUG: sleeping function called from invalid context at tests/misuse.rs:"),
        "{err}"
    );
    assert!(err.contains("in_interrupt(): 1"), "{err}");
    assert!(err.contains("thread: 'irq-sleeper'"), "{err}");
    assert!(
        err.contains("cannot unwind out of interrupt context; aborting"),
        "{err}"
    );
    assert!(!err.contains("unreachable"), "{err}");
}

#[test]
fn stack_mapping_failure_names_the_limit() {
    const T: &str = "stack_mapping_failure_names_the_limit";
    if support::is_child(T) {
        let rt = support::runtime();
        let msg = rt.block_on(|| {
            let mut handles = Vec::with_capacity(1 << 20);
            // Cap the address space a little above what is mapped now, so stack mappings
            // start failing after a few hundred threads (as they would at
            // vm.max_map_count, without touching the machine-wide setting).
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let vsz: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
            let cap = vsz * 4096 + (48 << 20);
            let lim = libc::rlimit {
                rlim_cur: cap,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: setrlimit with a valid struct; this is a child process.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
            let err = loop {
                match Builder::new().spawn(|| ()) {
                    Ok(h) => handles.push(h),
                    Err(e) => break e,
                }
                assert!(handles.len() < 1 << 20, "spawning never failed");
            };
            let spawned = handles.len();
            for h in handles {
                h.join().unwrap();
            }
            assert!(spawned > 10, "only {spawned} threads before failing");
            err.to_string()
        });
        println!("SPAWN ERROR: {msg}");
        return;
    }
    let out = support::run_child(T);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", support::stderr(&out));
    let line = stdout
        .lines()
        .find(|l| l.contains("SPAWN ERROR: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stdout}"));
    assert!(line.contains("vm.max_map_count"), "{line}");
    assert!(line.contains("sysctl -w vm.max_map_count="), "{line}");
    assert!(line.contains("64 KiB green-thread stack"), "{line}");
}
