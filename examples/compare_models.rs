//! The preemption models compared on one CPU: the seeds' scenarios as measured
//! experiments.
//!
//! Each workload runs once under each model — `None`, `Voluntary`, `Full`, `Rt` — in one
//! process, one runtime after another, and the program prints one table (or `--json`)
//! and writes an SVG chart of the latency distributions. The workloads:
//!
//! * `desktop` — a 60 Hz compositor and input events beside a thread copying memory:
//!   frame lateness;
//! * `audio` — a 5 ms period callback under background load: xruns per minute;
//! * `hpc` — a cache-sensitive compute kernel beside a periodic daemon: throughput
//!   relative to `None`;
//! * `tail` — a high-priority server answering requests over a socket under load:
//!   request latency p50/p99/p99.9;
//! * `realtime` — the deadline task (runtime 2 ms, deadline = period = 5 ms) beside a
//!   low-priority thread that enters a `SpinLock` section of 3.5 ms, then 0.05 ms,
//!   just before the task's releases: deadline miss ratio (non-preemptible sections
//!   except under `Rt`, where the spinlock sleeps);
//! * `journal` — checksums under a lock and file syncs outside it, through the blocking
//!   pool, while an interactive thread takes the lock: its latency;
//! * `desktop-fair`, `tail-fair` — `desktop` and `tail` with every thread at the
//!   default priority and the fair class on: what EEVDF's wakeup preemption gives
//!   without any priority set.
//!
//! Background work is cooperative code as the kernel's is: it calls `cond_resched()`
//! between chunks of work and yields every 5 ms. So `None` switches every 5 ms at best,
//! `Voluntary` at the first `cond_resched()` after a tick asked, `Full` and `Rt` at the
//! wakeup itself (except inside non-preemptible sections, which `Rt` makes rarer).
//!
//! Run: `cargo run --release --example compare_models` (about 45 s);
//! `-- --help` for the flags.
#![allow(dead_code)] // `tests/compare_models.rs` includes this file for the workloads.

use preempt::sync::{Mutex, SpinLock};
use preempt::thread::{self, Builder, Policy};
use preempt::{Model, Priority, Runtime};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The models, least preemptive first.
pub const MODELS: [Model; 4] = [Model::None, Model::Voluntary, Model::Full, Model::Rt];

/// How cooperative background code is: it yields this often.
pub const COOPERATIVE_YIELD: Duration = Duration::from_millis(5);

/// Settings of one run.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// How long each workload runs under each model.
    pub run: Duration,
    /// The timer interrupt's period.
    pub tick: Duration,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            run: Duration::from_millis(1500),
            tick: Duration::from_millis(1),
        }
    }
}

/// What one workload measured under one model.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub workload: &'static str,
    /// The model asked for, and the one in effect (`PREEMPT_MODEL` may lower it).
    pub model: Model,
    pub effective: Model,
    /// Named figures, in table order: (name, value, unit).
    pub metrics: Vec<(&'static str, f64, &'static str)>,
    /// The latency samples behind the figures, in µs (for the chart).
    pub latencies_us: Vec<f64>,
}

impl Outcome {
    /// The figure called `name`.
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics
            .iter()
            .find(|m| m.0 == name)
            .unwrap_or_else(|| panic!("{}: no metric {name}", self.workload))
            .1
    }
}

/// A workload: its name, a one-line explanation, and its body.
pub struct Workload {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&Runtime, Opts, bool) -> Measured,
    /// Every thread at the default priority, with the fair class on.
    pub fair: bool,
}

/// A workload body's result: figures and latency samples.
pub struct Measured {
    pub metrics: Vec<(&'static str, f64, &'static str)>,
    pub latencies_us: Vec<f64>,
}

pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "desktop",
        about: "60 Hz compositor (priority 10, renders 2 ms) and input events beside a memory copy: frame lateness",
        run: desktop,
        fair: false,
    },
    Workload {
        name: "desktop-fair",
        about: "the desktop with every thread at the default priority, fair class on",
        run: desktop,
        fair: true,
    },
    Workload {
        name: "audio",
        about: "5 ms audio callback (priority 50, 1 ms of work) beside two busy threads: xruns",
        run: audio,
        fair: false,
    },
    Workload {
        name: "hpc",
        about: "compute kernel sweeping 512 KiB beside a 2 ms daemon that touches 4 MiB: throughput",
        run: hpc,
        fair: false,
    },
    Workload {
        name: "tail",
        about: "server (priority 60) answering requests from a socket, 50 µs each, beside two busy threads",
        run: tail,
        fair: false,
    },
    Workload {
        name: "tail-fair",
        about: "the server with every thread at the default priority, fair class on",
        run: tail,
        fair: true,
    },
    Workload {
        name: "realtime",
        about: "deadline task (2 ms every 5 ms) beside SpinLock sections of 3.5 ms, then 0.05 ms, entered just before its releases",
        run: realtime,
        fair: false,
    },
    Workload {
        name: "journal",
        about: "checksums under a mutex and fsyncs outside it; an interactive thread (priority 10) takes the mutex",
        run: journal,
        fair: false,
    },
];

/// Builds the runtime for `model`.
pub fn runtime(model: Model, opts: Opts, fair: bool) -> io::Result<Runtime> {
    let b = match model {
        Model::None | Model::Voluntary => Runtime::builder().model(model),
        // SAFETY: the workloads' green threads touch no thread-local: they share atomics
        // and the runtime's own locks, and nothing is printed until the runtime is gone.
        _ => unsafe { Runtime::builder().preemptive(model) },
    };
    b.tick(opts.tick).fair(fair).build()
}

/// Runs `w` under `model`.
pub fn run_one(w: &Workload, model: Model, opts: Opts) -> io::Result<Outcome> {
    let rt = runtime(model, opts, w.fair)?;
    let effective = rt.model();
    let m = (w.run)(&rt, opts, w.fair);
    drop(rt);
    Ok(Outcome {
        workload: w.name,
        model,
        effective,
        metrics: m.metrics,
        latencies_us: m.latencies_us,
    })
}

/// The `p`-th percentile (0..=100) of `v`, nearest rank; 0 for no samples.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn spin(d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The priority of a workload's interactive thread: `p`, or the default one in the
/// all-default variants.
fn prio(fair: bool, p: u8) -> Priority {
    if fair {
        Priority::DEFAULT
    } else {
        Priority::new(p)
    }
}

/// Cooperative background work until `until`: `chunk`, then `cond_resched()`, and a
/// yield every [`COOPERATIVE_YIELD`].
fn background(until: Instant, mut chunk: impl FnMut()) {
    let mut last_yield = Instant::now();
    while Instant::now() < until {
        chunk();
        thread::cond_resched();
        if last_yield.elapsed() >= COOPERATIVE_YIELD {
            thread::yield_now();
            last_yield = Instant::now();
        }
    }
}

/// Wakes `interval()` after `from`, then every `interval()`, until `until`; calls
/// `work` with each due time, and returns each wakeup's lateness in µs — measured after
/// `work` if `after_work` (the latency of what the thread does on waking).
fn periodic(
    from: Instant,
    until: Instant,
    mut interval: impl FnMut() -> Duration,
    after_work: bool,
    mut work: impl FnMut(Instant),
) -> Vec<f64> {
    let mut late = Vec::new();
    let mut due = from;
    loop {
        due += interval();
        if due >= until {
            return late;
        }
        thread::sleep_until(due);
        if !after_work {
            late.push(us(due.elapsed()));
        }
        work(due);
        if after_work {
            late.push(us(due.elapsed()));
        }
    }
}

/// A background thread copying `MiB`-sized buffers (a file manager, a build).
fn copier(until: Instant) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let src = vec![7u8; 256 << 10];
        let mut dst = vec![0u8; 256 << 10];
        let mut n = 0u64;
        background(until, || {
            dst.copy_from_slice(&src);
            n += dst[n as usize % dst.len()] as u64;
        });
        n
    })
}

/// A deterministic pseudo-random sequence (xorshift), for arrival times.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// An exponentially distributed interval of mean `mean`.
    fn exp(&mut self, mean: Duration) -> Duration {
        mean.mul_f64(-(1.0 - self.next_f64()).ln())
    }
}

// ---- desktop ----

pub fn desktop(rt: &Runtime, opts: Opts, fair: bool) -> Measured {
    let (frames, input) = rt.block_on(move || {
        let start = Instant::now();
        let until = start + opts.run;
        let bg = copier(until);
        let input = Builder::new()
            .priority(prio(fair, 10))
            .spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
                let gap = move || Duration::from_millis(3) + rng.exp(Duration::from_millis(3));
                // Handle each event for 100 µs.
                periodic(start, until, gap, false, |_| {
                    spin(Duration::from_micros(100))
                })
            })
            .unwrap();
        let comp = Builder::new()
            .priority(prio(fair, 10))
            .spawn(move || {
                let frame = || Duration::from_secs(1) / 60;
                // Compose each frame in 2 ms.
                periodic(start, until, frame, false, |_| {
                    spin(Duration::from_millis(2))
                })
            })
            .unwrap();
        let frames = comp.join().unwrap();
        let input = input.join().unwrap();
        bg.join().unwrap();
        (frames, input)
    });
    let mut all = frames.clone();
    all.extend_from_slice(&input);
    Measured {
        metrics: vec![
            ("frame p50", percentile(&frames, 50.0), "µs"),
            ("frame p99", percentile(&frames, 99.0), "µs"),
            ("frame max", percentile(&frames, 100.0), "µs"),
            ("input p99", percentile(&input, 99.0), "µs"),
        ],
        latencies_us: all,
    }
}

// ---- audio ----

pub fn audio(rt: &Runtime, opts: Opts, _fair: bool) -> Measured {
    let (xruns, periods, late) = rt.block_on(move || {
        let start = Instant::now();
        let until = start + opts.run;
        let bgs = [copier(until), copier(until)];
        let cb = Builder::new()
            .priority(Priority::new(50))
            .spawn(move || {
                let period = Duration::from_millis(5);
                let (mut xruns, mut periods) = (0u64, 0u64);
                let late = periodic(
                    start,
                    until - period,
                    || period,
                    false,
                    |due| {
                        spin(Duration::from_millis(1)); // mix the next buffer
                        periods += 1;
                        if Instant::now() > due + period {
                            xruns += 1; // the buffer was not ready when the card wanted it
                        }
                    },
                );
                (xruns, periods, late)
            })
            .unwrap();
        let r = cb.join().unwrap();
        for b in bgs {
            b.join().unwrap();
        }
        r
    });
    let minutes = opts.run.as_secs_f64() / 60.0;
    Measured {
        metrics: vec![
            ("xruns/min", xruns as f64 / minutes, ""),
            ("xrun %", 100.0 * xruns as f64 / periods.max(1) as f64, "%"),
            ("wake p99", percentile(&late, 99.0), "µs"),
        ],
        latencies_us: late,
    }
}

// ---- hpc ----

pub fn hpc(rt: &Runtime, opts: Opts, _fair: bool) -> Measured {
    let (sweeps, secs, daemon_late) = rt.block_on(move || {
        let start = Instant::now();
        let until = start + opts.run;
        let daemon = Builder::new()
            .priority(Priority::new(10))
            .spawn(move || {
                let mut junk = vec![0u64; 4 << 20 >> 3];
                periodic(
                    start,
                    until,
                    || Duration::from_millis(2),
                    false,
                    |_| {
                        for (i, x) in junk.iter_mut().enumerate().step_by(8) {
                            *x = x.wrapping_add(i as u64); // one write per cache line
                        }
                    },
                )
            })
            .unwrap();
        let kernel = thread::spawn(move || {
            let mut a = vec![1u64; 512 << 10 >> 3];
            let mut sweeps = 0u64;
            let t0 = Instant::now();
            background(until, || {
                let mut acc = 0u64;
                for x in a.iter_mut() {
                    acc = acc.wrapping_mul(31).wrapping_add(*x);
                    *x = acc;
                }
                sweeps += 1;
            });
            (sweeps, t0.elapsed().as_secs_f64())
        });
        let (sweeps, secs) = kernel.join().unwrap();
        (sweeps, secs, daemon.join().unwrap())
    });
    Measured {
        metrics: vec![
            ("sweeps/s", sweeps as f64 / secs, ""),
            ("daemon p99", percentile(&daemon_late, 99.0), "µs"),
        ],
        latencies_us: daemon_late,
    }
}

// ---- tail ----

pub fn tail(rt: &Runtime, opts: Opts, fair: bool) -> Measured {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let base = Instant::now();
    let until = base + opts.run;
    // The client: an OS thread sending time-stamped requests, Poisson arrivals.
    let client = std::thread::spawn(move || {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut due = Instant::now();
        loop {
            due += rng.exp(Duration::from_millis(1));
            if due >= until {
                return; // dropping the socket ends the server
            }
            // Sleep (the client must not keep a CPU that the runtime's interrupt
            // controller thread needs); the stamp is taken when it sends.
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let stamp = base.elapsed().as_nanos() as u64;
            if b.write_all(&stamp.to_le_bytes()).is_err() {
                return;
            }
        }
    });
    let lat = rt.block_on(move || {
        let bgs = [copier(until), copier(until)];
        let server = Builder::new()
            .name("server".into())
            .priority(prio(fair, 60))
            .spawn(move || {
                let mut s = preempt::os::unix::net::UnixStream::from_std(a).unwrap();
                let mut lat = Vec::new();
                let mut buf = [0u8; 8];
                while s.read_exact(&mut buf).is_ok() {
                    spin(Duration::from_micros(50)); // serve it
                    let sent = Duration::from_nanos(u64::from_le_bytes(buf));
                    lat.push(us(base.elapsed().saturating_sub(sent)));
                }
                lat
            })
            .unwrap();
        let lat = server.join().unwrap();
        for b in bgs {
            b.join().unwrap();
        }
        lat
    });
    client.join().unwrap();
    Measured {
        metrics: vec![
            ("p50", percentile(&lat, 50.0), "µs"),
            ("p99", percentile(&lat, 99.0), "µs"),
            ("p99.9", percentile(&lat, 99.9), "µs"),
        ],
        latencies_us: lat,
    }
}

// ---- realtime ----

/// How much later than the scheduler can explain a job must start to count as stalled by
/// the machine ([`edf_misses`]).
pub const MACHINE_STALL: Duration = Duration::from_millis(1);

/// The seeds' EDF case: the deadline task (runtime 2 ms, deadline = period = 5 ms; each
/// job computes 1.8 ms) beside a low-priority thread that enters a `SpinLock` section of
/// `section` just before each release of the deadline task it can (150 µs before; it
/// skips a release it wakes too late for). Returns the fraction of jobs that finished
/// after their deadline, and the jobs' response times (µs).
///
/// A job whose own 1.8 ms of computation takes over 2.5 ms of wall time, or that starts
/// over [`MACHINE_STALL`] later than the section could hold it back, was stalled by the
/// machine (nothing on the CPU outranks it; on a VM the hypervisor does this now and
/// then, for 1–9 ms, more often while the other core is busy): it is counted apart, not
/// as a miss the scheduler caused.
///
/// Under `None`, `Voluntary` and `Full` the section is non-preemptible: a 3.5 ms one
/// blocks the released job for 3.35 ms, and 3.35 + 1.8 > 5. The missed job then ends
/// after the next release, so that job runs at once (the low thread is still asleep)
/// and meets its deadline: at most every other job can be made to miss this way, and
/// the ratio is at most about 1/2. Under `Rt` the `SpinLock` sleeps and its holder is
/// preemptible: the job runs at its release.
pub fn edf_misses(rt: &Runtime, run: Duration, section: Duration) -> Edf {
    rt.block_on(move || {
        let period = Duration::from_millis(5);
        let lead = Duration::from_micros(150);
        let start = Instant::now() + Duration::from_millis(2);
        let until = start + run;
        let lock = Arc::new(SpinLock::new(0u64));
        let low = thread::spawn(move || {
            let mut release = start;
            while release < until {
                // Sleep to near the moment, then wait it out on the CPU: a wakeup from
                // idle comes 50–150 µs late on a VM, which would blur "just before".
                thread::sleep_until(release - lead * 4);
                while Instant::now() < release - lead {
                    std::hint::spin_loop();
                }
                if release.elapsed() == Duration::ZERO {
                    let mut g = lock.lock();
                    spin(section);
                    *g += 1;
                }
                // The next release it can still be early for.
                release += period;
                while release - lead * 4 < Instant::now() {
                    release += period;
                }
            }
        });
        let dl = Builder::new()
            .policy(Policy::Deadline {
                runtime: Duration::from_millis(2),
                deadline: period,
                period,
            })
            .spawn(move || {
                let (mut jobs, mut misses, mut stalled, mut resp) = (0u32, 0u32, 0u32, Vec::new());
                let mut release = start;
                while release + period < until {
                    thread::sleep_until(release);
                    let job = Instant::now();
                    // The section holds the job back by less than its length; a start
                    // a millisecond later than that is the machine's doing too.
                    let held = job.saturating_duration_since(release) > section + MACHINE_STALL;
                    spin(Duration::from_micros(1800)); // the job: 1.8 ms of its 2 ms
                    if held || job.elapsed() > Duration::from_micros(2500) {
                        // Nothing on this CPU outranks the job: the machine stalled it.
                        stalled += 1;
                        release += period;
                        continue;
                    }
                    let done = release.elapsed();
                    resp.push(us(done));
                    jobs += 1;
                    if done > period {
                        misses += 1;
                    }
                    release += period;
                }
                Edf {
                    miss_ratio: misses as f64 / jobs.max(1) as f64,
                    response_us: resp,
                    stalled,
                }
            })
            .expect("0.4 of the CPU is admitted");
        let r = dl.join().unwrap();
        low.join().unwrap();
        r
    })
}

/// What [`edf_misses`] measured.
pub struct Edf {
    /// Jobs that finished after their deadline, of those the machine did not stall.
    pub miss_ratio: f64,
    /// Response times (release to completion) of the counted jobs, µs.
    pub response_us: Vec<f64>,
    /// Jobs stalled by the machine (not counted).
    pub stalled: u32,
}

pub fn realtime(rt: &Runtime, opts: Opts, _fair: bool) -> Measured {
    let half = opts.run / 2;
    let long = edf_misses(rt, half, Duration::from_micros(3500));
    let short = edf_misses(rt, half, Duration::from_micros(50));
    let mut resp = long.response_us;
    resp.extend(short.response_us);
    Measured {
        metrics: vec![
            ("miss % 3.5ms", 100.0 * long.miss_ratio, "%"),
            ("miss % 0.05ms", 100.0 * short.miss_ratio, "%"),
            ("stalled jobs", (long.stalled + short.stalled) as f64, ""),
        ],
        latencies_us: resp,
    }
}

// ---- journal ----

pub fn journal(rt: &Runtime, opts: Opts, _fair: bool) -> Measured {
    let dir = std::env::temp_dir().join(format!("preempt-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let d = dir.clone();
    let late = rt.block_on(move || {
        let until = Instant::now() + opts.run;
        let log = Arc::new(Mutex::new(0u64));
        let writers: Vec<_> = (0..2)
            .map(|i| {
                let (log, path) = (log.clone(), d.join(format!("journal-{i}")));
                thread::spawn(move || {
                    let mut f = preempt::fs::File::create(&path).unwrap();
                    let block = vec![i as u8; 64 << 10];
                    while Instant::now() < until {
                        {
                            let mut sum = log.lock().unwrap();
                            for _ in 0..4 {
                                for (j, b) in block.iter().enumerate() {
                                    *sum = sum.wrapping_mul(31).wrapping_add(*b as u64 ^ j as u64);
                                }
                            }
                        }
                        f.write_all(&block).unwrap();
                        f.sync_data().unwrap();
                    }
                })
            })
            .collect();
        let log2 = log.clone();
        let ui = Builder::new()
            .priority(Priority::new(10))
            .spawn(move || {
                // Show the journal's state: the latency is the wakeup's and the lock's.
                periodic(
                    Instant::now(),
                    until,
                    || Duration::from_millis(2),
                    true,
                    |_| {
                        std::hint::black_box(*log2.lock().unwrap());
                    },
                )
            })
            .unwrap();
        let late = ui.join().unwrap();
        for w in writers {
            w.join().unwrap();
        }
        late
    });
    let _ = std::fs::remove_dir_all(&dir);
    Measured {
        metrics: vec![
            ("ui p50", percentile(&late, 50.0), "µs"),
            ("ui p99", percentile(&late, 99.0), "µs"),
        ],
        latencies_us: late,
    }
}

// ---- the program ----

/// Runs the chosen workloads under the chosen models, in that order.
pub fn run_all(
    workloads: &[&Workload],
    models: &[Model],
    opts: Opts,
    mut each: impl FnMut(&Outcome),
) -> io::Result<Vec<Outcome>> {
    let mut out: Vec<Outcome> = Vec::new();
    for w in workloads {
        let first = out.len();
        for &m in models {
            let o = run_one(w, m, opts)?;
            each(&o);
            out.push(o);
        }
        if w.name == "hpc" {
            // Throughput relative to the first model's (None's, by default).
            let base = out[first].metric("sweeps/s");
            for o in &mut out[first..] {
                let r = o.metric("sweeps/s") / base;
                o.metrics.insert(1, ("vs first", r, "×"));
            }
        }
    }
    Ok(out)
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::None => "None",
        Model::Voluntary => "Voluntary",
        Model::Full => "Full",
        _ => "Rt",
    }
}

fn parse_model(s: &str) -> Option<Model> {
    match s.to_ascii_lowercase().as_str() {
        "none" => Some(Model::None),
        "voluntary" => Some(Model::Voluntary),
        "full" => Some(Model::Full),
        "rt" => Some(Model::Rt),
        _ => None,
    }
}

/// The table: one row per workload figure, one column per model.
pub fn table(outcomes: &[Outcome], models: &[Model]) -> String {
    let mut s = format!("{:<13} {:<14}", "workload", "figure");
    for m in models {
        s += &format!(" {:>10}", model_name(*m));
    }
    s.push('\n');
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        if !names.contains(&o.workload) {
            names.push(o.workload);
        }
    }
    for w in names {
        let rows: Vec<&Outcome> = outcomes.iter().filter(|o| o.workload == w).collect();
        for (i, (metric, _, unit)) in rows[0].metrics.iter().enumerate() {
            let label = if unit.is_empty() || *unit == "%" {
                metric.to_string()
            } else {
                format!("{metric} ({unit})")
            };
            s += &format!("{:<13} {:<14}", if i == 0 { w } else { "" }, label);
            for m in models {
                match rows.iter().find(|o| o.model == *m) {
                    Some(o) => s += &format!(" {:>10}", fmt_num(o.metrics[i].1)),
                    None => s += &format!(" {:>10}", "-"),
                }
            }
            s.push('\n');
        }
    }
    for o in outcomes {
        if o.effective != o.model {
            s += &format!(
                "note: {} under {:?} ran as {:?} (lowered by PREEMPT_MODEL)\n",
                o.workload, o.model, o.effective
            );
        }
    }
    s
}

fn fmt_num(x: f64) -> String {
    if x >= 1e5 {
        format!("{x:.3e}")
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x < 10.0 {
        format!("{x:.2}")
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// An SVG chart: per workload, the latency distribution (a CDF on a log axis) per model.
pub fn svg(outcomes: &[Outcome], models: &[Model]) -> String {
    let colors = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c"];
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        if !names.contains(&o.workload) && !o.latencies_us.is_empty() {
            names.push(o.workload);
        }
    }
    let (pw, ph, pad) = (420.0, 240.0, 50.0);
    let cols = 2;
    let rows = names.len().div_ceil(cols);
    let (w, h) = (
        cols as f64 * (pw + pad) + pad,
        rows as f64 * (ph + pad + 20.0) + pad + 30.0,
    );
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{pad}\" y=\"20\" font-size=\"14\">preempt: latency distributions per model (y: fraction of samples at or below x; x: log scale)</text>\n"
    );
    for (k, m) in models.iter().enumerate() {
        let x = pad + k as f64 * 90.0;
        s += &format!(
            "<rect x=\"{x}\" y=\"28\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"38\">{}</text>\n",
            colors[k % 4],
            x + 16.0,
            model_name(*m)
        );
    }
    let (lo, hi) = (0.0f64, 5.0f64); // 1 µs .. 100 ms
    for (i, name) in names.iter().enumerate() {
        let (ox, oy) = (
            pad + (i % cols) as f64 * (pw + pad),
            pad + 30.0 + (i / cols) as f64 * (ph + pad + 20.0),
        );
        s += &format!(
            "<text x=\"{ox}\" y=\"{}\" font-size=\"12\">{name}</text>\n<rect x=\"{ox}\" y=\"{oy}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n",
            oy - 6.0
        );
        for d in 0..=5 {
            let x = ox + pw * (d as f64 - lo) / (hi - lo);
            let label = ["1µs", "10µs", "100µs", "1ms", "10ms", "100ms"][d];
            s += &format!(
                "<line x1=\"{x}\" y1=\"{oy}\" x2=\"{x}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{}\">{label}</text>\n",
                oy + ph,
                x - 12.0,
                oy + ph + 14.0
            );
        }
        for (frac, label) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
            let y = oy + ph - ph * frac;
            s += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>\n",
                ox - 4.0,
                y + 4.0
            );
        }
        for (k, m) in models.iter().enumerate() {
            let Some(o) = outcomes
                .iter()
                .find(|o| o.workload == *name && o.model == *m)
            else {
                continue;
            };
            let mut v = o.latencies_us.clone();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let step = (n / 300).max(1);
            let mut pts = String::new();
            for (j, x) in v
                .iter()
                .enumerate()
                .step_by(step)
                .chain(std::iter::once((n - 1, &v[n - 1])))
            {
                let lx = x.max(1.0).log10().clamp(lo, hi);
                let px = ox + pw * (lx - lo) / (hi - lo);
                let py = oy + ph - ph * (j + 1) as f64 / n as f64;
                pts += &format!("{px:.1},{py:.1} ");
            }
            s += &format!(
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{pts}\"/>\n",
                colors[k % 4]
            );
        }
    }
    s += "</svg>\n";
    s
}

struct Args {
    workloads: Vec<&'static Workload>,
    models: Vec<Model>,
    opts: Opts,
    json: bool,
    chart: std::path::PathBuf,
}

const USAGE: &str = "compare_models [--workloads a,b,..] [--models none,voluntary,full,rt] \
[--run-ms N] [--tick-us N] [--json] [--chart PATH]
workloads: desktop, desktop-fair, audio, hpc, tail, tail-fair, realtime, journal (default: all)
--run-ms: how long each workload runs under each model (default 1500)";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        workloads: WORKLOADS.iter().collect(),
        models: MODELS.to_vec(),
        opts: Opts::default(),
        json: false,
        chart: std::path::PathBuf::from("target/compare_models.svg"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--workloads" | "-w" => {
                a.workloads = val()?
                    .split(',')
                    .map(|n| {
                        WORKLOADS
                            .iter()
                            .find(|w| w.name == n)
                            .ok_or(format!("unknown workload {n:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--models" | "-m" => {
                a.models = val()?
                    .split(',')
                    .map(|n| parse_model(n).ok_or(format!("unknown model {n:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "--run-ms" => {
                let ms: u64 = val()?.parse().map_err(|e| format!("--run-ms: {e}"))?;
                a.opts.run = Duration::from_millis(ms.max(100));
            }
            "--tick-us" => {
                let v: u64 = val()?.parse().map_err(|e| format!("--tick-us: {e}"))?;
                a.opts.tick = Duration::from_micros(v);
            }
            "--json" => a.json = true,
            "--chart" => a.chart = val()?.into(),
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    if !args.json {
        println!(
            "preempt: preemption models compared on one CPU ({} per run, tick {:?})\n",
            humantime(args.opts.run),
            args.opts.tick
        );
        for w in &args.workloads {
            println!("  {:<13} {}", w.name, w.about);
        }
        println!();
    }
    let t0 = Instant::now();
    let progress = !args.json;
    let outcomes = run_all(&args.workloads, &args.models, args.opts, |o| {
        if progress {
            eprint!(
                "\r  ran {:<13} under {:<10}",
                o.workload,
                model_name(o.model)
            );
        }
    });
    let outcomes = match outcomes {
        Ok(o) => o,
        Err(e) => {
            eprintln!("\ncompare_models: {e}");
            std::process::exit(1);
        }
    };
    let chart = svg(&outcomes, &args.models);
    let chart_note = match std::fs::create_dir_all(args.chart.parent().unwrap_or(".".as_ref()))
        .and_then(|_| std::fs::write(&args.chart, chart))
    {
        Ok(()) => format!(
            "chart: {}",
            std::fs::canonicalize(&args.chart)
                .unwrap_or(args.chart.clone())
                .display()
        ),
        Err(e) => format!("chart not written ({}: {e})", args.chart.display()),
    };
    if args.json {
        let v: Vec<_> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "workload": o.workload,
                    "model": model_name(o.model),
                    "effective_model": model_name(o.effective),
                    "metrics": o.metrics.iter().map(|(n, v, u)| serde_json::json!({"name": n, "value": v, "unit": u})).collect::<Vec<_>>(),
                    "samples": o.latencies_us.len(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
    } else {
        eprintln!("\r{:60}", "");
        print!("{}", table(&outcomes, &args.models));
        println!(
            "\n{} runs in {:.1} s; {chart_note}",
            outcomes.len(),
            t0.elapsed().as_secs_f64()
        );
    }
}

fn humantime(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
