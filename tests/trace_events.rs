//! The scheduler's trace ring reaches `tracing`: spawn, switch, wakeup and exit events
//! are recorded on the hot paths and emitted later, from the idle loop, at `trace` level
//! with target `preempt::sched`.

mod support;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

type Counts = Arc<Mutex<HashMap<String, u64>>>;

struct Collect(Counts);

struct Message(String);
impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Collect {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "preempt::sched" {
            let mut m = Message(String::new());
            event.record(&mut m);
            *self.0.lock().unwrap().entry(m.0).or_default() += 1;
        }
    }
}

#[test]
fn scheduler_events_reach_the_subscriber() {
    let _l = support::runtime_lock();
    let counts: Counts = Arc::default();
    tracing_subscriber::registry()
        .with(Collect(counts.clone()))
        .init();
    let rt = support::runtime();
    rt.block_on(|| {
        let hs: Vec<_> = (0..10)
            .map(|_| {
                preempt::thread::spawn(|| {
                    preempt::thread::sleep(std::time::Duration::from_millis(1))
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    drop(rt); // the carrier drains its ring before it exits
    let c = counts.lock().unwrap();
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    assert_eq!(get("spawn"), 10, "{c:?}"); // `main` came from outside: a wakeup
    assert_eq!(get("exit"), 11, "{c:?}");
    assert!(get("wakeup") >= 11, "{c:?}"); // 10 timers + main's arrival
    assert!(get("switch") >= 21, "{c:?}");
}
