//! A UDP flood against a server while an administrator types commands: NAPI against the
//! pre-NAPI device, side by side.
//!
//! ```text
//! cargo run --release --example flood                 # 2 s of flood per mode
//! cargo run --release --example flood -- --secs 5 --sockets 32 --work-us 10
//! ```
//!
//! One CPU under `Model::Full`. The server has `--sockets` UDP sockets, each read by a
//! green thread at `Priority::DEFAULT` that spends `--work-us` of CPU on every datagram
//! (its protocol processing). An OS thread floods them from the other core, as fast as
//! loopback takes it. An operator (another OS thread) sends the administrator a command
//! every 10 ms and times the answer; the administrator is a green thread at priority 50.
//! The operator's console is its own line — a remote wakeup, as a keyboard has its own
//! interrupt — not the flooded sockets.
//!
//! * **NAPI** (`Builder::napi(true)`, the default): a softirq pass takes a budget of
//!   events and time, then hands the rest to `ksoftirqd` at the default priority. The
//!   handlers' work is ordinary thread work, the administrator outranks it, and what the
//!   server cannot process is dropped in the sockets' buffers.
//! * **Naive** (`Builder::napi(false)`): the pre-NAPI kernel, where receive processing
//!   ran in interrupt context. A thread the device wakes runs above every priority until
//!   it blocks again; under a flood it never does, and nothing else runs — receive
//!   livelock. The administrator is answered only after the flood ends.
//!
//! The program keeps `Builder::preemptive`'s contract: its green threads share only
//! atomics and sockets.

use preempt::net::UdpSocket;
use preempt::thread::{self, Builder};
use preempt::{Model, Priority, Runtime, task};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const COMMAND_EVERY: Duration = Duration::from_millis(10);
/// An answer slower than this counts as a stall (the operator moves on).
const STALL: Duration = Duration::from_millis(100);

struct Args {
    secs: f64,
    sockets: usize,
    work: Duration,
}

fn args() -> Args {
    let mut a = Args {
        secs: 2.0,
        sockets: 16,
        work: Duration::from_micros(5),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("usage: flood [--secs S] [--sockets N] [--work-us US]");
            std::process::exit(2)
        };
        match flag.as_str() {
            "--secs" => a.secs = value.parse().unwrap_or_else(|_| bad()),
            "--sockets" => a.sockets = value.parse().unwrap_or_else(|_| bad()),
            "--work-us" => a.work = Duration::from_micros(value.parse().unwrap_or_else(|_| bad())),
            _ => bad(),
        }
    }
    if !(a.secs > 0.0 && a.secs <= 60.0) || a.sockets == 0 || a.sockets > 1024 {
        eprintln!("flood: --secs must be in (0, 60], --sockets in 1..=1024");
        std::process::exit(2);
    }
    a
}

/// What one run measured.
struct Outcome {
    /// Answer times of the commands sent during the flood; `None`: not within `STALL`.
    answers: Vec<Option<Duration>>,
    /// Datagrams the flood sent, and the server processed.
    sent: u64,
    processed: u64,
    stats: preempt::Stats,
}

fn spin_for(d: Duration, payload: &[u8]) -> u64 {
    // A checksum over the datagram, repeated until `d` has passed: the processing.
    let start = Instant::now();
    let mut sum = 0u64;
    loop {
        sum = payload
            .iter()
            .fold(sum, |s, &b| s.rotate_left(5) ^ u64::from(b));
        if start.elapsed() >= d {
            return sum;
        }
    }
}

fn run(napi: bool, a: &Args) -> std::io::Result<Outcome> {
    // SAFETY: the green threads below share only atomics and sockets.
    let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
        .napi(napi)
        .name(if napi { "napi" } else { "naive" })
        .build()?;
    let flood_for = Duration::from_secs_f64(a.secs);
    let (sockets, work) = (a.sockets, a.work);
    let processed = Arc::new(AtomicU64::new(0));
    let p = processed.clone();
    let (answers, sent) = rt.block_on(move || -> std::io::Result<_> {
        let stop = Arc::new(AtomicBool::new(false));
        // The server: one handler per socket.
        let mut addrs = Vec::new();
        let mut handlers = Vec::new();
        for _ in 0..sockets {
            let sock = UdpSocket::bind("127.0.0.1:0")?;
            addrs.push(sock.local_addr()?);
            sock.set_read_timeout(Some(Duration::from_millis(50)))?;
            let (stop, p) = (stop.clone(), p.clone());
            handlers.push(thread::spawn(move || {
                let mut buf = [0u8; 1500];
                let mut check = 0;
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => {
                            check ^= spin_for(work, &buf[..n]);
                            p.fetch_add(1, Relaxed);
                        }
                        Err(_) if stop.load(Relaxed) => return check,
                        Err(_) => {}
                    }
                }
            }));
        }
        // The administrator: answers each command it is woken for.
        let command = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let operator_slot: Arc<std::sync::OnceLock<std::thread::Thread>> = Default::default();
        let (c, ans, op, st) = (
            command.clone(),
            answered.clone(),
            operator_slot.clone(),
            stop.clone(),
        );
        let admin = Builder::new()
            .name("admin".into())
            .priority(Priority::new(50))
            .spawn(move || {
                while !st.load(Relaxed) {
                    thread::park();
                    ans.store(c.load(Relaxed), Relaxed);
                    if let Some(op) = op.get() {
                        op.unpark();
                    }
                }
            })?;
        let admin_thread = admin.thread().clone();
        // The flood, from an OS thread.
        let flooding = Arc::new(AtomicBool::new(true));
        let f = flooding.clone();
        let flooder = std::thread::spawn(move || -> u64 {
            let out = std::net::UdpSocket::bind("127.0.0.1:0").expect("flood socket");
            let payload = [0x5au8; 64];
            let start = Instant::now();
            let mut sent = 0u64;
            'flood: loop {
                for addr in &addrs {
                    if out.send_to(&payload, addr).is_ok() {
                        sent += 1;
                    }
                }
                if start.elapsed() >= flood_for {
                    break 'flood;
                }
            }
            f.store(false, Relaxed);
            sent
        });
        // The operator, from another OS thread: a command every 10 ms while the flood
        // lasts.
        let (c, ans, fl, admin_t) = (
            command.clone(),
            answered.clone(),
            flooding.clone(),
            admin_thread.clone(),
        );
        let operator = std::thread::spawn(move || {
            operator_slot
                .set(std::thread::current())
                .expect("one operator");
            let mut answers = Vec::new();
            let mut n = 0;
            while fl.load(Relaxed) {
                n += 1;
                let t = Instant::now();
                c.store(n, Relaxed);
                admin_t.unpark();
                while ans.load(Relaxed) < n && t.elapsed() < STALL {
                    std::thread::park_timeout(STALL.saturating_sub(t.elapsed()));
                }
                answers.push((ans.load(Relaxed) >= n).then(|| t.elapsed()));
                std::thread::sleep(COMMAND_EVERY.saturating_sub(t.elapsed()));
            }
            answers
        });
        // OS threads are joined through the blocking pool: a green thread must not
        // block its carrier.
        let answers = task::spawn_blocking(move || operator.join())
            .join()
            .expect("pool")
            .expect("operator");
        let sent = task::spawn_blocking(move || flooder.join())
            .join()
            .expect("pool")
            .expect("flooder");
        stop.store(true, Relaxed);
        admin_thread.unpark();
        admin.join().expect("admin");
        for h in handlers {
            h.join().expect("handler");
        }
        Ok((answers, sent))
    })?;
    Ok(Outcome {
        answers,
        sent,
        processed: processed.load(Relaxed),
        stats: rt.stats(),
    })
}

fn percentile(answers: &[Option<Duration>], p: f64) -> String {
    // Stalls sort last, as "≥ STALL".
    let mut v: Vec<Duration> = answers.iter().map(|a| a.unwrap_or(STALL * 10)).collect();
    v.sort();
    match v.get(((v.len().max(1) - 1) as f64 * p) as usize) {
        None => "-".into(),
        Some(d) if *d >= STALL => format!(">{} ms", STALL.as_millis()),
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
    }
}

fn main() {
    let a = args();
    println!(
        "UDP flood on loopback: {} sockets, {} µs of processing per datagram, {} s per mode; \
         a command to a priority-50 admin thread every {} ms (stall: no answer within {} ms)\n",
        a.sockets,
        a.work.as_micros(),
        a.secs,
        COMMAND_EVERY.as_millis(),
        STALL.as_millis()
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>8} {:>10}",
        "device",
        "answered",
        "p50",
        "p99",
        "stalled",
        "datagrams",
        "processed",
        "dropped",
        "ksoftirqd"
    );
    for napi in [true, false] {
        let o = match run(napi, &a) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("flood: {e}");
                std::process::exit(1);
            }
        };
        let answered = o.answers.iter().filter(|a| a.is_some()).count();
        let stalled = o.answers.len() - answered;
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>7.0}% {:>10}",
            if napi {
                "NAPI budget + ksoftirqd"
            } else {
                "naive: all in interrupt context"
            },
            format!("{answered}/{}", o.answers.len()),
            percentile(&o.answers, 0.5),
            percentile(&o.answers, 0.99),
            stalled,
            o.sent,
            o.processed,
            100.0 * o.sent.saturating_sub(o.processed) as f64 / o.sent.max(1) as f64,
            o.stats.net_ksoftirqd_handoffs,
        );
    }
    println!(
        "\n`dropped`: datagrams the sockets' buffers could not take (sent − processed). \
         `ksoftirqd`: softirq passes that ran out of budget and handed the rest over."
    );
}
