//! The model comparison's workloads (`examples/compare_models.rs`) behave as the seeds
//! argue, checked loosely: orders between models, not absolute times.

mod support;

#[path = "../examples/compare_models.rs"]
mod compare;

use compare::{Opts, WORKLOADS, edf_misses, run_one};
use preempt::Model;
use std::time::Duration;

fn opts() -> Opts {
    Opts {
        run: Duration::from_millis(800),
        tick: Duration::from_millis(1),
    }
}

fn workload(name: &str) -> &'static compare::Workload {
    WORKLOADS.iter().find(|w| w.name == name).unwrap()
}

/// The p99 of all of a workload's wakeup latencies (hundreds of samples: a stall of
/// the VM now and then does not decide it).
fn p99_of(name: &str, m: Model) -> f64 {
    let o = run_one(
        workload(name),
        m,
        Opts {
            run: Duration::from_millis(1500),
            ..opts()
        },
    )
    .unwrap();
    assert!(
        o.latencies_us.len() >= 300,
        "{} samples",
        o.latencies_us.len()
    );
    compare::percentile(&o.latencies_us, 99.0)
}

/// Asserts that `m` wakes `name`'s threads with a p99 lateness under a quarter of
/// `None`'s. A stall of the VM (1–9 ms, in bursts while the other core is busy) delays
/// every wakeup due during it, and a handful of those decide the p99 of a run's few
/// hundred samples: `m` gets a second run before the test fails.
fn cuts_lateness_fourfold(name: &str, m: Model) {
    let none = p99_of(name, Model::None);
    let first = p99_of(name, m);
    if first < none / 4.0 {
        return;
    }
    let second = p99_of(name, m);
    assert!(
        second < none / 4.0,
        "{name} p99: {m:?} {first} µs, then {second} µs; None {none} µs"
    );
}

#[test]
fn preemptive_models_cut_the_desktops_wakeup_lateness_under_load() {
    let _l = support::runtime_lock();
    // None waits for the copier's 5 ms yields; Full and Rt preempt it at the wakeup.
    cuts_lateness_fourfold("desktop", Model::Full);
    cuts_lateness_fourfold("desktop", Model::Rt);
}

#[test]
fn the_fair_class_wakes_the_all_default_desktop_under_full() {
    let _l = support::runtime_lock();
    // No priority set anywhere: the fair class's wakeup preemption does it.
    cuts_lateness_fourfold("desktop-fair", Model::Full);
}

/// Jobs of [`edf_misses`]'s 400 the machine may stall before a run says nothing about
/// the scheduler: a hypervisor stall (1–9 ms) delays a job's start now and then on this
/// VM — a few in 400 on a quiet host, far more while the host is busy elsewhere.
const STALLS_ALLOWED: u32 = 20;

/// [`edf_misses`], measured again (up to three runs in all) while the machine stalls
/// more than [`STALLS_ALLOWED`] of its jobs: a scheduler that held jobs back would do so
/// in every run, a busy host does it for a while. Returns the last run.
fn edf_on_a_steady_machine(rt: &preempt::Runtime, section: Duration) -> compare::Edf {
    let run = Duration::from_millis(2000);
    let mut stalls = Vec::new();
    for _ in 0..3 {
        let edf = edf_misses(rt, run, section);
        if edf.stalled <= STALLS_ALLOWED {
            return edf;
        }
        stalls.push(edf.stalled);
    }
    panic!("{section:?} sections: {stalls:?} of 400 jobs stalled in three runs");
}

#[test]
fn edf_holds_with_short_sections_and_breaks_with_long_ones() {
    let _l = support::runtime_lock();
    // Long enough (400 jobs) that the stalls left in a steady run stay under the 1 % of
    // misses allowed. Jobs the machine stalled are counted apart (`edf_misses`); a
    // scheduler that held many jobs back would show there instead.
    let rt = compare::runtime(Model::Full, opts(), false).unwrap();
    let long = edf_on_a_steady_machine(&rt, Duration::from_micros(3500)).miss_ratio;
    let short = edf_on_a_steady_machine(&rt, Duration::from_micros(50)).miss_ratio;
    drop(rt);
    // A job released just after a 3.5 ms non-preemptible section began waits 3.35 ms
    // and needs 1.8: it misses. It then ends after the next release, so the next job
    // runs at once and meets its deadline: every other job misses (the most this
    // scenario can cause; see `edf_misses`).
    assert!(
        long >= 0.45,
        "3.5 ms sections: {:.0} % missed",
        long * 100.0
    );
    assert!(
        short <= 0.01,
        "0.05 ms sections: {:.1} % missed",
        short * 100.0
    );

    // Under Rt the SpinLock sections are preemptible: the long ones cost nothing.
    let rt = compare::runtime(Model::Rt, opts(), false).unwrap();
    let rt_long = edf_on_a_steady_machine(&rt, Duration::from_micros(3500)).miss_ratio;
    assert!(
        rt_long <= 0.02,
        "Rt: {:.0} % missed with 3.5 ms SpinLock sections",
        rt_long * 100.0
    );
}

#[test]
fn the_table_and_chart_name_every_model() {
    let outcomes: Vec<_> = compare::MODELS
        .iter()
        .map(|&m| compare::Outcome {
            workload: "w",
            model: m,
            effective: m,
            metrics: vec![("p99", 1.0, "µs")],
            latencies_us: vec![1.0, 10.0, 100.0],
        })
        .collect();
    let t = compare::table(&outcomes, &compare::MODELS);
    for name in ["None", "Voluntary", "Full", "Rt", "p99 (µs)"] {
        assert!(t.contains(name), "{t}");
    }
    let svg = compare::svg(&outcomes, &compare::MODELS);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert_eq!(compare::percentile(&[3.0, 1.0, 2.0, 4.0], 50.0), 2.0);
    assert_eq!(compare::percentile(&[3.0, 1.0, 2.0, 4.0], 100.0), 4.0);
}
