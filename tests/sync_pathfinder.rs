//! The Mars Pathfinder inversion (`examples/pathfinder.rs`, whose `run` this includes):
//! with priority inheritance `T_H` waits at most for the rest of `T_L`'s critical
//! section (plus a tick); without it, for all of `T_M`'s work.

mod support;

#[path = "../examples/pathfinder.rs"]
mod pathfinder;

use pathfinder::{CRITICAL_SECTION, MEDIUM_WORK, TICK, run};

#[test]
fn inheritance_bounds_the_inversion_and_its_absence_does_not() {
    let _l = support::runtime_lock();
    // Medians of 5 runs each: a hypervisor stall (1–9 ms, rare) may lengthen one run.
    let median = |mut v: Vec<pathfinder::Report>| {
        v.sort_by_key(|r| r.high_blocked);
        v.swap_remove(v.len() / 2)
    };
    let with = median((0..5).map(|_| run(true)).collect());
    let without = median((0..5).map(|_| run(false)).collect());
    eprintln!(
        "median T_H blocked {:?} with inheritance, {:?} without (T_M ran {:?})",
        with.high_blocked, without.high_blocked, without.medium_ran
    );
    assert!(
        with.high_blocked <= CRITICAL_SECTION + TICK,
        "with inheritance: {with:?}"
    );
    assert!(
        without.high_blocked >= without.medium_ran && without.medium_ran >= MEDIUM_WORK,
        "without inheritance: {without:?}"
    );
    // The timelines tell the same story: with inheritance T_H gets the mutex before
    // T_M is done; without, after.
    let pos = |r: &pathfinder::Report, what: &str| {
        r.timeline
            .iter()
            .position(|(_, w)| w.starts_with(what))
            .unwrap_or_else(|| panic!("no '{what}' in {:?}", r.timeline))
    };
    assert!(
        pos(&with, "T_H  gets") < pos(&with, "T_M  done"),
        "{with:?}"
    );
    assert!(
        pos(&without, "T_H  gets") > pos(&without, "T_M  done"),
        "{without:?}"
    );
}
