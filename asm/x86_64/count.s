// Interrupt-atomic updates of `preempt_count`, for x86_64 (System V ABI), Intel syntax.
//
// Included by runtime/arch/x86_64.rs with `global_asm!(include_str!(..), options(raw))`.
//
// The timer interrupt (the SIGALRM handler) runs on the carrier between any two of its
// instructions and may set NEED_RESCHED in the word. A load-modify-store sequence that
// it lands in the middle of would write back the old word and lose that request. A
// single read-modify-write instruction on memory cannot be split by a signal, which is
// delivered only at instruction boundaries — the kernel's `raw_cpu_add_4`, which
// updates its per-CPU `__preempt_count` with one `add` and no `lock` prefix for the
// same reason. No `lock` here either: the word belongs to one OS thread, and only that
// thread and its signal handler touch it.
//
// All take the word's address in rdi (the carrier's thread-local, looked up afresh by
// the Rust caller: invariant 8) and an operand in esi. None touches the stack, so none
// needs CFI beyond the default.

    .text

// void preempt_count_add(u32 *word /* rdi */, u32 v /* esi */)
    .globl  preempt_count_add
    .hidden preempt_count_add                  // local to the final binary: direct calls, no GOT
    .type   preempt_count_add,@function
    .p2align 4
preempt_count_add:
    .cfi_startproc
    add     dword ptr [rdi], esi        // the one indivisible update
    ret
    .cfi_endproc
    .size   preempt_count_add, .-preempt_count_add

// u32 preempt_count_sub(u32 *word /* rdi */, u32 v /* esi */) -> the word after
//
// The word is read again after the update: a handler that ran in between has only
// added NEED_RESCHED, which the caller must then see.
    .globl  preempt_count_sub
    .hidden preempt_count_sub                  // local to the final binary: direct calls, no GOT
    .type   preempt_count_sub,@function
    .p2align 4
preempt_count_sub:
    .cfi_startproc
    sub     dword ptr [rdi], esi        // the one indivisible update
    mov     eax, dword ptr [rdi]        // the word now, NEED_RESCHED included
    ret
    .cfi_endproc
    .size   preempt_count_sub, .-preempt_count_sub

// void preempt_count_and(u32 *word /* rdi */, u32 mask /* esi */)
    .globl  preempt_count_and
    .hidden preempt_count_and                  // local to the final binary: direct calls, no GOT
    .type   preempt_count_and,@function
    .p2align 4
preempt_count_and:
    .cfi_startproc
    and     dword ptr [rdi], esi        // the one indivisible update
    ret
    .cfi_endproc
    .size   preempt_count_and, .-preempt_count_and
