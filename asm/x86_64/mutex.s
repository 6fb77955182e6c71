// The mutex fast path's critical window, for x86_64 (System V ABI), Intel syntax.
//
// Included by runtime/arch/x86_64.rs with `global_asm!(include_str!(..), options(raw))`.
//
// Taking a `preempt::sync::Mutex` must record the owner before any waiter can run: a
// waiter that found the word taken but the owner not yet recorded could not lend it
// its priority. Instead of disabling preemption around the two stores (two calls and
// two updates of preempt_count), the fast path runs here, and the timer interrupt
// never preempts a thread whose PC lies in [preempt_mutex_trylock,
// preempt_mutex_trylock_end) — it defers, as for foreign code — a restartable-
// sequence-like critical section (Linux's rseq makes the same trade).

    .text

// u32 preempt_mutex_trylock(u64 *word /* rdi */, u64 id /* rsi */,
//                           const void **owner_slot /* rdx */, const void *owner /* rcx */)
//
// If *word == 0: *word = id (Acquire: a locked cmpxchg), then *owner_slot = owner;
// returns 1. Otherwise returns 0 and writes nothing.
    .globl  preempt_mutex_trylock
    .hidden preempt_mutex_trylock       // local to the final binary: direct calls, no GOT
    .type   preempt_mutex_trylock,@function
    .p2align 4
preempt_mutex_trylock:
    .cfi_startproc
    xor     eax, eax                    // expected: unlocked
    lock cmpxchg qword ptr [rdi], rsi   // take the word if it is 0
    jne     2f
    mov     qword ptr [rdx], rcx        // the owner, before anyone can look
    mov     eax, 1
    ret
2:
    xor     eax, eax                    // taken by someone else
    ret
    .cfi_endproc
    .size   preempt_mutex_trylock, .-preempt_mutex_trylock

// The end of the window (the first address after it).
    .globl  preempt_mutex_trylock_end
    .hidden preempt_mutex_trylock_end
preempt_mutex_trylock_end:
