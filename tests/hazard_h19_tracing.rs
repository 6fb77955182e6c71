//! HAZARDS.md H19: `tracing` keeps its current span and its re-entrance guard per OS
//! thread. With a real `fmt` subscriber wrapped in `preempt::spans::PerThreadSpans`,
//! two green threads inside nested spans emit events under a fast tick: every event
//! arrives, and with its own thread's spans as parents.

mod support;

use preempt::spans::PerThreadSpans;
use preempt::{Model, Runtime, thread};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const EVENTS: u64 = 2_000;

#[test]
fn events_keep_their_parent_spans_under_preemption() {
    let _l = support::runtime_lock();
    let out = Buffer::default();
    let writer = out.clone();
    let wrapped = std::env::var("PREEMPT_H19_UNWRAPPED").is_err();
    let fmt = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    if wrapped {
        tracing::subscriber::set_global_default(PerThreadSpans::new(fmt)).unwrap();
    } else {
        tracing::subscriber::set_global_default(fmt).unwrap(); // the hazard itself
    }
    // SAFETY: the threads use thread-locals only through the wrapped subscriber.
    // Round-robin at priority 0: a switch at every tick, the most preemptions.
    let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
        .tick(Duration::from_micros(100))
        .fair(false)
        .build()
        .unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..2u64)
            .map(|t| {
                thread::spawn(move || {
                    let outer = tracing::info_span!("outer", t);
                    let _o = outer.enter();
                    let inner = tracing::info_span!("inner", t);
                    let _i = inner.enter();
                    for n in 0..EVENTS {
                        tracing::info!(t, n, "ev");
                        let t0 = Instant::now();
                        while t0.elapsed() < Duration::from_micros(50) {
                            std::hint::spin_loop();
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
    let s = rt.stats();
    drop(rt);
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let mut seen = [0u64; 2];
    let mut wrong = Vec::new();
    for line in text.lines().filter(|l| l.contains(" ev ")) {
        let t: usize = line
            .rsplit_once(" t=")
            .and_then(|(_, r)| r.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unparsable: {line}"));
        if !line.contains(&format!("outer{{t={t}}}:inner{{t={t}}}: ")) {
            wrong.push(line.to_owned());
        }
        seen[t] += 1;
    }
    eprintln!(
        "H19: {seen:?} events, {} with a wrong parent, {} preemptions",
        wrong.len(),
        s.preemptions + s.deferred_atomic
    );
    assert!(
        s.preemptions + s.deferred_atomic > 1000,
        "the tick was not at work: {s:?}"
    );
    assert_eq!(seen, [EVENTS, EVENTS], "events were lost");
    assert!(
        wrong.is_empty(),
        "{} events with a wrong parent, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
}
