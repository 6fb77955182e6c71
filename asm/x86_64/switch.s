// Context switch and thread entry for x86_64 (System V ABI), Intel syntax.
//
// Included by runtime/arch/x86_64.rs with `global_asm!(include_str!(..), options(raw))`;
// every offset below that Rust also uses is a named, const-asserted constant there.
//
// A switched-out thread keeps its state on its own stack; its `Context` holds only
// the stack pointer. The saved frame, as `preempt_switch` leaves it (addresses grow up):
//
//        +--------------------------+
//   +56  | return address           |  <- where the thread resumes (`ret`)
//   +48  | rbp                      |
//   +40  | rbx                      |
//   +32  | r12                      |
//   +24  | r13                      |
//   +16  | r14                      |
//   + 8  | r15                      |
//   + 0  | MXCSR (4) | x87 CW (2) | |  <- Context.rsp
//        +--------------------------+
//
// That is exactly what the ABI says a callee must preserve: rbx, rbp, r12-r15, rsp,
// the control bits of MXCSR and the x87 control word. Everything else is
// caller-saved, and `preempt_switch` is an ordinary call, so the compiler has already
// spilled whatever it needs. (Asynchronous preemption, which interrupts code at an
// arbitrary instruction, saves the rest itself before it calls into the scheduler.)

    .text

// void preempt_switch(Context *from /* rdi */, const Context *to /* rsi */)
//
// Saves the running thread into `from` and resumes the thread saved in `to`.
// Returns when some other thread switches back to `from`.
    .globl  preempt_switch
    .hidden preempt_switch                  // local to the final binary: direct calls, no GOT
    .type   preempt_switch,@function
    .p2align 4
preempt_switch:
    .cfi_startproc
    push    rbp                         // callee-saved GPRs, in frame order
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    push    rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
    push    r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r12, 0
    push    r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r13, 0
    push    r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r14, 0
    push    r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r15, 0
    sub     rsp, 8                      // slot for the two FP control words
    .cfi_adjust_cfa_offset 8
    stmxcsr [rsp]                       // MXCSR: rounding mode, exception masks, DAZ/FTZ
    fnstcw  [rsp + 4]                   // x87 control word: precision and rounding
    mov     [rdi], rsp                  // from->rsp = our frame

    mov     rsp, [rsi]                  // adopt the other thread's frame
    ldmxcsr [rsp]                       // and its FP control state
    fldcw   [rsp + 4]
    add     rsp, 8
    pop     r15
    pop     r14
    pop     r13
    pop     r12
    pop     rbx
    pop     rbp
    ret                                 // resume it where it called preempt_switch
                                        // (or, for a new thread, enter the trampoline)
    .cfi_endproc
    .size   preempt_switch, .-preempt_switch

// The first instruction of every green thread.
//
// A new stack is prepared (runtime/arch/x86_64.rs, `init_stack`) so that the first
// switch to it pops a frame holding: rbx = entry function, r12 = its argument,
// rbp = 0, and "returns" here with rsp 16-byte aligned. The entry function never
// returns: it ends by switching away for good.
//
// `.cfi_undefined rip` tells unwinders (libgcc's, gdb, perf) that this frame has no
// caller, so a backtrace taken inside a green thread ends cleanly here instead of
// wandering into whatever memory lies above the stack.
    .globl  preempt_thread_entry
    .hidden preempt_thread_entry                  // local to the final binary: direct calls, no GOT
    .type   preempt_thread_entry,@function
    .p2align 4
preempt_thread_entry:
    .cfi_startproc
    .cfi_undefined rip
    mov     rdi, r12                    // argument: the start record on this stack
    call    rbx                         // entry(arg) -> !
    ud2                                 // unreachable: the entry function never returns
    .cfi_endproc
    .size   preempt_thread_entry, .-preempt_thread_entry
