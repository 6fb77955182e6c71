//! The blocking pool: helper OS threads for calls epoll cannot wait for.
//!
//! Regular files are always "ready" to epoll, `fsync` and name resolution have no
//! descriptor at all, and `waitpid` blocks in the kernel: done on a carrier, any of
//! them would stop every green thread of its CPU. They run here instead, on up to
//! [`MAX_HELPERS`] OS threads shared by the process, while the calling green thread
//! sleeps on a channel (a remote wakeup when the helper finishes). A helper that has
//! waited [`IDLE_EXIT`] for work exits; one is started whenever a job finds none idle.
//!
//! Helpers block `SIGALRM` (ticks are the carriers' business) and never run green
//! threads. Called from a plain OS thread, a job simply runs on the caller.

use crate::sync::{Condvar, Mutex, mpsc};
use std::collections::VecDeque;
use std::time::Duration;

/// The most helper threads the pool keeps.
pub(crate) const MAX_HELPERS: usize = 16;
/// How long an idle helper waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    helpers: usize,
    idle: usize,
}

/// The process's pool, made on first use.
fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    // Preemption off: a green thread preempted inside the initialisation would leave
    // the next one of its carrier blocked in the kernel on the OnceLock (H3).
    let _p = crate::preempt::disable();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            helpers: 0,
            idle: 0,
        }),
        work: Condvar::new(),
    })
}

/// Queues `job` for a helper, starting one if none is idle.
fn submit(job: Job) -> std::io::Result<()> {
    let mut st = pool().state.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(job);
    if st.idle > 0 || st.helpers >= MAX_HELPERS {
        drop(st);
        pool().work.notify_one();
        return Ok(());
    }
    st.helpers += 1;
    drop(st);
    let spawned = std::thread::Builder::new()
        .name("preempt-blocking".into())
        .spawn(helper);
    if let Err(e) = spawned {
        let mut st = pool().state.lock().unwrap_or_else(|e| e.into_inner());
        st.helpers -= 1;
        if st.helpers == 0 {
            // Nobody will run it: give the job back to the caller as an error.
            st.queue.pop_back();
            return Err(e);
        }
    }
    Ok(())
}

fn helper() {
    crate::irq::set_sigalrm_blocked(true);
    let mut st = pool().state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = pool().state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (s, t) = pool()
            .work
            .wait_timeout(st, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        st = s;
        st.idle -= 1;
        if t.timed_out() && st.queue.is_empty() {
            st.helpers -= 1;
            return;
        }
    }
}

/// Runs `f` on the pool and returns a handle to its result; see
/// [`crate::task::spawn_blocking`].
pub(crate) fn spawn<T, F>(f: F) -> std::io::Result<mpsc::Receiver<std::thread::Result<T>>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    submit(Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    }))?;
    Ok(rx)
}

/// Runs `f` where it may block: on the pool from a green thread (which sleeps
/// meanwhile), in place on any other thread. A panic in `f` is resumed here.
pub(crate) fn run<T, F>(f: F) -> std::io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if crate::sched::current_task().is_none() {
        return Ok(f());
    }
    let rx = spawn(f)?;
    match rx.recv() {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => Err(std::io::Error::other("the blocking pool dropped a job")),
    }
}
