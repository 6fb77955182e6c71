//! Fixed priorities, as in Linux: 0 is the normal class, 1..=99 real-time (higher first).

/// A green thread's scheduling priority.
///
/// `0` ([`Priority::DEFAULT`]) is the normal class, where most threads live; `1..=99`
/// are real-time priorities that always run before it, higher first, FIFO among equals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Priority(u8);

impl Priority {
    /// The normal class: priority 0.
    pub const DEFAULT: Priority = Priority(0);
    /// The highest real-time priority: 99.
    pub const MAX: Priority = Priority(99);
    /// The deadline class's level, above every fixed priority: deadline threads are
    /// queued by deadline (`sched::deadline`), and a thread that inherits from one
    /// (priority inheritance) runs here, FIFO, after them.
    pub(crate) const DEADLINE: Priority = Priority(100);
    /// Interrupt level, above every thread's priority: a thread woken by the epoll
    /// device under `Builder::napi(false)` runs at it until it blocks again, as receive
    /// processing ran in interrupt context before NAPI (`io::device`). Never a
    /// thread's base priority.
    pub(crate) const IRQ: Priority = Priority(101);
    /// Number of run-queue levels: the priorities 0..=99, [`Priority::DEADLINE`] and
    /// [`Priority::IRQ`].
    pub(crate) const LEVELS: usize = 102;

    /// Priority `p`: 0 is the normal class, 1..=99 real-time.
    ///
    /// # Panics
    /// If `p > 99`. Use [`Priority::try_new`] for values that come from outside.
    #[track_caller]
    pub const fn new(p: u8) -> Priority {
        match Priority::try_new(p) {
            Some(p) => p,
            None => panic!("preempt: priority out of range (0..=99)"),
        }
    }

    /// Priority `p`, or `None` if `p > 99`.
    pub const fn try_new(p: u8) -> Option<Priority> {
        if p > Self::MAX.0 {
            None
        } else {
            Some(Priority(p))
        }
    }

    /// The numeric priority, 0..=99.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether this is a real-time priority (1..=99).
    pub const fn is_realtime(self) -> bool {
        self.0 > 0
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
