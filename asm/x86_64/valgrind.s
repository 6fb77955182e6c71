// Valgrind client requests, for x86_64 (System V ABI), Intel syntax.
//
// Included by runtime/arch/x86_64.rs with `global_asm!(include_str!(..), options(raw))`.
//
// Under Valgrind the rotate sequence below is the marker its JIT recognises ("special
// instruction preamble", valgrind.h): the `xchg rbx, rbx` that follows becomes a
// request to the tool, whose code is the first of the six words rax points to and
// whose answer comes back in rdx. Natively the four rotations of rdi add up to 128
// bits, a no-op, and `xchg rbx, rbx` changes nothing: rdx keeps the default the caller
// passed. The runtime uses it to register green-thread stacks, so memcheck knows a
// switch of rsp between them for what it is (VG_USERREQ__STACK_REGISTER).
//
// No stack use, no callee-saved register touched.

    .text

// u64 preempt_valgrind_request(const u64 args[6] /* rdi */, u64 dflt /* rsi */)
    .globl  preempt_valgrind_request
    .hidden preempt_valgrind_request           // local to the final binary: direct calls, no GOT
    .type   preempt_valgrind_request,@function
    .p2align 4
preempt_valgrind_request:
    .cfi_startproc
    mov     rax, rdi                    // the request block
    mov     rdx, rsi                    // the answer when not under Valgrind
    rol     rdi, 3                      // the preamble: 3 + 13 + 61 + 51 = 128,
    rol     rdi, 13                     //   rdi comes out unchanged
    rol     rdi, 61
    rol     rdi, 51
    xchg    rbx, rbx                    // the request: rdx = tool(rax)
    mov     rax, rdx                    // return the answer
    ret
    .cfi_endproc
    .size   preempt_valgrind_request, .-preempt_valgrind_request
