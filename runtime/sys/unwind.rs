//! Function extents from a loaded object's unwind table.
//!
//! The routines an IFUNC resolves to (glibc's `__memmove_avx512_unaligned_erms` behind
//! `memcpy`) are not in the dynamic symbol table, so `dladdr` cannot size them, and a
//! distribution's `libc.so.6` ships without `.symtab`. Every function the unwinder can
//! step through has a frame description entry, though, and the object's
//! `.eh_frame_hdr` (the `PT_GNU_EH_FRAME` segment) indexes them by start address, as
//! the unwinder itself finds them. The layouts are those of the LSB's "Exception Frames"
//! chapter; only the encodings every x86-64 toolchain emits are read, and anything else
//! gives `None`.
//!
//! The entry also tells whether the function is *frameless*: an entry whose call-frame
//! program is empty (only `DW_CFA_nop` padding) keeps the state every x86-64 function
//! starts in — canonical frame address `rsp + 8`, return address at `[rsp]` — at every
//! instruction. Hand-written string routines are; so the interrupted return address of
//! one can be read from its stack pointer alone.

use std::ffi::c_void;

/// `DW_EH_PE_udata4`, `DW_EH_PE_sdata4`, `DW_EH_PE_pcrel`, `DW_EH_PE_datarel`.
const UDATA4: u8 = 0x03;
const SDATA4: u8 = 0x0b;
const PCREL: u8 = 0x10;
const DATAREL: u8 = 0x30;

/// A function found in an unwind table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Function {
    /// The first byte of its code.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// Whether it never moves the stack pointer: its return address is at `[rsp]`
    /// wherever it is interrupted (module docs).
    pub frameless: bool,
}

/// The function containing `pc` in any loaded object, as its frame description entry
/// gives it; `None` if no object holds `pc`, the function has no entry, or the table's
/// encoding is not the usual one. Not signal context.
pub(crate) fn function_at(pc: usize) -> Option<Function> {
    struct Search {
        pc: usize,
        found: Option<Function>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Search` passed below, alive for the whole iteration;
        // `info` and its program headers are valid for this call (dl_iterate_phdr).
        let (search, info) = unsafe { (&mut *data.cast::<Search>(), &*info) };
        // SAFETY: as above; `dlpi_phnum` headers start at `dlpi_phdr`.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        let base = info.dlpi_addr as usize;
        let holds = phdrs.iter().any(|p| {
            let start = base + p.p_vaddr as usize;
            p.p_type == libc::PT_LOAD && (start..start + p.p_memsz as usize).contains(&search.pc)
        });
        if !holds {
            return 0;
        }
        if let Some(p) = phdrs.iter().find(|p| p.p_type == libc::PT_GNU_EH_FRAME) {
            // SAFETY: the segment is mapped with the object, which stays loaded for the
            // iteration (dl_iterate_phdr holds the loader's lock).
            search.found =
                unsafe { lookup(base + p.p_vaddr as usize, p.p_memsz as usize, search.pc) };
        }
        1
    }
    let mut search = Search { pc, found: None };
    // SAFETY: `visit` matches the callback type and only reads what the loader passes.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
    search.found
}

/// Reads an `i32` at `addr`.
///
/// # Safety
/// `addr..addr + 4` is mapped and readable.
unsafe fn i32_at(addr: usize) -> i32 {
    // SAFETY: per the contract; unwind tables are 4-byte aligned but need not be.
    unsafe { (addr as *const i32).read_unaligned() }
}

/// Looks `pc` up in the `.eh_frame_hdr` at `hdr`, `size` bytes long: the last indexed
/// function starting at or before it, if its entry's range covers it.
///
/// # Safety
/// `hdr` is a loaded object's `PT_GNU_EH_FRAME` segment and `size` its length.
unsafe fn lookup(hdr: usize, size: usize, pc: usize) -> Option<Function> {
    if size < 12 {
        return None;
    }
    // SAFETY: the header's four encoding bytes and the two fields after them, within
    // `size`.
    let (version, ptr_enc, count_enc, table_enc, count) = unsafe {
        let b = |i| *((hdr + i) as *const u8);
        (b(0), b(1), b(2), b(3), i32_at(hdr + 8))
    };
    // The sorted index: `count` pairs of (function start, entry), relative to `hdr`.
    if version != 1
        || ptr_enc != PCREL | SDATA4
        || count_enc != UDATA4
        || table_enc != DATAREL | SDATA4
        || count <= 0
        || 12 + 8 * count as usize > size
    {
        return None;
    }
    let table = hdr + 12;
    // SAFETY: `count` pairs follow the header, within `size` (checked above).
    let start_of = |i: usize| unsafe { i32_at(table + 8 * i) } as isize;
    let (mut lo, mut hi) = (0usize, count as usize);
    let rel = pc.wrapping_sub(hdr) as isize;
    // Invariant: every pair before `lo` starts at or before `pc`, none from `hi` on.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if start_of(mid) <= rel {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let i = lo.checked_sub(1)?;
    let start = hdr.wrapping_add_signed(start_of(i));
    // SAFETY: the pair's second half; the entry it points at lies in `.eh_frame`.
    let fde = hdr.wrapping_add_signed(unsafe { i32_at(table + 8 * i + 4) } as isize);
    // The entry: length (not the 64-bit escape), CIE pointer (non-zero in an FDE), the
    // function's start — checked against the index, which tells its encoding was
    // pc-relative `sdata4` — then the range in the same format.
    // SAFETY: the fields of the entry the index points at.
    let (len, cie, begin, range) = unsafe {
        (
            i32_at(fde),
            i32_at(fde + 4),
            (fde + 8).wrapping_add_signed(i32_at(fde + 8) as isize),
            i32_at(fde + 12) as u32 as usize,
        )
    };
    if len == -1 || len < 13 || cie == 0 || begin != start || !(start..start + range).contains(&pc)
    {
        return None;
    }
    // Frameless: the CIE's augmentation starts with `z` (so the entry's augmentation
    // data is length-prefixed), that length fits one ULEB128 byte, and every byte of
    // the program after it is `DW_CFA_nop`.
    // SAFETY: the CIE's augmentation string begins 9 bytes in (length, id, version);
    // the entry's bytes run to `fde + 4 + len`.
    let frameless = unsafe {
        let cie = (fde + 4).wrapping_sub(cie as u32 as usize);
        let aug = *((fde + 16) as *const u8);
        *((cie + 9) as *const u8) == b'z'
            && aug < 0x80
            && (fde + 17 + aug as usize..fde + 4 + len as usize).all(|a| *(a as *const u8) == 0)
    };
    Some(Function {
        start,
        end: start + range,
        frameless,
    })
}

#[cfg(test)]
mod tests {
    use super::function_at;

    #[inline(never)]
    fn some_function(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3)
    }

    #[test]
    fn finds_a_function_by_any_of_its_addresses() {
        let f = some_function as *const () as usize;
        let found = function_at(f).expect("an entry for a Rust function");
        assert_eq!(found.start, f);
        assert!(found.end > f + 1, "{found:?}");
        let inside = function_at(found.end - 1).unwrap();
        assert_eq!((inside.start, inside.end), (found.start, found.end));
        assert!(function_at(0).is_none());
        assert_eq!(some_function(2), 6);
    }

    #[test]
    fn libc_string_routines_are_frameless() {
        // SAFETY: dlsym with a NUL-terminated name.
        let memchr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"memchr".as_ptr()) } as usize;
        let f = function_at(memchr).expect("libc has an unwind table");
        assert_eq!(f.start, memchr);
        assert!(f.frameless, "{f:?}");
    }
}
