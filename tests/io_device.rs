//! The epoll device at work beside CPU-bound threads: the device interrupt, the
//! blocking pool, and fork+exec from a green thread (HAZARDS.md H13).
//!
//! Tests under `Model::Full` keep the `preemptive` contract: their green threads share
//! only atomics and the runtime's own sockets.

mod support;

use preempt::net::{TcpListener, TcpStream, UdpSocket};
use preempt::thread::{self, Builder};
use preempt::{Priority, task};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

/// A priority-50 thread that receives `samples` datagrams, each the ns since `epoch` it
/// was sent at, and returns how late each reached it.
fn timestamp_reader(
    sock: UdpSocket,
    samples: usize,
    epoch: Instant,
) -> thread::JoinHandle<Vec<u64>> {
    Builder::new()
        .priority(Priority::new(50))
        .spawn(move || {
            let mut lat = Vec::with_capacity(samples);
            let mut buf = [0; 8];
            for _ in 0..samples {
                sock.recv(&mut buf).unwrap();
                let sent = u64::from_le_bytes(buf);
                lat.push(epoch.elapsed().as_nanos() as u64 - sent);
            }
            lat
        })
        .unwrap()
}

/// With a 100 ms tick, only the device interrupt can explain a reader that runs within
/// a millisecond of its data while a spinner holds the CPU.
#[test]
fn the_device_interrupt_preempts_a_spinner_for_a_high_priority_reader() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(100));
    const SAMPLES: usize = 150;
    let epoch = Instant::now();
    let mut lat = rt.block_on(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let spinner = thread::spawn(move || {
            while !s.load(Relaxed) {
                std::hint::spin_loop();
            }
        });
        let reader = timestamp_reader(sock, SAMPLES, epoch);
        // The sender is a plain OS thread: the load generator, paced by the kernel.
        let sender = std::thread::spawn(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..SAMPLES {
                std::thread::sleep(Duration::from_millis(2));
                let now = epoch.elapsed().as_nanos() as u64;
                s.send_to(&now.to_le_bytes(), addr).unwrap();
            }
        });
        let lat = reader.join().unwrap();
        sender.join().unwrap();
        stop.store(true, Relaxed);
        spinner.join().unwrap();
        lat
    });
    let stats = rt.stats();
    let p50 = percentile(&mut lat, 0.5);
    let p90 = percentile(&mut lat, 0.9);
    eprintln!(
        "data-to-reader latency beside a spinner, 100 ms tick: p50 {} µs, p90 {} µs; {} device interrupts",
        p50 / 1000,
        p90 / 1000,
        stats.net_interrupts
    );
    assert!(p50 < 1_000_000, "median latency {} µs", p50 / 1000);
    assert!(stats.net_interrupts > 0, "{stats:?}");
}

/// File I/O goes to the pool: the writer's thread sleeps while another keeps running.
#[test]
fn file_io_runs_on_the_pool_while_other_threads_run() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let path = std::env::temp_dir().join(format!("preempt-io-device-{}", std::process::id()));
    let (ran_meanwhile, ok) = rt.block_on(move || {
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counter.clone(), stop.clone());
        let ticker = thread::spawn(move || {
            while !s.load(Relaxed) {
                c.fetch_add(1, Relaxed);
                thread::yield_now();
            }
        });
        let data: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let before = counter.load(Relaxed);
        let mut f = preempt::fs::File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let mut back = Vec::new();
        preempt::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        let ran = counter.load(Relaxed) - before;
        std::fs::remove_file(&path).unwrap();
        stop.store(true, Relaxed);
        ticker.join().unwrap();
        (ran, back == data)
    });
    assert!(ok, "file contents differ");
    assert!(ran_meanwhile > 0, "no other thread ran during the file I/O");
}

#[test]
fn spawn_blocking_returns_values_and_panics() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        assert_eq!(task::spawn_blocking(|| 6 * 7).join().unwrap(), 42);
        let e = task::spawn_blocking(|| panic!("in the pool"))
            .join()
            .unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"in the pool"));
        assert!(preempt::fs::read_to_string("/nonexistent/preempt").is_err());
    });
}

/// H13: fork+exec of a child from a green thread under load, waited for through the
/// pool.
#[test]
fn fork_exec_from_a_green_thread_under_load_h13() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(250));
    rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let spinner = thread::spawn(move || {
            while !s.load(Relaxed) {
                std::hint::spin_loop();
            }
        });
        for _ in 0..20 {
            let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
            let status = task::spawn_blocking(move || child.wait())
                .join()
                .unwrap()
                .unwrap();
            assert!(status.success());
        }
        stop.store(true, Relaxed);
        spinner.join().unwrap();
    });
}

/// H13: using the runtime in a forked child that did not exec is a clear error.
#[test]
fn the_runtime_in_a_forked_child_is_a_clear_error_h13() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let (signal, report) = rt.block_on(|| {
        let (r, w) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: the child only redirects stderr and calls into the runtime, which
        // must abort with its report before touching anything else.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: dup2 onto stderr in the child, then yield: the report and abort.
            unsafe { libc::dup2(w.as_raw_fd(), 2) };
            thread::yield_now();
            // SAFETY: not reached if the runtime refused; leave without unwinding.
            unsafe { libc::_exit(0) };
        }
        drop(w);
        let mut report = String::new();
        preempt::io::Fd::new(r)
            .unwrap()
            .read_to_string(&mut report)
            .unwrap();
        let status = task::spawn_blocking(move || {
            let mut st = 0;
            // SAFETY: waitpid on our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            st
        })
        .join()
        .unwrap();
        (
            libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            report,
        )
    });
    assert_eq!(signal, Some(libc::SIGABRT), "report: {report}");
    assert!(report.contains("child of a fork()"), "report: {report}");
}

/// The deferred poll borrows the clock-event device for its one-shot: a sleeper's
/// timer on a stopped (tickless) device must still fire after the poll ends. A
/// watchdog thread that sees no progress for half a second stops the spinner, which
/// lets the idle CPU honour the timer, and the test fails on that rescue.
#[test]
fn a_sleepers_timer_survives_the_deferred_poll() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    const ROUNDS: u64 = 40;
    let progress = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rescued = Arc::new(AtomicBool::new(false));
    let (p, s, r) = (progress.clone(), stop.clone(), rescued.clone());
    let watchdog = std::thread::spawn(move || {
        let (mut last, mut since) = (0, Instant::now());
        while p.load(Relaxed) < ROUNDS {
            std::thread::sleep(Duration::from_millis(10));
            let now = p.load(Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() > Duration::from_millis(500) && !s.load(Relaxed) {
                r.store(true, Relaxed);
                s.store(true, Relaxed);
            }
        }
    });
    let (p, s) = (progress.clone(), stop.clone());
    let slept = rt.block_on(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let s2 = s.clone();
        let spinner = thread::spawn(move || {
            while !s2.load(Relaxed) {
                std::hint::spin_loop();
            }
        });
        let reader = Builder::new()
            .priority(Priority::new(50))
            .spawn(move || {
                for _ in 0..ROUNDS {
                    sock.recv(&mut [0; 8]).unwrap();
                }
            })
            .unwrap();
        // One datagram a millisecond into each sleep.
        let p2 = p.clone();
        let sender = std::thread::spawn(move || {
            let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..ROUNDS {
                while p2.load(Relaxed) < i {
                    std::thread::yield_now();
                }
                std::thread::sleep(Duration::from_millis(1));
                out.send_to(&i.to_le_bytes(), addr).unwrap();
            }
        });
        let mut slept = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            thread::sleep(Duration::from_millis(5));
            slept.push(t.elapsed());
            p.fetch_add(1, Relaxed);
        }
        reader.join().unwrap();
        sender.join().unwrap();
        s.store(true, Relaxed);
        spinner.join().unwrap();
        slept
    });
    watchdog.join().unwrap();
    let stats = rt.stats();
    assert!(
        !rescued.load(Relaxed),
        "a sleeper's timer was lost: {stats:?}"
    );
    assert!(stats.net_softirq_passes > 0, "{stats:?}");
    assert!(slept.iter().all(|d| *d >= Duration::from_millis(5)));
}

/// Whether a priority-59 thread the device wakes runs while a priority-60 thread
/// spins for up to `spin`.
fn device_woken_reader_beats_a_higher_spinner(napi: bool, spin: Duration) -> bool {
    // SAFETY: the green threads share only atomics and sockets.
    let rt = unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Full) }
        .napi(napi)
        .build()
        .unwrap();
    rt.block_on(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let reader_ran = Arc::new(AtomicBool::new(false));
        let r = reader_ran.clone();
        // It outranks this thread: it runs at once and blocks in recv.
        let reader = Builder::new()
            .priority(Priority::new(59))
            .spawn(move || {
                sock.recv(&mut [0; 8]).unwrap();
                r.store(true, Relaxed);
            })
            .unwrap();
        let spinner = Builder::new()
            .priority(Priority::new(60))
            .spawn(move || {
                let out = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let start = Instant::now();
                out.send_to(b"ping", addr).unwrap();
                while !reader_ran.load(Relaxed) && start.elapsed() < spin {
                    std::hint::spin_loop();
                }
                reader_ran.load(Relaxed)
            })
            .unwrap();
        let seen = spinner.join().unwrap();
        reader.join().unwrap();
        seen
    })
}

/// Without NAPI the device's work is interrupt work: a thread the device wakes runs
/// above every priority until it blocks again. With NAPI it keeps its own.
#[test]
fn without_napi_a_device_woken_thread_runs_at_interrupt_level() {
    let _l = support::runtime_lock();
    assert!(
        device_woken_reader_beats_a_higher_spinner(false, Duration::from_secs(2)),
        "without NAPI the woken priority-59 reader did not preempt the priority-60 spinner"
    );
    assert!(
        !device_woken_reader_beats_a_higher_spinner(true, Duration::from_millis(20)),
        "with NAPI a priority-59 reader ran while a priority-60 thread was runnable"
    );
}

/// The device's `ksoftirqd` is started once per CPU, however the first registrations
/// interleave: threads that register their first sockets at once, preempted by a fast
/// tick, must not start a second one — shutdown would never stop it.
#[test]
fn ksoftirqd_is_started_once_when_first_registrations_race() {
    const READERS: u64 = 8;
    let _l = support::runtime_lock();
    for round in 0..40 {
        // SAFETY: the green threads share only sockets.
        let rt = unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Full) }
            .tick(Duration::from_micros(50))
            .shutdown_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        rt.block_on(|| {
            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    thread::spawn(|| {
                        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                        sock.set_read_timeout(Some(Duration::from_millis(1)))
                            .unwrap();
                        // Registers the socket (starting `ksoftirqd` if there is none),
                        // then times out.
                        let e = sock.recv(&mut [0; 8]).unwrap_err();
                        assert!(
                            matches!(
                                e.kind(),
                                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                            ),
                            "{e}"
                        );
                    })
                })
                .collect();
            for r in readers {
                r.join().unwrap();
            }
        });
        let stats = rt.stats();
        // `block_on`'s thread, the readers and one ksoftirqd.
        if stats.spawned != READERS + 2 {
            // Dropping it would wait for the extra ksoftirqd, then abort.
            std::mem::forget(rt);
            panic!(
                "round {round}: {} threads spawned: {stats:?}",
                stats.spawned
            );
        }
    }
}

/// Under `Model::None` nothing preempts, so a busy CPU's device is polled at its
/// switches, as the preemptive models poll it between ticks (deferred interrupts): the
/// interrupt controller raises the device only when polling stops — a pass finds
/// nothing — not for every batch of readiness. (Unmasked after every
/// pass, it woke on the carrier's core once per batch: an HTTP server under `None`
/// made half the requests/s of `Full`.)
#[test]
fn under_none_a_busy_cpu_polls_its_device_at_its_switches() {
    const PAIRS: usize = 4;
    const ROUNDS: u64 = 500;
    let _l = support::runtime_lock();
    let rt = support::runtime();
    assert_eq!(rt.model(), preempt::Model::None);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Keeps the CPU busy (never idle) and switching.
        let s = stop.clone();
        let busy = thread::spawn(move || {
            while !s.load(Relaxed) {
                thread::yield_now();
            }
        });
        let echo = thread::spawn(move || {
            let servers: Vec<_> = (0..PAIRS)
                .map(|_| {
                    let (mut c, _) = listener.accept().unwrap();
                    thread::spawn(move || {
                        let mut b = [0u8; 8];
                        while c.read_exact(&mut b).is_ok() {
                            c.write_all(&b).unwrap();
                        }
                    })
                })
                .collect();
            servers.into_iter().for_each(|h| h.join().unwrap());
        });
        let clients: Vec<_> = (0..PAIRS)
            .map(|_| {
                thread::spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let mut b = [0u8; 8];
                    for i in 0..ROUNDS {
                        c.write_all(&i.to_le_bytes()).unwrap();
                        c.read_exact(&mut b).unwrap();
                        assert_eq!(u64::from_le_bytes(b), i);
                    }
                })
            })
            .collect();
        clients.into_iter().for_each(|h| h.join().unwrap());
        echo.join().unwrap();
        stop.store(true, Relaxed);
        busy.join().unwrap();
    });
    let s = rt.stats();
    eprintln!(
        "{} device interrupts, {} passes, {} events",
        s.net_interrupts, s.net_softirq_passes, s.net_events
    );
    assert!(s.net_events >= 2 * PAIRS as u64 * ROUNDS, "{s:?}");
    assert!(
        s.net_interrupts * 10 < s.net_events,
        "{} device interrupts for {} events",
        s.net_interrupts,
        s.net_events
    );
}

/// The context switches of the runtime's interrupt controller thread so far (its
/// voluntary switches: each wakeup ends in one as it waits again).
fn controller_wakeups() -> u64 {
    let mut found = None;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().ends_with("-irq") {
            continue;
        }
        let status = std::fs::read_to_string(t.path().join("status")).unwrap();
        let n = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map(|v| v.trim().parse::<u64>().unwrap())
            .unwrap();
        assert!(found.is_none(), "two interrupt controllers");
        found = Some(n);
    }
    found.expect("no interrupt controller thread")
}

/// An idle CPU's wait in its epoll instance is its device poll, so input that ends the
/// wait must not also wake the interrupt controller — on the carrier's core, at its
/// real-time priority, only to find the CPU awake. The interrupt stays masked through
/// idle periods that end with input. (Unmasked across them, the controller woke once
/// per round trip here, and an HTTP server paid two context switches per idle exit,
/// some 5,000 a second.)
#[test]
fn input_that_ends_an_idle_wait_leaves_the_interrupt_controller_asleep() {
    const ROUNDS: u64 = 400;
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    let (client, wakeups) = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // An OS thread as the peer: between its messages the runtime's only thread
        // waits for input, and the CPU idles — with a deferred poll due (and finding
        // nothing) before it does, as the peer thinks for longer than `DEFER_NS`.
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            let mut b = [0u8; 8];
            for i in 0..ROUNDS {
                std::thread::sleep(Duration::from_micros(200));
                c.write_all(&i.to_le_bytes()).unwrap();
                c.read_exact(&mut b).unwrap();
                assert_eq!(u64::from_le_bytes(b), i);
            }
        });
        let (mut s, _) = listener.accept().unwrap();
        let mut b = [0u8; 8];
        s.read_exact(&mut b).unwrap();
        s.write_all(&b).unwrap();
        let before = controller_wakeups();
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b).unwrap();
        }
        (client, controller_wakeups() - before)
    });
    client.join().unwrap();
    let s = rt.stats();
    eprintln!(
        "{wakeups} controller wakeups, {} idle waits, {} device interrupts",
        s.idle_waits, s.net_interrupts
    );
    assert!(s.idle_waits >= ROUNDS / 2, "the CPU did not idle: {s:?}");
    assert!(
        wakeups * 10 < ROUNDS,
        "{wakeups} controller wakeups for {ROUNDS} round trips"
    );
}

/// A thread that input wakes from idle and that then computes, though its bursts so far
/// were short, must not hide the device: its CPU polls the device (deferred interrupts)
/// and the tick stopped while the CPU idled, so the poll itself must come in time for a
/// high-priority reader's data, well before the computation ends.
#[test]
fn input_reaches_a_cpu_whose_woken_thread_turns_to_computing() {
    const SAMPLES: usize = 15;
    const COMPUTE_MS: u64 = 20;
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    let epoch = Instant::now();
    let mut lat = rt.block_on(move || {
        let work = UdpSocket::bind("127.0.0.1:0").unwrap();
        let work_addr = work.local_addr().unwrap();
        let data = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data_addr = data.local_addr().unwrap();
        // Computes for as many ms as each request asks (0: a burst of µs), then answers.
        let worker = thread::spawn(move || {
            let mut buf = [0; 8];
            loop {
                let (_, from) = work.recv_from(&mut buf).unwrap();
                let ms = u64::from_le_bytes(buf);
                if ms == u64::MAX {
                    break;
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(ms) {
                    std::hint::spin_loop();
                }
                work.send_to(&buf, from).unwrap();
            }
        });
        let reader = timestamp_reader(data, SAMPLES, epoch);
        // The load generator, a plain OS thread.
        let driver = std::thread::spawn(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut buf = [0; 8];
            let request = |ms: u64, buf: &mut [u8; 8]| {
                s.send_to(&ms.to_le_bytes(), work_addr).unwrap();
                s.recv(buf).unwrap();
            };
            for _ in 0..SAMPLES {
                // Short requests: the worker's last bursts are µs long.
                for _ in 0..3 {
                    request(0, &mut buf);
                }
                // The CPU idles for a few ticks: its tick stops.
                std::thread::sleep(Duration::from_millis(5));
                s.send_to(&COMPUTE_MS.to_le_bytes(), work_addr).unwrap();
                std::thread::sleep(Duration::from_millis(5));
                let now = epoch.elapsed().as_nanos() as u64;
                s.send_to(&now.to_le_bytes(), data_addr).unwrap();
                s.recv(&mut buf).unwrap();
            }
            s.send_to(&u64::MAX.to_le_bytes(), work_addr).unwrap();
        });
        let lat = reader.join().unwrap();
        // The green threads first: the driver's join blocks the carrier, and the driver
        // ends only once the worker has answered its last request.
        worker.join().unwrap();
        driver.join().unwrap();
        lat
    });
    let p50 = percentile(&mut lat, 0.5);
    let p90 = percentile(&mut lat, 0.9);
    eprintln!(
        "data-to-reader latency beside a worker that turned to computing: p50 {} µs, p90 {} µs",
        p50 / 1000,
        p90 / 1000
    );
    // Not reached before the computation ends, the reader would wait ~15 ms.
    assert!(p50 < 2_000_000, "median latency {} µs", p50 / 1000);
}
