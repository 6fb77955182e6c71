// Asynchronous preemption stub for x86_64 (System V ABI), Intel syntax.
//
// The timer interrupt's handler (runtime/irq/mod.rs) does not switch threads itself.
// When it decides to preempt, it rewrites the interrupted context so that, after
// sigreturn, the thread continues *here* instead of at the interrupted instruction:
//
//   * RSP := interrupted RSP - 128 (red zone, left untouched) - 8 (a return slot);
//   * RIP := preempt_irq_stub;
//   * the interrupted RIP is kept in a per-carrier variable, read back by
//     `preempt_irq_entry` (the handler must not write the return slot: it lies inside
//     the kernel's signal frame, whose saved FPU state sigreturn still has to read);
//   * preempt_count := the scheduler's offset, so a tick landing in this stub before
//     the scheduler runs sees atomic context and only sets NEED_RESCHED.
//
// Every register holds the interrupted thread's value on entry. The stub saves what
// a Rust call may clobber — flags, the nine caller-saved GPRs, the whole extended
// state with XSAVE (x87, SSE, AVX, AVX-512, mask registers, MXCSR) — calls
// `preempt_irq_entry` (which schedules and returns the interrupted RIP and the
// address of the carrier's preempt_count, still raised), restores the extended state,
// lowers the count with one instruction, restores the rest, and `ret 128` returns to
// the interrupted instruction with RSP exactly as it was. Callee-saved GPRs need no
// saving here: Rust code and the switch preserve them.
//
// The way back, from `preempt_irq_stub_return` to the end, is not preemptible: a
// redirect there would build a second frame of the stub on top of this one (5.4 KiB
// each), and a thread that met ticks there repeatedly would overflow its stack. The
// handler recognises the range by the interrupted RIP and defers, setting NEED_RESCHED
// (before the `sub` the count is raised and it would defer anyway). The lowering looks
// for that flag and, if it is all the word holds, schedules again — the request, and
// the one-shot that carried it, would be lost otherwise — so only a tick that lands
// after the look (`preempt_irq_stub_checked`: a dozen short instructions) needs the
// device to retry soon. The long XRSTOR comes before the look: the device's
// interrupt, timed by a peer that answers the thread just switched out, tends to land
// just as the thread it preempted is resumed.
//
// Frame, from the entry RSP downwards (addresses grow up):
//
//   entry+136  interrupted RSP
//   entry+8 .. +136  the interrupted code's red zone (128 bytes, untouched)
//   entry+0    return slot  <- filled with the interrupted RIP before `ret 128`
//   entry-8    RFLAGS
//   entry-16   rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11 (down to entry-80)
//   entry-88   rbp                               <- rbp points here
//   entry-96   the count's address, on the way back (in the padding: the XSAVE area
//              ends at least 64 bytes below rbp)
//   ...        padding to 64-byte alignment
//   rsp        XSAVE area (PREEMPT_XSAVE_AREA bytes, 64-byte aligned)
//
// The offsets shared with Rust (STUB_SLOT_FROM_RBP, STUB_XSAVE_RESERVE) are
// const-asserted in runtime/arch/x86_64.rs.

    .text
    .globl  preempt_irq_stub
    .hidden preempt_irq_stub                  // local to the final binary: direct calls, no GOT
    .type   preempt_irq_stub,@function
    .p2align 4
preempt_irq_stub:
    .cfi_startproc
    .cfi_signal_frame                   // unwinders: the caller was interrupted, not calling
    .cfi_def_cfa rsp, 136               // CFA = interrupted RSP
    .cfi_offset rip, -136               // the return slot (valid once filled)
    pushfq                              // flags first: the `and`/`xor` below clobber them
    .cfi_adjust_cfa_offset 8
    push    rax
    .cfi_adjust_cfa_offset 8
    push    rcx
    .cfi_adjust_cfa_offset 8
    push    rdx
    .cfi_adjust_cfa_offset 8
    push    rsi
    .cfi_adjust_cfa_offset 8
    push    rdi
    .cfi_adjust_cfa_offset 8
    push    r8
    .cfi_adjust_cfa_offset 8
    push    r9
    .cfi_adjust_cfa_offset 8
    push    r10
    .cfi_adjust_cfa_offset 8
    push    r11
    .cfi_adjust_cfa_offset 8
    push    rbp
    .cfi_adjust_cfa_offset 8
    .cfi_offset rbp, -224               // 136 + 88
    mov     rbp, rsp                    // frame base for the restore path
    .cfi_def_cfa rbp, 224
    sub     rsp, 5120                   // STUB_XSAVE_RESERVE: area + alignment slack
    and     rsp, -64                    // XSAVE needs 64-byte alignment
    xor     eax, eax                    // zero the XSAVE header (bytes 512..575):
    mov     [rsp + 512], rax            // XRSTOR faults on a non-zero XCOMP_BV or
    mov     [rsp + 520], rax            // reserved bytes, and XSAVE leaves them as
    mov     [rsp + 528], rax            // they were
    mov     [rsp + 536], rax
    mov     [rsp + 544], rax
    mov     [rsp + 552], rax
    mov     [rsp + 560], rax
    mov     [rsp + 568], rax
    mov     eax, -1                     // requested-feature bitmap EDX:EAX: everything
    mov     edx, -1                     // XCR0 enables
    xsave64 [rsp]
    cld                                 // the ABI requires DF clear at a call
    xor     edi, edi                    // first entry: the interrupted RIP is in SAVED_RIP
.Lschedule:
    call    preempt_irq_entry           // schedules; returns the interrupted RIP in rax,
    .globl  preempt_irq_stub_return     // the count's address in rdx
    .hidden preempt_irq_stub_return
preempt_irq_stub_return:
    mov     [rbp + 88], rax             // the return slot: entry RSP = rbp + 88
    mov     [rbp - 8], rdx              // the count's address
    mov     eax, -1
    mov     edx, -1
    xrstor64 [rsp]                      // with the count still raised
    mov     rax, [rbp - 8]              // (rax, rdx and the flags are restored below)
    sub     dword ptr [rax], 1          // SCHED_OFFSET: one instruction (see count.s)
    cmp     dword ptr [rax], 0x80000000 // NEED_RESCHED alone: a tick deferred after the
    .globl  preempt_irq_stub_checked    // scheduler's last look
    .hidden preempt_irq_stub_checked
preempt_irq_stub_checked:
    jne     .Lrestore
    add     dword ptr [rax], 1          // raised again, to schedule once more (the
    mov     eax, -1                     // kernel's preempt_schedule_irq loop), with the
    mov     edx, -1                     // state just restored saved again
    xsave64 [rsp]
    mov     rdi, [rbp + 88]
    jmp     .Lschedule
.Lrestore:
    mov     rsp, rbp
    pop     rbp
    pop     r11
    pop     r10
    pop     r9
    pop     r8
    pop     rdi
    pop     rsi
    pop     rdx
    pop     rcx
    pop     rax
    popfq
    ret     128                         // RIP := slot; RSP := interrupted RSP
    .globl  preempt_irq_stub_end
    .hidden preempt_irq_stub_end
preempt_irq_stub_end:
    .cfi_endproc
    .size   preempt_irq_stub, .-preempt_irq_stub
