//! The lock-free per-CPU wake list (invariant 5).
//!
//! Wakeups that do not come from the CPU itself — a plain OS thread calling `unpark`, a
//! spawn from outside, later other CPUs — cannot touch its run queue. They push the task
//! here (a Treiber stack: one CAS, any number of producers) and the CPU takes the whole
//! list with one swap when it next schedules or idles, reversing it to restore arrival
//! order. Only the owning CPU consumes, and it takes everything at once, so the stack
//! has no ABA problem.
//!
//! Each entry owns one strong reference to its node (pushed with `Arc::into_raw`, taken
//! back by the consumer): a node may stop being runnable, or even finish, while an entry
//! for it is still in flight.

use crate::loom::sync::atomic::{AtomicPtr, Ordering};
use std::ptr;
use std::sync::Arc;

/// A node that can sit on a wake list: it carries its own link.
pub trait WakeNode {
    /// The link this node is chained by while it is on a list.
    fn wake_next(&self) -> &AtomicPtr<Self>
    where
        Self: Sized;
}

/// A multi-producer, single-consumer list of nodes to wake; see the module docs.
pub struct WakeList<T: WakeNode> {
    head: AtomicPtr<T>,
}

impl<T: WakeNode> WakeList<T> {
    /// An empty list.
    pub fn new() -> Self {
        WakeList {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pushes `node`. The caller guarantees `node` is on no wake list (its own flag).
    ///
    /// `SeqCst`: the push must be ordered before the pusher's later read of the CPU's
    /// idle flag, against the CPU's write of that flag and its re-check of this list
    /// (the doorbell protocol in `sched`).
    pub fn push(&self, node: Arc<T>) {
        let node = Arc::into_raw(node).cast_mut();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: we own the node's entry; nobody reads its link until the CAS below
            // publishes it.
            unsafe { (*node).wake_next().store(head, Ordering::Relaxed) };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Whether the list is empty (`SeqCst`: the idle path's re-check).
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::SeqCst).is_null()
    }

    /// A cheap look for the consumer's fast path; a push it misses is seen at the next
    /// look (the idle path uses the `SeqCst` [`is_empty`](Self::is_empty)).
    #[inline]
    pub fn is_empty_relaxed(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every entry, oldest first. Only the owning CPU calls this.
    pub fn take_all(&self) -> Drain<T> {
        if self.head.load(Ordering::Relaxed).is_null() {
            return Drain { next: ptr::null() };
        }
        let mut p = self.head.swap(ptr::null_mut(), Ordering::SeqCst);
        // Reverse the LIFO chain into arrival order.
        let mut rev: *mut T = ptr::null_mut();
        while !p.is_null() {
            // SAFETY: every node on the chain is kept alive by its entry's reference,
            // and after the swap the chain is ours alone.
            let next = unsafe { (*p).wake_next().load(Ordering::Relaxed) };
            // SAFETY: as above.
            unsafe { (*p).wake_next().store(rev, Ordering::Relaxed) };
            rev = p;
            p = next;
        }
        Drain { next: rev }
    }
}

/// The taken entries, oldest first; each yields the entry's strong reference.
pub struct Drain<T: WakeNode> {
    next: *const T,
}

impl<T: WakeNode> Iterator for Drain<T> {
    type Item = Arc<T>;
    fn next(&mut self) -> Option<Arc<T>> {
        if self.next.is_null() {
            return None;
        }
        let p = self.next;
        // SAFETY: the chain is ours (see take_all); the link is read before the node's
        // reference is handed out.
        self.next = unsafe { (*p).wake_next().load(Ordering::Relaxed) };
        // SAFETY: this entry's reference was made by Arc::into_raw in push.
        Some(unsafe { Arc::from_raw(p) })
    }
}

impl<T: WakeNode> Drop for Drain<T> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

impl<T: WakeNode> std::fmt::Debug for WakeList<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeList")
            .field("empty", &self.is_empty_relaxed())
            .finish()
    }
}

impl<T: WakeNode> std::fmt::Debug for Drain<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain").finish_non_exhaustive()
    }
}

impl<T: WakeNode> Drop for WakeList<T> {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

/// Single-process checks of the list's pointer handling, for Miri (`.ci/run`): every
/// entry's reference comes back exactly once, in each producer's order, and none leaks.
/// The interleavings themselves are `tests/loom_wake.rs`'s.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Node {
        producer: usize,
        seq: usize,
        next: AtomicPtr<Node>,
    }

    impl WakeNode for Node {
        fn wake_next(&self) -> &AtomicPtr<Self> {
            &self.next
        }
    }

    fn node(producer: usize, seq: usize) -> Arc<Node> {
        Arc::new(Node {
            producer,
            seq,
            next: AtomicPtr::new(ptr::null_mut()),
        })
    }

    #[test]
    fn entries_come_back_in_arrival_order_and_hand_back_their_references() {
        let list = WakeList::new();
        let nodes: Vec<_> = (0..5).map(|i| node(0, i)).collect();
        for n in &nodes {
            list.push(n.clone());
        }
        assert!(!list.is_empty());
        let seqs: Vec<_> = list.take_all().map(|n| n.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert!(list.is_empty());
        assert!(nodes.iter().all(|n| Arc::strong_count(n) == 1));
    }

    #[test]
    fn entries_left_behind_are_released() {
        let n = node(0, 0);
        let m = node(0, 1);
        let list = WakeList::new();
        list.push(n.clone());
        list.push(m.clone());
        // A drain dropped half-way releases the rest; a list dropped full, all of it.
        let mut d = list.take_all();
        assert_eq!(d.next().map(|x| x.seq), Some(0));
        drop(d);
        list.push(n.clone());
        drop(list);
        assert_eq!((Arc::strong_count(&n), Arc::strong_count(&m)), (1, 1));
    }

    #[test]
    fn concurrent_producers_lose_nothing_and_keep_their_order() {
        const PRODUCERS: usize = 3;
        const EACH: usize = 20;
        let list = Arc::new(WakeList::new());
        let done = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (list, done) = (list.clone(), done.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        list.push(node(p, i));
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // The consumer drains while the producers push.
        let mut next = [0; PRODUCERS];
        loop {
            let finished = done.load(Ordering::SeqCst) == PRODUCERS;
            for n in list.take_all() {
                assert_eq!(n.seq, next[n.producer], "producer {}'s order", n.producer);
                next[n.producer] += 1;
            }
            if finished {
                break;
            }
            std::thread::yield_now();
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(next, [EACH; PRODUCERS]);
        assert!(list.is_empty());
    }
}
