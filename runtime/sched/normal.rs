//! The normal scheduling class (priority 0): round-robin (the default today), or
//! EEVDF-style fair scheduling with `Builder::fair(true)`.
//!
//! ## The fair class
//!
//! Every runnable thread of the class (queued, or running: a *member*) has a weight
//! from its nice value (the kernel's table: nice 0 is 1024, each step ~1.25×) and a
//! virtual runtime `v` that advances by `runtime × 1024 / weight` while it runs. The
//! class keeps the weighted average of its members' virtual runtimes,
//!
//! ```text
//!     V = Σ wᵢ·vᵢ / Σ wᵢ          lagᵢ = V − vᵢ   (> 0: owed CPU, < 0: ahead)
//! ```
//!
//! as two running sums, so `V` costs a division. A member is **eligible** when its lag
//! is not negative, and each has a **virtual deadline** `d = v + request × 1024 / w`.
//! The pick is EEVDF's: the eligible member with the earliest deadline. Eligibility
//! gives the shares (a thread that ran ahead waits until the others catch up); the
//! deadline orders the eligible ones, so a thread that asks for little CPU at a time
//! runs soon after it wakes.
//!
//! * **Requests.** A thread's request is what it uses per activation: twice the
//!   exponentially averaged run time between a wakeup and the next block (one burst at
//!   most doubles the average), at least [`MIN_REQUEST`]; a thread that uses up a whole
//!   request without blocking doubles it, up to [`BASE_SLICE`] (a CPU hog gets there in
//!   a few slices). The request only orders eligible threads; it changes nobody's share.
//! * **Slices.** The running member keeps the CPU until its deadline (the kernel's
//!   `RUN_TO_PARITY`) — an interrupt that stops it for something else (a device pass, a
//!   timer) gives it back unless a thread it woke may cut it short (below); then its
//!   deadline moves one request further and the pick is made again. The scheduler
//!   publishes when that happens in real time, and the timer interrupt switches then,
//!   not at every tick — the slice is independent of the tick: a coarse tick gets a
//!   one-shot at the slice's end. Time spent in the interrupt's handler is charged to
//!   nobody (the kernel's `IRQ_TIME_ACCOUNTING`).
//! * **Wakeup preemption.** A woken thread that is eligible with an earlier deadline
//!   preempts the running member (under `Full`/`Rt`) once that one has had
//!   [`WAKEUP_GRANULARITY`] of its request — at once if it asks for at most half as
//!   much at a time, and then also beside a running member that has run ahead (the
//!   kernel's `PREEMPT_SHORT`). Whatever the deadlines, an eligible thread owed at
//!   least [`WAKEUP_GRANULARITY`] takes the CPU from a member that has run ahead: the
//!   kernel keeps only an eligible member running to parity. Request handlers that run
//!   for µs, µs apart in lag, finish their requests among themselves.
//! * **Yield.** `yield_now` lets the others run: the pick that follows chooses among
//!   the other members first — an ineligible one too, so the yielder pays for it in
//!   lag — and the yielder's request starts afresh (EEVDF alone would run a yielder
//!   that is the only eligible member again at once).
//! * **Placement.** A thread that blocks while it is ahead (negative lag) stays a
//!   member — counted in `V`, kept among the ineligible — until the others catch up;
//!   then it leaves with no lag (the kernel's `DELAY_DEQUEUE`). Woken before that, it is
//!   runnable again where it stood, with a fresh request — a debt beyond one request,
//!   which only time it could not use makes (a stall, an interrupt), is forgiven. So
//!   sleeping earns no credit, and a thread that ran
//!   ahead and blocked does not drag `V` back behind the threads still queued. A thread
//!   that leaves otherwise (blocks while owed CPU, exits, moves to real time) keeps its
//!   lag, within ± [`LAG_LIMIT`] (the kernel's `2 * slice`), and rejoins at
//!   `V − lag` — a debt scaled by `(W + w) / W` so that it is still owed once the
//!   thread has joined; credit is not scaled, or request handlers that leave and rejoin
//!   every few µs would ratchet it up to the limit and together hold a sibling out of
//!   eligibility. A thread joining an empty class starts at `V`; a new thread starts at
//!   `V` with half a request.
//!
//! Members are kept in three binary heaps with their positions stored in the tasks:
//! the eligible queued ones by deadline, the ineligible queued ones by virtual runtime,
//! and the delayed (blocked) ones by virtual runtime. A pick drops the delayed ones whose
//! lag is paid off, moves the ineligible ones that became eligible (lowest `v` first)
//! and then takes the earliest deadline — O(log n) each. The heaps grow only when the
//! number of runnable threads exceeds every earlier count (the spawn path reserves room
//! for one more), so a switch does not allocate.
//!
//! Everything here runs on the owning carrier with preemption disabled (invariant 3).

use super::list::TaskList;
use crate::task::Task;
use std::ptr;

/// The slice a thread that uses the CPU continuously gets before others may run (real
/// time, at nice 0).
pub(crate) const BASE_SLICE: u64 = 3_000_000;
/// The most lag a thread keeps when it leaves (real time, at nice 0): the kernel's
/// limit, two of its 0.75 ms base slices, the same for every thread. With two of our
/// base slices (6 ms), request handlers that left while a CPU hog pulled `V` ahead
/// rejoined owed milliseconds, and a sibling that had joined at `V` waited behind them
/// (the HTTP bench's `/` beside `/spin` at 4 connections, p99 over a few runs: 0.42–0.76
/// ms with 6 ms, 0.21–0.68 ms with 1.5 ms); a limit that
/// follows each thread's own request instead gives long-request threads the larger
/// credit, and a short thread woken beside them waits for their bursts.
pub(crate) const LAG_LIMIT: u64 = 1_500_000;
/// The shortest request: a thread that runs for microseconds still asks for this.
pub(crate) const MIN_REQUEST: u64 = 100_000;
/// How much of its slice a running thread keeps before a woken one with a like request
/// and an earlier deadline may take the CPU from it (the old CFS wakeup granularity,
/// short): long enough for a request handler to finish its request.
pub(crate) const WAKEUP_GRANULARITY: u64 = 100_000;
/// The weight of nice 0.
const NICE_0: u64 = 1024;

/// The kernel's `sched_prio_to_weight`: nice −20..=19 → weight.
const WEIGHTS: [u32; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904,
    3906, 3121, 2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87,
    70, 56, 45, 36, 29, 23, 18, 15,
];

/// Why the running thread stops running (what the scheduler was entered for, and the
/// state it found the thread in).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stop {
    /// The timer interrupt or a wakeup preempted it.
    Preempted,
    /// `yield_now`.
    Yielded,
    /// It went to sleep.
    Blocked,
    /// It went to sleep and was woken before the switch: it runs on.
    Woken,
    Exited,
}

impl Stop {
    /// It is about to be queued again.
    pub(crate) fn runnable(self) -> bool {
        matches!(self, Stop::Preempted | Stop::Yielded | Stop::Woken)
    }

    /// Its run since it last woke is over (the request learns from it).
    fn ends_burst(self) -> bool {
        matches!(self, Stop::Blocked | Stop::Woken)
    }
}

/// The weight of `nice` (−20..=19).
pub(crate) fn weight_of(nice: i8) -> u32 {
    WEIGHTS[(nice.clamp(-20, 19) + 20) as usize]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Where {
    Off,
    Eligible,
    Ineligible,
    Delayed,
}

/// A thread's state in the fair class (in its `SchedEntity`).
pub(crate) struct FairEntity {
    pub(crate) nice: i8,
    weight: u32,
    /// Virtual runtime and virtual deadline (ns of virtual time).
    vruntime: i64,
    deadline: i64,
    /// Requested run time per activation (real ns), and the averaged burst it comes from.
    request: u64,
    avg_burst: u64,
    /// Run time since the last wakeup.
    burst: u64,
    /// Counted in the class's sums (runnable: queued or running).
    member: bool,
    /// Has been a member before (a new thread gets half a request first).
    joined_before: bool,
    /// Lag when it last left the class.
    vlag: i64,
    /// Which heap, and where in it. `Delayed`: blocked but still a member, until its
    /// negative lag is paid off (delayed dequeue).
    heap: Where,
    idx: usize,
    /// Tie-break among equal keys: queueing order.
    seq: u64,
    /// When it last started running, for `update_curr`.
    exec_start: u64,
}

impl FairEntity {
    pub(crate) fn new(nice: i8) -> FairEntity {
        FairEntity {
            nice,
            weight: weight_of(nice),
            vruntime: 0,
            deadline: 0,
            request: MIN_REQUEST,
            avg_burst: MIN_REQUEST / 2,
            burst: 0,
            member: false,
            joined_before: false,
            vlag: 0,
            heap: Where::Off,
            idx: 0,
            seq: 0,
            exec_start: 0,
        }
    }
}

/// `delta` real ns in the virtual time of a thread of weight `w`.
#[inline]
fn to_virtual(delta: u64, w: u32) -> i64 {
    if w as u64 == NICE_0 {
        return delta as i64;
    }
    (delta as u128 * NICE_0 as u128 / w as u128) as i64
}

/// `delta` virtual ns of a thread of weight `w` in real ns.
#[inline]
fn to_real(delta: i64, w: u32) -> u64 {
    let delta = delta.max(0) as u64;
    if w as u64 == NICE_0 {
        return delta;
    }
    (delta as u128 * w as u128 / NICE_0 as u128) as u64
}

/// `⌊n / d⌋`, in 64 bits when `n` fits (a 128-bit division costs several times more).
#[inline]
fn div_floor(n: i128, d: u64) -> i64 {
    match (i64::try_from(n), i64::try_from(d)) {
        (Ok(n), Ok(d)) => n.div_euclid(d),
        _ => n.div_euclid(d as i128) as i64,
    }
}

/// Whether `a` asks for at most half of what `b` asks for at a time: only then may it
/// cut `b`'s request short. Requests follow measured bursts, so request handlers differ
/// by a few µs; letting any shorter one preempt made them preempt each other by turns
/// (the HTTP bench's `/` at 50 connections under the fair class: a third of all
/// switches were such preemptions, and `/` p99 was 20× round-robin's).
fn asks_much_less(a: &FairEntity, b: &FairEntity) -> bool {
    2 * a.request <= b.request
}

/// # Safety (every function below taking a `*const Task`)
/// The task is alive, belongs to this CPU, and the caller owns the CPU's scheduler state
/// (carrier, preemption disabled), holding no other reference to its entity.
unsafe fn fe<'a>(t: *const Task) -> &'a mut FairEntity {
    // SAFETY: per the module's contract.
    unsafe { &mut (*t).se().fair }
}

/// A binary min-heap of tasks with their positions stored in the tasks.
struct Heap {
    tasks: Vec<*const Task>,
    kind: Where,
}

impl Heap {
    const fn new(kind: Where) -> Heap {
        Heap {
            tasks: Vec::new(),
            kind,
        }
    }

    fn key(&self, t: *const Task) -> (i64, u64) {
        // SAFETY: tasks on our heaps are members: alive and ours.
        let e = unsafe { fe(t) };
        match self.kind {
            Where::Eligible => (e.deadline, e.seq),
            _ => (e.vruntime, e.seq),
        }
    }

    fn top(&self) -> Option<*const Task> {
        self.tasks.first().copied()
    }

    fn set(&mut self, i: usize, t: *const Task) {
        self.tasks[i] = t;
        // SAFETY: as in `key`.
        let e = unsafe { fe(t) };
        e.idx = i;
        e.heap = self.kind;
    }

    fn push(&mut self, t: *const Task) {
        self.tasks.push(t);
        let i = self.tasks.len() - 1;
        self.set(i, t);
        self.sift_up(i);
    }

    fn remove(&mut self, t: *const Task) {
        // SAFETY: as in `key`.
        let i = unsafe { fe(t) }.idx;
        debug_assert!(ptr::eq(self.tasks[i], t));
        let last = self.tasks.pop().expect("task on the heap");
        if i < self.tasks.len() {
            self.set(i, last);
            self.sift_down(i);
            self.sift_up(i);
        }
        // SAFETY: as in `key`.
        unsafe { fe(t) }.heap = Where::Off;
    }

    fn sift_up(&mut self, mut i: usize) {
        let t = self.tasks[i];
        let k = self.key(t);
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.tasks[parent];
            if self.key(p) <= k {
                break;
            }
            self.set(i, p);
            i = parent;
        }
        self.set(i, t);
    }

    fn sift_down(&mut self, mut i: usize) {
        let t = self.tasks[i];
        let k = self.key(t);
        let n = self.tasks.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.key(self.tasks[r]) < self.key(self.tasks[l]) {
                r
            } else {
                l
            };
            let ck = self.key(self.tasks[c]);
            if k <= ck {
                break;
            }
            self.set(i, self.tasks[c]);
            i = c;
        }
        self.set(i, t);
    }
}

/// The class's run queue on one CPU.
pub(crate) struct NormalQueue {
    fair: bool,
    /// Round-robin mode's queue.
    fifo: TaskList,
    eligible: Heap,
    /// Queued members ahead of `V`, by virtual runtime.
    ineligible: Heap,
    /// Blocked members still ahead of `V` (delayed dequeue), by virtual runtime: apart
    /// from the queued ones, so that the next queued member to become eligible is the
    /// top of `ineligible` (`short_eligible_at`).
    delayed: Heap,
    /// Σ w·v and Σ w over the members.
    sum_wv: i128,
    sum_w: u64,
    /// `V` when the class last had members (where a thread joining an empty class starts).
    last_avg: i64,
    /// The member that is running, if any.
    curr: *const Task,
    /// A member that just yielded: queued, but kept off the heaps until the pick that
    /// follows has chosen someone else, if there is anyone.
    yielder: *const Task,
    /// The member last preempted with some of its request left, until the next pick
    /// says by whom; and, if that pick went to a higher class (a real-time thread, an
    /// irq thread), the member the class's next pick treats as eligible: a higher class
    /// taking the CPU does not cost a member its turn (else a handler preempted by the
    /// device's irq thread while a few µs ahead of `V` would wait for a hog's whole
    /// slice). It still goes after an earlier deadline.
    preempted: *const Task,
    resume: *const Task,
    /// How much of `curr`'s request was left when it started (real ns), and when that
    /// runs out on the CPU's monotonic clock (set by the scheduler).
    slice_left: u64,
    slice_end: u64,
    queued: usize,
    seq: u64,
}

impl NormalQueue {
    pub(crate) const fn new(fair: bool) -> NormalQueue {
        NormalQueue {
            fair,
            fifo: TaskList::new(),
            eligible: Heap::new(Where::Eligible),
            ineligible: Heap::new(Where::Ineligible),
            delayed: Heap::new(Where::Delayed),
            sum_wv: 0,
            sum_w: 0,
            last_avg: 0,
            curr: ptr::null(),
            yielder: ptr::null(),
            preempted: ptr::null(),
            resume: ptr::null(),
            slice_left: 0,
            slice_end: 0,
            queued: 0,
            seq: 0,
        }
    }

    pub(crate) fn is_fair(&self) -> bool {
        self.fair
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Makes room for `n` queued threads, so that queueing them cannot allocate.
    pub(crate) fn reserve(&mut self, n: usize) {
        if self.fair {
            for h in [&mut self.eligible, &mut self.ineligible, &mut self.delayed] {
                let len = h.tasks.len();
                h.tasks.reserve(n.saturating_sub(len));
            }
        }
    }

    /// `V`, the weighted average virtual runtime of the members.
    fn avg(&self) -> i64 {
        if self.sum_w == 0 {
            self.last_avg
        } else {
            div_floor(self.sum_wv, self.sum_w)
        }
    }

    /// Whether `t`'s lag is not negative: `v ≤ V`, compared without dividing.
    fn is_eligible(&self, t: *const Task) -> bool {
        // SAFETY: callers pass members.
        let e = unsafe { fe(t) };
        self.sum_w == 0 || e.vruntime as i128 * self.sum_w as i128 <= self.sum_wv
    }

    /// Charges the running member for the time since it was last charged.
    pub(crate) fn update_curr(&mut self, now: u64) {
        if self.curr.is_null() {
            return;
        }
        // SAFETY: `curr` is a running member.
        let e = unsafe { fe(self.curr) };
        let delta = now.saturating_sub(e.exec_start);
        e.exec_start = now;
        let dv = to_virtual(delta, e.weight);
        e.vruntime += dv;
        e.burst += delta;
        self.sum_wv += e.weight as i128 * dv as i128;
    }

    fn vrequest(e: &FairEntity) -> i64 {
        to_virtual(e.request, e.weight)
    }

    fn lag_limit(e: &FairEntity) -> i64 {
        to_virtual(LAG_LIMIT, e.weight)
    }

    /// Adds `t` to the sums, placed by its lag (module docs).
    fn join(&mut self, t: *const Task) {
        let avg = self.avg();
        let (sum_w, sum_wv) = (self.sum_w, self.sum_wv);
        // SAFETY: per the module's contract.
        let e = unsafe { fe(t) };
        let mut lag = 0;
        if sum_w > 0 && e.joined_before {
            lag = e.vlag;
            if lag < 0 {
                // A debt: so that it is still `lag` once `t`'s weight is in the average.
                // (Credit is not scaled up: handlers that leave owed a little and rejoin
                // every few µs would ratchet it up to the limit, and hold a sibling that
                // joined at `V` out of eligibility.)
                lag = (lag as i128 * (sum_w + e.weight as u64) as i128 / sum_w as i128) as i64;
            }
        }
        e.vruntime = avg - lag;
        e.deadline = e.vruntime
            + if e.joined_before {
                Self::vrequest(e)
            } else {
                Self::vrequest(e) / 2
            };
        e.joined_before = true;
        e.member = true;
        e.burst = 0;
        self.sum_w = sum_w + e.weight as u64;
        self.sum_wv = sum_wv + e.weight as i128 * e.vruntime as i128;
    }

    /// Takes `t` out of the sums, keeping its lag; `blocked`: it is going to sleep (its
    /// burst ends).
    fn leave(&mut self, t: *const Task, blocked: bool) {
        if ptr::eq(t, self.preempted) {
            self.preempted = ptr::null();
        }
        if ptr::eq(t, self.resume) {
            self.resume = ptr::null();
        }
        let avg = self.avg();
        // SAFETY: per the module's contract.
        let e = unsafe { fe(t) };
        let limit = Self::lag_limit(e);
        e.vlag = (avg - e.vruntime).clamp(-limit, limit);
        e.member = false;
        self.sum_w -= e.weight as u64;
        self.sum_wv -= e.weight as i128 * e.vruntime as i128;
        if self.sum_w == 0 {
            self.sum_wv = 0;
            self.last_avg = avg;
        }
        if blocked {
            Self::learn_request(e);
        }
    }

    /// A burst ended (the thread blocks): its request follows its averaged burst, which
    /// one burst can at most double. A burst is wall time on the CPU: a hypervisor
    /// stall of a few ms inside one µs-long request handler's burst made its request
    /// milliseconds, and beside 50 queued siblings (each owed its turn first, by
    /// deadline) it then waited tens of ms (the HTTP bench's `/` p99 under the fair
    /// class). A thread whose bursts really are long gets there in a few activations.
    fn learn_request(e: &mut FairEntity) {
        let burst = e.burst.min(3 * e.avg_burst.max(MIN_REQUEST / 2));
        e.avg_burst = (e.avg_burst + burst) / 2;
        e.request = (2 * e.avg_burst).clamp(MIN_REQUEST, BASE_SLICE);
    }

    /// A delayed member leaves at last (picked while eligible, or moving to another
    /// class).
    fn drop_delayed(&mut self, t: *const Task) {
        // SAFETY: delayed members are alive and ours (a blocked task lives until it runs
        // again, and wakes through `enqueue`).
        self.delayed.remove(t);
        self.leave(t, false);
    }

    /// Before `t` is queued in another class: a delayed membership here ends.
    ///
    /// # Safety
    /// As the module's contract.
    pub(crate) unsafe fn forget_delayed(&mut self, t: *const Task) {
        // SAFETY: per the contract.
        if self.fair && unsafe { fe(t) }.heap == Where::Delayed {
            self.drop_delayed(t);
        }
    }

    /// Queues `t`: a thread that becomes runnable joins the class first.
    ///
    /// # Safety
    /// `t` is alive, ours, on no queue; the caller owns the CPU's scheduler state.
    pub(crate) unsafe fn enqueue(&mut self, t: *const Task) {
        self.queued += 1;
        if !self.fair {
            // SAFETY: forwarded.
            return unsafe { self.fifo.push_back(t) };
        }
        // SAFETY: per the contract.
        let e = unsafe { fe(t) };
        if e.heap == Where::Delayed {
            // Woken before its lag was paid off: it is runnable again where it stands,
            // with a fresh request — a wakeup starts a new one. (With the request left
            // from its last run, a request handler — woken from here after nearly every
            // burst beside 50 queued siblings — was picked with a few µs of it left,
            // and the next wakeup by the device preempted it mid-request; behind in
            // lag, it then waited for the others to catch up: milliseconds.)
            e.burst = 0;
            self.forgive_overrun(t);
            // SAFETY: as above.
            let e = unsafe { fe(t) };
            e.deadline = e.vruntime + Self::vrequest(e);
            self.delayed.remove(t);
            self.push(t);
            return;
        }
        if !e.member {
            self.join(t);
        }
        self.seq += 1;
        // SAFETY: as above.
        unsafe { fe(t) }.seq = self.seq;
        if ptr::eq(t, self.yielder) {
            return; // placed after the pick
        }
        self.push(t);
    }

    /// A delayed member wakes more than one request ahead of `V`: the excess is
    /// forgiven, so it is one request ahead. Its slice ends at its request, so only time
    /// it did not get to use makes more — a hypervisor stall, an interrupt storm, a long
    /// section with preemption off, all charged to it as run time — and beside `n`
    /// queued siblings each µs of it costs `n` µs of waiting (a request handler
    /// 350 µs ahead waited 18 ms beside 50 others).
    fn forgive_overrun(&mut self, t: *const Task) {
        // SAFETY: a member of this queue.
        let e = unsafe { fe(t) };
        let (w, r) = (e.weight as u64, Self::vrequest(e));
        if self.sum_w <= w || e.vruntime - self.avg() <= r {
            return;
        }
        // Solve V' − v' = −r for v', V' being the average with v' in place of v.
        let others = self.sum_wv - w as i128 * e.vruntime as i128;
        let v = div_floor(others + r as i128 * self.sum_w as i128, self.sum_w - w);
        if v < e.vruntime {
            self.sum_wv += w as i128 * (v - e.vruntime) as i128;
            e.vruntime = v;
        }
    }

    /// Puts a queued member on the heap its eligibility says.
    fn push(&mut self, t: *const Task) {
        if self.is_eligible(t) {
            self.eligible.push(t);
        } else {
            self.ineligible.push(t);
        }
    }

    /// Dequeues the thread to run next: the eligible member with the earliest deadline.
    ///
    /// # Safety
    /// The caller owns the CPU's scheduler state; no member is running (`put_curr` ran).
    pub(crate) unsafe fn pick_next(&mut self, now: u64) -> Option<*const Task> {
        if !self.fair {
            // SAFETY: forwarded.
            let t = unsafe { self.fifo.pop_front() }?;
            self.queued -= 1;
            return Some(t);
        }
        debug_assert!(self.curr.is_null());
        if self.queued == 0 {
            return None;
        }
        let preempted = std::mem::replace(&mut self.preempted, ptr::null());
        let resume = std::mem::replace(&mut self.resume, ptr::null());
        let yielder = std::mem::replace(&mut self.yielder, ptr::null());
        let t = match self.pick_heaps() {
            Some(t) => {
                if !yielder.is_null() {
                    self.push(yielder);
                }
                t
            }
            None if !yielder.is_null() => yielder,
            None => return None,
        };
        let t = if !resume.is_null() && !ptr::eq(resume, t) && self.resumes_before(resume, t) {
            self.push(t);
            resume
        } else if !preempted.is_null()
            && !ptr::eq(preempted, t)
            && !self.cuts_short(t, preempted)
            && self.take_queued(preempted)
        {
            // Stopped with some of its request left, and nobody queued may cut it
            // short: it runs on (`RUN_TO_PARITY`). The interrupt that stopped it was
            // for something else — a device pass, a timer, a remote wakeup — whose
            // wakeups preempt it only by the rule of `wakeup_preempts`. (Switched out
            // instead, a request handler a few µs behind in lag waited for 50 queued
            // siblings to catch up: the HTTP bench's `/` p99 under the fair class.)
            self.push(t);
            preempted
        } else {
            t
        };
        Some(self.start(t, now))
    }

    /// Whether `w`, queued, may cut the request of `c` short. It must be owed the CPU
    /// first: eligible, and then either owed at least [`WAKEUP_GRANULARITY`] beside a `c`
    /// that has run ahead of its share, or with an earlier deadline — or, if it asks for
    /// at most half as much at a time, beside an ineligible `c` (the kernel's
    /// `PREEMPT_SHORT`). By deadline, `c` must have had [`WAKEUP_GRANULARITY`] of its
    /// request, unless `w` asks for that much less: request handlers, which run for µs
    /// and are µs apart in lag, finish their requests among themselves, while a woken
    /// thread still takes the CPU from one that computes.
    fn cuts_short(&self, w: *const Task, c: *const Task) -> bool {
        // SAFETY: members of this queue.
        let (we, ce) = unsafe { (fe(w), fe(c)) };
        if !self.is_eligible(w) {
            return false;
        }
        if !self.is_eligible(c)
            && to_real(self.avg() - we.vruntime, we.weight) >= WAKEUP_GRANULARITY
        {
            // `c` has run ahead of its share and `w` is owed a granularity: EEVDF picks
            // `w`, whatever the deadlines (kept from it, a compositor owed 2 ms waited
            // for a copier's whole request).
            return true;
        }
        if asks_much_less(we, ce) {
            return we.deadline < ce.deadline || !self.is_eligible(c);
        }
        // How much of its current request `c` has had.
        let had = Self::vrequest(ce) - (ce.deadline - ce.vruntime);
        we.deadline < ce.deadline && had >= to_virtual(WAKEUP_GRANULARITY, ce.weight)
    }

    /// Takes `t`, queued, off its heap; false if it is on none.
    fn take_queued(&mut self, t: *const Task) -> bool {
        // SAFETY: a member of this queue.
        match unsafe { fe(t) }.heap {
            Where::Eligible => self.eligible.remove(t),
            Where::Ineligible => self.ineligible.remove(t),
            Where::Off | Where::Delayed => return false,
        }
        true
    }

    /// Takes the eligible member with the earliest deadline off the heaps (or, if
    /// rounding left none eligible, the least advanced one), dropping delayed members
    /// whose lag is paid off on the way.
    fn pick_heaps(&mut self) -> Option<*const Task> {
        while let Some(t) = self.delayed.top() {
            if !self.is_eligible(t) {
                break;
            }
            // Its negative lag is paid off: it leaves for good.
            self.drop_delayed(t);
        }
        while let Some(t) = self.ineligible.top() {
            if !self.is_eligible(t) {
                break;
            }
            if self.eligible.tasks.is_empty()
                && !self.ineligible.tasks[1..]
                    .iter()
                    .take(2)
                    .any(|&c| self.is_eligible(c))
            {
                // The only eligible member (its children, the next lowest, are not): take
                // it without moving it through the other heap.
                self.ineligible.remove(t);
                return Some(t);
            }
            self.ineligible.remove(t);
            self.eligible.push(t);
        }
        loop {
            match self.eligible.top() {
                // `V` can fall when a member leaves: recheck.
                Some(t) if !self.is_eligible(t) => {
                    self.eligible.remove(t);
                    self.ineligible.push(t);
                }
                Some(t) => {
                    self.eligible.remove(t);
                    return Some(t);
                }
                // Some member is always eligible (V ≥ the least v); rounding aside, and
                // a yielder kept aside may be the eligible one.
                None => {
                    let t = self.ineligible.top()?;
                    self.ineligible.remove(t);
                    return Some(t);
                }
            }
        }
    }

    /// `t`, just taken off a heap, starts running.
    fn start(&mut self, t: *const Task, now: u64) -> *const Task {
        self.queued -= 1;
        // SAFETY: t was queued: a member, alive and ours.
        let e = unsafe { fe(t) };
        e.exec_start = now;
        self.slice_left = to_real(e.deadline - e.vruntime, e.weight);
        self.curr = t;
        t
    }

    /// Unlinks `t`, which is queued; it leaves the class (a priority change).
    ///
    /// # Safety
    /// `t` is on this queue; the caller owns the CPU's scheduler state.
    pub(crate) unsafe fn remove(&mut self, t: *const Task) {
        self.queued -= 1;
        if !self.fair {
            // SAFETY: forwarded.
            return unsafe { self.fifo.remove(t) };
        }
        // SAFETY: per the contract.
        match unsafe { fe(t) }.heap {
            Where::Eligible => self.eligible.remove(t),
            Where::Ineligible => self.ineligible.remove(t),
            Where::Off if ptr::eq(t, self.yielder) => self.yielder = ptr::null(),
            Where::Off | Where::Delayed => debug_assert!(false, "queued task on no queue heap"),
        }
        self.leave(t, false);
    }

    /// The running thread `t` stops running, for the reason `stop`. If it is this
    /// class's running member, it is charged. If it is runnable and still at priority 0
    /// it stays a member (it is about to be queued again): a yielder gives up its
    /// request and lets the others go first. Otherwise it leaves — a sleeper that ran
    /// ahead stays counted until the others catch up (delayed dequeue).
    ///
    /// # Safety
    /// `t` is the CPU's running task; the caller owns the CPU's scheduler state.
    pub(crate) unsafe fn put_curr(&mut self, t: *const Task, now: u64, stop: Stop) {
        if !self.fair || !ptr::eq(t, self.curr) {
            return;
        }
        self.update_curr(now);
        self.curr = ptr::null();
        // SAFETY: per the contract.
        let stays = stop.runnable() && unsafe { (*t).se().prio } == crate::Priority::DEFAULT;
        if !stays {
            if stop == Stop::Blocked && !self.is_eligible(t) {
                // Ran ahead of its share: it stays counted in `V` until the others catch
                // up (or it wakes first), so sleeping does not wipe out its debt and `V`
                // does not fall behind the threads still queued.
                // SAFETY: per the contract.
                let e = unsafe { fe(t) };
                Self::learn_request(e);
                self.delayed.push(t);
                return;
            }
            return self.leave(t, stop.ends_burst());
        }
        // SAFETY: per the contract.
        let e = unsafe { fe(t) };
        match stop {
            Stop::Woken => {
                // It blocked and was woken before the switch: its burst ended all the same.
                Self::learn_request(e);
                e.burst = 0;
            }
            Stop::Yielded => {
                // A yield lets the others run: the next pick chooses among them first
                // (even one that is not eligible), and the yielder's request starts afresh.
                e.deadline = e.vruntime + Self::vrequest(e);
                self.yielder = t;
            }
            _ => {}
        }
        if e.vruntime >= e.deadline {
            // Past its deadline: the next request starts. If this burst used up a whole
            // request, it is a thread that keeps running: it asks for more next time, up
            // to the base slice. (A deadline can also be passed without that: one kept
            // from before a sleep; a request handler must not grow into a hog's slice.)
            if e.burst >= e.request {
                e.request = (2 * e.request).min(BASE_SLICE);
            }
            e.deadline = e.vruntime + Self::vrequest(e);
        } else if stop == Stop::Preempted {
            self.preempted = t;
        }
    }

    /// Whether `resume`, preempted by a higher class, runs before `t`, the class's own
    /// choice: it counts as eligible (it was running on its turn), and the earlier
    /// deadline goes first. If so it is taken off its heap.
    fn resumes_before(&mut self, resume: *const Task, t: *const Task) -> bool {
        // SAFETY: `resume` is cleared whenever it leaves the class, and `t` was just
        // picked: members.
        let (r, c) = unsafe { (fe(resume), fe(t)) };
        if r.deadline >= c.deadline {
            return false;
        }
        self.take_queued(resume)
    }

    /// The CPU went to a higher class: the member it preempted, if any, is resumed by
    /// the class's next pick (see `resume`).
    pub(crate) fn higher_class_picked(&mut self) {
        if !self.preempted.is_null() {
            self.resume = std::mem::replace(&mut self.preempted, ptr::null());
        }
    }

    /// Whether `t`, just queued, should preempt the running member: the running
    /// member's request is used up, or `t` may cut it short ([`Self::cuts_short`]: the
    /// kernel's `RUN_TO_PARITY`, `PREEMPT_SHORT` and a wakeup granularity). Without the
    /// granularity, request handlers preempted each other by turns — every other
    /// request paid two switches and a wait in the queue (the HTTP bench's `/` at 50
    /// connections: ~40 % of switches were such preemptions).
    ///
    /// # Safety
    /// `t` is queued here; the caller owns the CPU's scheduler state.
    pub(crate) unsafe fn wakeup_preempts(&mut self, t: *const Task, now: u64) -> bool {
        if !self.fair {
            return false; // round-robin: the tick switches
        }
        if self.curr.is_null() {
            return true;
        }
        self.update_curr(now);
        // SAFETY: a member of this queue.
        let c = unsafe { fe(self.curr) };
        c.vruntime >= c.deadline || self.cuts_short(t, self.curr)
    }

    /// Whether a member is running.
    pub(crate) fn has_curr(&self) -> bool {
        !self.curr.is_null()
    }

    /// What was left of the running member's request when it started (or was
    /// reweighted), in real ns.
    pub(crate) fn slice_left(&self) -> u64 {
        self.slice_left
    }

    /// When a queued member with a much shorter request and an earlier deadline than the
    /// running one becomes eligible (accounting clock), if one does first: a
    /// latency-sensitive thread that is a little ahead of `V` — a handler preempted by
    /// an irq thread, or woken while its last run is still being paid off — then takes
    /// the CPU once it is owed it, instead of after the running hog's whole slice (the
    /// spirit of the kernel's `PREEMPT_SHORT`). `V` advances by `NICE_0 / Σw` per ns the
    /// running member runs, from the sums as last charged (`exec_start`).
    pub(crate) fn short_eligible_at(&self) -> Option<u64> {
        if !self.fair || self.curr.is_null() {
            return None;
        }
        let m = self.ineligible.top()?;
        // SAFETY: members of this queue.
        let (me, ce) = unsafe { (fe(m), fe(self.curr)) };
        if !asks_much_less(me, ce) || me.deadline >= ce.deadline {
            return None;
        }
        let dv = (me.vruntime - self.avg()).max(0) as u128;
        let dt = dv * self.sum_w as u128 / NICE_0 as u128;
        Some(ce.exec_start + dt.min(u64::MAX as u128 / 2) as u64)
    }

    /// Records when the running member's slice ends on the CPU clock.
    pub(crate) fn set_slice_end(&mut self, at: u64) {
        self.slice_end = at;
    }

    /// When the running member's slice ends (CPU clock ns); 0 under round-robin, where
    /// every tick may switch.
    pub(crate) fn slice_end(&self) -> u64 {
        if self.fair && !self.curr.is_null() {
            self.slice_end
        } else {
            0
        }
    }

    /// `t`'s lag in real ns at nice 0 (positive: owed CPU): current for a member, as it
    /// left otherwise.
    ///
    /// # Safety
    /// As the module's contract.
    pub(crate) unsafe fn lag(&self, t: *const Task) -> i64 {
        // SAFETY: per the contract.
        let e = unsafe { fe(t) };
        if e.member {
            self.avg() - e.vruntime
        } else {
            e.vlag
        }
    }

    /// Changes `t`'s nice value, keeping its lag and the rest of its request in real
    /// terms (the kernel's `reweight_entity`).
    ///
    /// # Safety
    /// As the module's contract; `t` is running or not queued.
    pub(crate) unsafe fn set_nice(&mut self, t: *const Task, nice: i8, now: u64) {
        // SAFETY: per the contract.
        let e = unsafe { fe(t) };
        let (old, new) = (e.weight, weight_of(nice));
        e.nice = nice;
        if !e.member {
            e.weight = new;
            e.vlag = (e.vlag as i128 * old as i128 / new as i128) as i64;
            return;
        }
        debug_assert!(ptr::eq(t, self.curr), "a queued member is reweighted");
        self.update_curr(now);
        let avg = self.avg();
        // SAFETY: as above.
        let e = unsafe { fe(t) };
        let lag = avg - e.vruntime;
        let left = e.deadline - e.vruntime;
        self.sum_w = self.sum_w - old as u64 + new as u64;
        self.sum_wv -= old as i128 * e.vruntime as i128;
        e.weight = new;
        e.vruntime = avg - (lag as i128 * old as i128 / new as i128) as i64;
        e.deadline = e.vruntime + (left as i128 * old as i128 / new as i128) as i64;
        self.sum_wv += new as i128 * e.vruntime as i128;
        self.slice_left = to_real(e.deadline - e.vruntime, new);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::arch::Context;
    use crate::io::device::IrqChip;
    use crate::sched::rq::RunQueue;
    use crate::sched::{Config, Cpu};
    use crate::stack::Stack;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    /// Two nice-0 threads of a fair CPU (never run: only their scheduling state is used).
    fn two_threads() -> Vec<Task> {
        let chip = IrqChip::new().unwrap();
        let config = Config {
            default_stack: crate::min_stack_size(),
            model: crate::Model::Full,
            tick: Duration::from_millis(1),
            napi: true,
            fair: true,
            nohz_full: true,
        };
        let cpu = Cpu::new(0, config, &chip).unwrap();
        (0..2)
            .map(|_| {
                let stack = Stack::new(crate::min_stack_size()).unwrap();
                let p = crate::Priority::DEFAULT;
                Task::new(None, cpu.clone(), p, 0, None, Context::empty(), stack)
            })
            .collect()
    }

    /// Both threads asking for a whole base slice join at 0; the first picked runs for
    /// `ran` and is preempted by an interrupt for something else. Returns whether the
    /// next pick gives the CPU to the other one.
    fn other_runs_after(ran: u64) -> bool {
        let tasks = two_threads();
        let mut rq = RunQueue::new(true);
        // SAFETY: the tasks are alive for the whole test, belong to the queue's CPU, and
        // nothing else touches their scheduling state.
        unsafe {
            for t in &tasks {
                fe(t).request = BASE_SLICE;
                rq.enqueue(t, 0);
            }
            let first = rq.pick_next(0).unwrap();
            rq.put_prev(first, ran, Stop::Preempted);
            rq.enqueue(first, ran);
            !ptr::eq(rq.pick_next(ran).unwrap(), first)
        }
    }

    #[test]
    fn an_interrupted_thread_runs_to_parity_only_while_the_other_is_owed_little() {
        // 80 µs in, the other is owed 40 µs (under the granularity): the first keeps its
        // request.
        assert!(!other_runs_after(80_000));
        // 1 ms in, the first is 0.5 ms ahead of its share and the other is owed 0.5 ms:
        // the other runs, though its deadline is no earlier.
        assert!(other_runs_after(MS));
    }
}
