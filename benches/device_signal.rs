//! The two ways DESIGN.md §6 names for a busy CPU to hear the epoll device, measured
//! side by side on this machine (run: `cargo bench --bench device_signal`):
//!
//! * **F_SETSIG**: the socket itself is `O_ASYNC`, owned by the busy thread
//!   (`F_SETOWN_EX`/`F_OWNER_TID`), and the kernel sends that thread a signal when it
//!   becomes readable;
//! * **controller** (what `io::device` builds): an OS thread waits in `epoll_wait` on an
//!   epoll instance holding the socket (edge-triggered, `EPOLLONESHOT`, re-armed after
//!   each event) and `tgkill`s the busy thread.
//!
//! For each: the delay from `send` to the busy thread's signal handler (median and p99
//! over 2,000 datagrams, one at a time), and how many signals a burst of 1,000 datagrams
//! sent back to back costs the busy thread. Loopback UDP datagrams; the busy thread
//! spins.
//!
//! Measured on the project's machine (2026-11-23, three rounds): F_SETSIG p50 12.9–13.0
//! µs, p99 14.3–14.8 µs, 130–166 signals per burst (a standard signal coalesces only
//! while it is pending); controller p50 17.5–17.8 µs, p99 21–34 µs, 1 signal per burst
//! (the line stays masked until the softirq re-arms it). The controller is kept: 4–5 µs
//! slower to deliver, but a flood costs the busy thread one signal instead of one per
//! few datagrams (~2.5 µs each here), and the line can be masked as a whole (NAPI).

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

const SIG: i32 = libc::SIGUSR1;
// From <fcntl.h> (Linux), which the libc crate does not export for this target.
const F_SETSIG: i32 = 10;
const F_SETOWN_EX: i32 = 15;
const F_OWNER_TID: i32 = 0;
#[repr(C)]
struct FOwnerEx {
    kind: i32,
    pid: libc::pid_t,
}
static HANDLED_AT: AtomicU64 = AtomicU64::new(0);
static SIGNALS: AtomicU64 = AtomicU64::new(0);

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

extern "C" fn on_signal(_: i32) {
    HANDLED_AT.store(now_ns(), SeqCst);
    SIGNALS.fetch_add(1, SeqCst);
}

fn install_handler() {
    // SAFETY: installs a handler that only touches atomics and clock_gettime, both
    // async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(SIG, &sa, std::ptr::null_mut());
    }
}

/// A thread that spins until `stop`, with its kernel tid published.
fn busy_thread(stop: Arc<AtomicBool>, tid: Arc<AtomicI32>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid.store(unsafe { libc::gettid() }, SeqCst);
        while !stop.load(SeqCst) {
            std::hint::spin_loop();
        }
    })
}

enum Design {
    SetSig,
    Controller,
}

struct Figures {
    p50_us: f64,
    p99_us: f64,
    signals_per_burst: u64,
}

fn measure(design: Design) -> Figures {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    rx.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let tid = Arc::new(AtomicI32::new(0));
    let busy = busy_thread(stop.clone(), tid.clone());
    while tid.load(SeqCst) == 0 {
        std::hint::spin_loop();
    }
    let target = tid.load(SeqCst);
    let fd = rx.as_raw_fd();
    let mut controller = None;
    match design {
        Design::SetSig => {
            // SAFETY: fcntls on a descriptor we own, with a valid owner struct.
            unsafe {
                let own = FOwnerEx {
                    kind: F_OWNER_TID,
                    pid: target,
                };
                libc::fcntl(fd, F_SETOWN_EX, &own);
                libc::fcntl(fd, F_SETSIG, SIG);
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_ASYNC | libc::O_NONBLOCK);
            }
        }
        Design::Controller => {
            // SAFETY: plain epoll calls on descriptors we own.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            let arm = move || {
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLONESHOT) as u32,
                    u64: 0,
                };
                // SAFETY: as above.
                unsafe {
                    if libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut ev) != 0 {
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
                    }
                }
            };
            arm();
            let stop = stop.clone();
            controller = Some((
                std::thread::spawn(move || {
                    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
                    while !stop.load(SeqCst) {
                        // SAFETY: as above.
                        let n = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 4, 10) };
                        if n > 0 {
                            // SAFETY: a signal to a live thread of this process.
                            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), target, SIG) };
                        }
                    }
                }),
                arm,
            ));
        }
    }
    let rearm = || {
        if let Some((_, arm)) = &controller {
            arm();
        }
    };
    let mut buf = [0u8; 64];
    let drain = || while rx.recv(&mut [0u8; 64]).is_ok() {};
    // Latency, one datagram at a time.
    let mut lat = Vec::new();
    for _ in 0..2000 {
        HANDLED_AT.store(0, SeqCst);
        let t0 = now_ns();
        tx.send(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        while HANDLED_AT.load(SeqCst) == 0 && Instant::now() < deadline {
            std::hint::spin_loop();
        }
        let at = HANDLED_AT.load(SeqCst);
        if at != 0 {
            lat.push(at.saturating_sub(t0) as f64 / 1e3);
        }
        while rx.recv(&mut buf).is_ok() {}
        rearm();
    }
    // Signals for a burst of 1,000 datagrams sent back to back (the controller is
    // re-armed once, after the burst, as a softirq pass would).
    std::thread::sleep(Duration::from_millis(5));
    let s0 = SIGNALS.load(SeqCst);
    for _ in 0..1000 {
        let _ = tx.send(b"y");
    }
    std::thread::sleep(Duration::from_millis(20));
    drain();
    rearm();
    std::thread::sleep(Duration::from_millis(5));
    let burst = SIGNALS.load(SeqCst) - s0;
    stop.store(true, SeqCst);
    busy.join().unwrap();
    if let Some((c, _)) = controller {
        c.join().unwrap();
    }
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    Figures {
        p50_us: p(0.5),
        p99_us: p(0.99),
        signals_per_burst: burst,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` (criterion-style discovery)
    }
    install_handler();
    println!("busy thread hears a readable socket: send → its signal handler (2,000 datagrams)");
    println!(
        "{:<12} {:>10} {:>10} {:>26}",
        "design", "p50 µs", "p99 µs", "signals per 1,000-burst"
    );
    for round in 0..3 {
        for (name, d) in [
            ("F_SETSIG", Design::SetSig),
            ("controller", Design::Controller),
        ] {
            let f = measure(d);
            println!(
                "{:<12} {:>10.1} {:>10.1} {:>26}   (round {})",
                name,
                f.p50_us,
                f.p99_us,
                f.signals_per_burst,
                round + 1
            );
        }
    }
}
