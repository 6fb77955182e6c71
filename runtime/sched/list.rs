//! An intrusive FIFO of tasks, linked through their scheduler entities.
//!
//! Queueing never allocates (invariant 4). Every operation requires the caller to be
//! the tasks' CPU with preemption disabled: the links live in `Task::se`.

use crate::task::Task;
use std::ptr;

pub(crate) struct TaskList {
    head: *const Task,
    tail: *const Task,
}

impl TaskList {
    pub(crate) const fn new() -> TaskList {
        TaskList {
            head: ptr::null(),
            tail: ptr::null(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Appends `t`.
    ///
    /// # Safety
    /// `t` is alive, on no list, and the caller owns this CPU's scheduler state.
    pub(crate) unsafe fn push_back(&mut self, t: *const Task) {
        // SAFETY: per the contract, t and the tail are live tasks of this CPU.
        unsafe {
            let se = (*t).se();
            se.next = ptr::null();
            se.prev = self.tail;
            if self.tail.is_null() {
                self.head = t;
            } else {
                (*self.tail).se().next = t;
            }
        }
        self.tail = t;
    }

    /// Removes and returns the first task.
    ///
    /// # Safety
    /// As for [`push_back`](Self::push_back).
    pub(crate) unsafe fn pop_front(&mut self) -> Option<*const Task> {
        if self.head.is_null() {
            return None;
        }
        let t = self.head;
        // SAFETY: t is on this list, hence alive and ours.
        unsafe { self.remove(t) };
        Some(t)
    }

    /// Unlinks `t`, which must be on this list.
    ///
    /// # Safety
    /// `t` is on this list; the caller owns this CPU's scheduler state.
    pub(crate) unsafe fn remove(&mut self, t: *const Task) {
        // SAFETY: t and its neighbours are on this list, hence alive and ours.
        unsafe {
            let se = (*t).se();
            let (prev, next) = (se.prev, se.next);
            se.prev = ptr::null();
            se.next = ptr::null();
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).se().next = next;
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).se().prev = prev;
            }
        }
    }
}
