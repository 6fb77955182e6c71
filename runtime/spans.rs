//! `tracing` spans per green thread (HAZARDS.md H19).
//!
//! A `tracing` subscriber keeps its "current span" per OS thread (tracing-subscriber's
//! `Registry` keeps a thread-local stack of entered spans), and the dispatcher guards
//! against re-entrance per OS thread. Green threads of one CPU share its OS thread, so
//! under `Model::Full`:
//!
//! * a thread preempted while it has a span entered leaves that span current for the
//!   next thread of the CPU, whose events then get the wrong parent;
//! * a thread preempted *inside* a subscriber call leaves the dispatcher's re-entrance
//!   guard set, and the next thread's events are silently dropped.
//!
//! [`PerThreadSpans`] wraps any subscriber to fix both, without the runtime ever calling
//! a subscriber on its switch path (invariant 4). Every call into the wrapped subscriber
//! runs with preemption disabled, so none is ever interrupted half-way. And each green
//! thread's entered spans are kept in a task-local: when a call comes from another green
//! thread than the last one that used the subscriber on this CPU, the wrapper first
//! exits the previous thread's spans in the inner subscriber and re-enters the caller's
//! — a lazy context switch of span stacks, done in ordinary context, inside the
//! subscriber call. Calls from plain OS threads pass straight through.
//!
//! ```
//! use preempt::spans::PerThreadSpans;
//! let subscriber = PerThreadSpans::new(tracing_subscriber::fmt().finish());
//! tracing::subscriber::set_global_default(subscriber).unwrap();
//! ```

use crate::task_local;
use std::cell::RefCell;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

task_local! {
    /// The spans this green thread has entered, innermost last.
    static MINE: RefCell<Vec<Id>> = RefCell::new(Vec::new());
}

thread_local! {
    /// What the inner subscriber has entered on this OS thread, and for which green
    /// thread (0: none). Touched only with preemption disabled (per-CPU data).
    static ENTERED: RefCell<(u64, Vec<Id>)> = const { RefCell::new((0, Vec::new())) };
}

/// Wraps a `tracing` subscriber so that spans and events are attributed per green
/// thread and no subscriber call is ever preempted half-way; see the module docs.
#[derive(Debug)]
pub struct PerThreadSpans<S> {
    inner: S,
}

impl<S: Subscriber> PerThreadSpans<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        PerThreadSpans { inner }
    }

    /// The wrapped subscriber.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Runs `f` with preemption disabled, after making the inner subscriber's entered
    /// spans those of the calling green thread.
    fn call<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        let _g = crate::disable();
        let Some(me) = crate::sched::current_task() else {
            return f(&self.inner); // a plain OS thread: nothing to switch
        };
        // SAFETY: the current task is alive while it runs.
        let me_id = unsafe { (*me).id.as_u64().get() };
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if e.0 != me_id {
                for id in e.1.drain(..).rev() {
                    self.inner.exit(&id);
                }
                let mine = MINE.with(|m| m.borrow().clone());
                for id in &mine {
                    self.inner.enter(id);
                }
                *e = (me_id, mine);
            }
        });
        f(&self.inner)
    }
}

impl<S: Subscriber> Subscriber for PerThreadSpans<S> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        let _g = crate::disable();
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let _g = crate::disable();
        self.inner.enabled(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.inner.max_level_hint()
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.call(|s| s.new_span(span))
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.call(|s| s.record(span, values))
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.call(|s| s.record_follows_from(span, follows))
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.call(|s| s.event_enabled(event))
    }

    fn event(&self, event: &Event<'_>) {
        self.call(|s| s.event(event))
    }

    fn enter(&self, span: &Id) {
        self.call(|s| {
            s.enter(span);
            if crate::sched::current_task().is_some() {
                MINE.with(|m| m.borrow_mut().push(span.clone()));
                ENTERED.with(|e| e.borrow_mut().1.push(span.clone()));
            }
        })
    }

    fn exit(&self, span: &Id) {
        self.call(|s| {
            s.exit(span);
            if crate::sched::current_task().is_some() {
                let remove = |v: &mut Vec<Id>| {
                    if let Some(i) = v.iter().rposition(|x| x == span) {
                        v.remove(i);
                    }
                };
                MINE.with(|m| remove(&mut m.borrow_mut()));
                ENTERED.with(|e| remove(&mut e.borrow_mut().1));
            }
        })
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.call(|s| s.clone_span(id))
    }

    fn try_close(&self, id: Id) -> bool {
        self.call(|s| s.try_close(id))
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.call(|s| s.current_span())
    }

    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded to the inner subscriber under the same contract.
        unsafe { self.inner.downcast_raw(id) }
    }
}
