//! The normal scheduling class (priority 0): round-robin for now.
//!
//! Kept behind this small interface — enqueue, pick, remove — because it becomes a fair
//! class (virtual time, weights, wakeup preemption; DESIGN.md §5) without its callers
//! changing.

use super::list::TaskList;
use crate::task::Task;

pub(crate) struct NormalQueue {
    fifo: TaskList,
}

impl NormalQueue {
    pub(crate) const fn new() -> NormalQueue {
        NormalQueue {
            fifo: TaskList::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fifo.is_empty()
    }

    /// # Safety
    /// As for `TaskList::push_back`.
    pub(crate) unsafe fn enqueue(&mut self, t: *const Task) {
        // SAFETY: forwarded.
        unsafe { self.fifo.push_back(t) }
    }

    /// # Safety
    /// As for `TaskList::pop_front`.
    pub(crate) unsafe fn pick_next(&mut self) -> Option<*const Task> {
        // SAFETY: forwarded.
        unsafe { self.fifo.pop_front() }
    }

    /// # Safety
    /// As for `TaskList::remove`.
    pub(crate) unsafe fn remove(&mut self, t: *const Task) {
        // SAFETY: forwarded.
        unsafe { self.fifo.remove(t) }
    }
}
