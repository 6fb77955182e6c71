//! HAZARDS.md H6 and H7 under `Model::Full` with the fastest tick: every register and
//! the red zone survive asynchronous preemption.
//!
//! Several green threads each run one long asm block that holds its own sentinels in
//! all 32 zmm registers (so the upper halves of ymm and zmm too), the 8 mask registers,
//! a non-default MXCSR rounding mode, and a 120-byte pattern in the red zone below RSP
//! (its lowest word holds the MXCSR scratch) —
//! a leaf that never moves RSP — while the tick preempts it and switches to the others.
//! At the end the block stores everything and the test compares.
//!
//! CI runs ≥ 10^5 preemptions; `PREEMPT_TORTURE_PREEMPTIONS=1000000` runs the long one.

mod support;

use preempt::{Model, Runtime, thread};
use std::arch::asm;
use std::time::{Duration, Instant};

const THREADS: u64 = 4;

/// What one asm block left behind.
#[repr(C, align(64))]
struct Dump {
    zmm: [[u64; 8]; 32],
    k: [u64; 8],
    red_zone: [u64; 15],
    mxcsr: u32,
}

/// Fills the registers from `seed`, spins `spins` iterations, dumps them.
///
/// # Safety
/// Needs AVX-512F and AVX-512BW (checked by the caller).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn hold_registers(seed: u64, spins: u64, dump: &mut Dump) {
    let rc = (seed & 3) << 13; // MXCSR rounding control: one mode per thread
    // SAFETY: the asm saves and restores MXCSR, declares every vector and mask register
    // it writes as clobbered, and uses the red zone only as a leaf (no call, no push).
    unsafe {
        asm!(
            // MXCSR: keep the caller's, install ours.
            "stmxcsr [rsp - 128]",
            "mov eax, [rsp - 128]",
            "mov r11d, eax",
            "and eax, 0xffff9fff",
            "or eax, {rc:e}",
            "mov [rsp - 128], eax",
            "ldmxcsr [rsp - 128]",
            // Red zone: 15 words below RSP.
            "mov rax, {seed}",
            "mov rcx, 15",
            "2:",
            "mov [rsp + rcx*8 - 128], rax",
            "inc rax",
            "dec rcx",
            "jnz 2b",
            // zmm_i = broadcast(seed * 64 + i), k_i = seed ^ (i << 56).
            "mov rax, {seed}",
            "shl rax, 6",
            "vpbroadcastq zmm0, rax",  "inc rax", "vpbroadcastq zmm1, rax",  "inc rax",
            "vpbroadcastq zmm2, rax",  "inc rax", "vpbroadcastq zmm3, rax",  "inc rax",
            "vpbroadcastq zmm4, rax",  "inc rax", "vpbroadcastq zmm5, rax",  "inc rax",
            "vpbroadcastq zmm6, rax",  "inc rax", "vpbroadcastq zmm7, rax",  "inc rax",
            "vpbroadcastq zmm8, rax",  "inc rax", "vpbroadcastq zmm9, rax",  "inc rax",
            "vpbroadcastq zmm10, rax", "inc rax", "vpbroadcastq zmm11, rax", "inc rax",
            "vpbroadcastq zmm12, rax", "inc rax", "vpbroadcastq zmm13, rax", "inc rax",
            "vpbroadcastq zmm14, rax", "inc rax", "vpbroadcastq zmm15, rax", "inc rax",
            "vpbroadcastq zmm16, rax", "inc rax", "vpbroadcastq zmm17, rax", "inc rax",
            "vpbroadcastq zmm18, rax", "inc rax", "vpbroadcastq zmm19, rax", "inc rax",
            "vpbroadcastq zmm20, rax", "inc rax", "vpbroadcastq zmm21, rax", "inc rax",
            "vpbroadcastq zmm22, rax", "inc rax", "vpbroadcastq zmm23, rax", "inc rax",
            "vpbroadcastq zmm24, rax", "inc rax", "vpbroadcastq zmm25, rax", "inc rax",
            "vpbroadcastq zmm26, rax", "inc rax", "vpbroadcastq zmm27, rax", "inc rax",
            "vpbroadcastq zmm28, rax", "inc rax", "vpbroadcastq zmm29, rax", "inc rax",
            "vpbroadcastq zmm30, rax", "inc rax", "vpbroadcastq zmm31, rax",
            "mov rax, {seed}",
            "btc rax, 56", "kmovq k1, rax", "btc rax, 57",
            "kmovq k2, rax", "btc rax, 58", "kmovq k3, rax", "btc rax, 59",
            "kmovq k4, rax", "btc rax, 60", "kmovq k5, rax", "btc rax, 61",
            "kmovq k6, rax", "btc rax, 62", "kmovq k7, rax",
            // Spin: the tick preempts us in here, many times.
            "mov rcx, {spins}",
            "3:",
            "pause",
            "dec rcx",
            "jnz 3b",
            // Dump.
            "vmovdqa64 [{d} + 0*64], zmm0",   "vmovdqa64 [{d} + 1*64], zmm1",
            "vmovdqa64 [{d} + 2*64], zmm2",   "vmovdqa64 [{d} + 3*64], zmm3",
            "vmovdqa64 [{d} + 4*64], zmm4",   "vmovdqa64 [{d} + 5*64], zmm5",
            "vmovdqa64 [{d} + 6*64], zmm6",   "vmovdqa64 [{d} + 7*64], zmm7",
            "vmovdqa64 [{d} + 8*64], zmm8",   "vmovdqa64 [{d} + 9*64], zmm9",
            "vmovdqa64 [{d} + 10*64], zmm10", "vmovdqa64 [{d} + 11*64], zmm11",
            "vmovdqa64 [{d} + 12*64], zmm12", "vmovdqa64 [{d} + 13*64], zmm13",
            "vmovdqa64 [{d} + 14*64], zmm14", "vmovdqa64 [{d} + 15*64], zmm15",
            "vmovdqa64 [{d} + 16*64], zmm16", "vmovdqa64 [{d} + 17*64], zmm17",
            "vmovdqa64 [{d} + 18*64], zmm18", "vmovdqa64 [{d} + 19*64], zmm19",
            "vmovdqa64 [{d} + 20*64], zmm20", "vmovdqa64 [{d} + 21*64], zmm21",
            "vmovdqa64 [{d} + 22*64], zmm22", "vmovdqa64 [{d} + 23*64], zmm23",
            "vmovdqa64 [{d} + 24*64], zmm24", "vmovdqa64 [{d} + 25*64], zmm25",
            "vmovdqa64 [{d} + 26*64], zmm26", "vmovdqa64 [{d} + 27*64], zmm27",
            "vmovdqa64 [{d} + 28*64], zmm28", "vmovdqa64 [{d} + 29*64], zmm29",
            "vmovdqa64 [{d} + 30*64], zmm30", "vmovdqa64 [{d} + 31*64], zmm31",
            "kmovq [{d} + 2048 + 0*8], k0", "kmovq [{d} + 2048 + 1*8], k1",
            "kmovq [{d} + 2048 + 2*8], k2", "kmovq [{d} + 2048 + 3*8], k3",
            "kmovq [{d} + 2048 + 4*8], k4", "kmovq [{d} + 2048 + 5*8], k5",
            "kmovq [{d} + 2048 + 6*8], k6", "kmovq [{d} + 2048 + 7*8], k7",
            "mov rcx, 15",
            "4:",
            "mov rax, [rsp + rcx*8 - 128]",
            "mov [{d} + 2112 + rcx*8 - 8], rax",
            "dec rcx",
            "jnz 4b",
            "stmxcsr [{d} + 2232]",
            // Restore the caller's MXCSR.
            "mov [rsp - 128], r11d",
            "ldmxcsr [rsp - 128]",
            seed = in(reg) seed,
            spins = in(reg) spins,
            rc = in(reg) rc,
            d = in(reg) dump as *mut Dump,
            out("rax") _, out("rcx") _, out("r11") _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            out("k1") _, out("k2") _, out("k3") _, out("k4") _,
            out("k5") _, out("k6") _, out("k7") _,
        );
    }
}

const _: () = assert!(std::mem::offset_of!(Dump, k) == 2048);
const _: () = assert!(std::mem::offset_of!(Dump, red_zone) == 2112);
const _: () = assert!(std::mem::offset_of!(Dump, mxcsr) == 2232);

/// Mismatches between what thread `seed` held and what it found.
fn mismatches(seed: u64, d: &Dump) -> Vec<String> {
    let mut bad = Vec::new();
    for (i, lanes) in d.zmm.iter().enumerate() {
        let want = seed * 64 + i as u64;
        if lanes.iter().any(|&l| l != want) {
            bad.push(format!("zmm{i}: {lanes:x?} != {want:#x}"));
        }
    }
    let mut k = seed;
    for (i, &got) in d.k.iter().enumerate() {
        if i > 0 {
            k ^= 1 << (55 + i);
        }
        if i > 0 && got != k {
            // k0 is not ours to set (it means "no mask"); k1..k7 are checked.
            bad.push(format!("k{i}: {got:#x} != {k:#x}"));
        }
    }
    for (i, &got) in d.red_zone.iter().enumerate() {
        // Word at rsp - 128 + 8*j holds seed + (15 - j); the dump stores j = 1..=15
        // at index j - 1.
        let want = seed + (15 - (i as u64 + 1));
        if got != want {
            bad.push(format!("red zone word {i}: {got:#x} != {want:#x}"));
        }
    }
    let want_rc = ((seed & 3) << 13) as u32;
    if d.mxcsr & 0x6000 != want_rc {
        bad.push(format!("MXCSR {:#x}: rounding mode lost", d.mxcsr));
    }
    bad
}

#[test]
fn h6_h7_registers_and_red_zone_survive_preemption() {
    if !(std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw"))
    {
        eprintln!("skipping: this CPU has no AVX-512 (the machine this project targets has)");
        return;
    }
    let target: u64 = std::env::var("PREEMPT_TORTURE_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let _l = support::runtime_lock();
    // SAFETY: the threads touch no thread-locals.
    // Round-robin at priority 0: every tick switches, the densest preemption.
    let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
        .tick(preempt::MIN_TICK)
        .fair(false)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut rounds = 0u64;
    let mut bad = Vec::new();
    while rt.stats().preemptions < target {
        rounds += 1;
        let found = rt.block_on(move || {
            let hs: Vec<_> = (1..=THREADS)
                .map(|t| {
                    let seed = rounds * 1000 + t;
                    thread::spawn(move || {
                        let mut d = Box::new(Dump {
                            zmm: [[0; 8]; 32],
                            k: [0; 8],
                            red_zone: [0; 15],
                            mxcsr: 0,
                        });
                        // SAFETY: AVX-512F/BW checked above.
                        unsafe { hold_registers(seed, 20_000_000, &mut d) };
                        mismatches(seed, &d)
                    })
                })
                .collect();
            hs.into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        bad.extend(found);
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "torture did not reach {target} preemptions"
        );
    }
    let s = rt.stats();
    eprintln!(
        "H7: {} preemptions, {} involuntary switches in {:?}, {} mismatches",
        s.preemptions,
        s.switches_involuntary,
        start.elapsed(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "corrupted state: {:#?}",
        &bad[..bad.len().min(10)]
    );
    assert!(s.switches_involuntary > target / 2, "{s:?}");
}

/// The libc routines the PC check allows (`memcpy`, `memmove`, `memcmp`, …) run in
/// implementations an IFUNC picked, which no dynamic symbol sizes: the runtime finds
/// their extent in libc's unwind table. Threads that spend their time copying are then
/// preempted inside the copy — the check defers almost no tick — and every copy, taken
/// at odd lengths and alignments through each of the routine's paths (vector loops,
/// `rep movsb`, non-temporal stores, overlapping moves), arrives intact.
#[test]
fn preemption_inside_libc_memcpy_keeps_every_byte() {
    let _l = support::runtime_lock();
    // Round-robin at the fastest tick: every tick switches. The threads touch no
    // thread-locals (the contract of `support::full_rr`).
    let rt = support::full_rr(preempt::MIN_TICK);
    let bad = rt.block_on(|| {
        let hs: Vec<_> = (0..3u64)
            .map(|t| {
                thread::spawn(move || {
                    const LEN: usize = 8 << 20;
                    let src: Vec<u8> = (0..LEN as u64)
                        .map(|i| (i.wrapping_mul(0x9e37_79b9) >> 7 ^ t) as u8)
                        .collect();
                    let mut dst = vec![0u8; LEN + 64];
                    let mut bad = 0u64;
                    let t0 = Instant::now();
                    let mut i = 0usize;
                    while t0.elapsed() < Duration::from_millis(600) {
                        // 256 B .. 8 MiB, at offsets 0..63 on both sides.
                        let len = ((LEN - 64) >> (i % 16)) - (i * 7 % 64);
                        let (s, d) = (i * 13 % 64, i * 29 % 64);
                        dst[d..d + len].copy_from_slice(&src[s..s + len]);
                        bad += u64::from(dst[d..d + len] != src[s..s + len]);
                        // An overlapping move, forwards or backwards.
                        let m = len / 2;
                        let (from, to) = if i % 2 == 0 { (d + 1, d) } else { (d, d + 1) };
                        dst.copy_within(from..from + m, to);
                        let shifted = if i % 2 == 0 {
                            &src[s + 1..s + 1 + m]
                        } else {
                            &src[s..s + m]
                        };
                        bad += u64::from(dst[to..to + m] != *shifted);
                        i += 1;
                    }
                    bad
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    let s = rt.stats();
    drop(rt);
    assert_eq!(bad, 0, "copies corrupted by preemption: {s:?}");
    assert!(s.preemptions > 500, "{s:?}");
    assert!(
        s.deferred_pc * 20 < s.preemptions,
        "ticks inside memcpy were deferred, not taken: {s:?}"
    );
}
