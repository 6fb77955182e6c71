//! The runtime's only door to the operating system.
//!
//! Every system call the runtime makes goes through this module, so that two rules are
//! kept in one place:
//!
//! * errors become `io::Error`s through [`cvt`], never ignored;
//! * calls that a signal can interrupt are retried on `EINTR` through [`cvt_r`], or, when
//!   they carry a timeout, retried by the caller with the remaining time recomputed. Once
//!   the timer interrupt exists it *will* land in the middle of these calls.
//!
//! Functions marked `ASYNC-SIGNAL-SAFE` may be called from a signal handler: they
//! neither allocate nor lock.

mod unwind;
pub(crate) use unwind::function_at;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], retrying `f` for as long as it fails with `EINTR`.
pub(crate) fn cvt_r<T: IsMinusOne>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Integer return values whose `-1` means "see errno".
pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}
macro_rules! impl_is_minus_one {
    ($($t:ty)*) => {$(impl IsMinusOne for $t {
        fn is_minus_one(&self) -> bool { *self == -1 }
    })*};
}
impl_is_minus_one! { i32 isize i64 }

/// The page size, read once.
pub(crate) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let p = if p > 0 { p as usize } else { 4096 };
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// `getauxval(AT_MINSIGSTKSZ)`: the kernel's minimum signal frame size on this CPU
/// (it grows with the xsave state: ~3.4 KiB with AVX-512). Zero if the kernel is too
/// old to say.
pub(crate) fn min_signal_stack() -> usize {
    const AT_MINSIGSTKSZ: libc::c_ulong = 51;
    // SAFETY: getauxval has no preconditions; it returns 0 for unknown keys.
    unsafe { libc::getauxval(AT_MINSIGSTKSZ) as usize }
}

/// An anonymous private read-write mapping of `len` bytes.
pub(crate) fn map_anonymous(len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Makes `len` bytes at `addr` inaccessible (a guard page).
///
/// # Safety
/// The range must lie inside a mapping the caller owns and nothing may reference it.
pub(crate) unsafe fn protect_none(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: forwarded from the caller.
    cvt(unsafe { libc::mprotect(addr.cast(), len, libc::PROT_NONE) }).map(drop)
}

/// Unmaps a mapping made by [`map_anonymous`].
///
/// # Safety
/// Nothing may use the range afterwards.
pub(crate) unsafe fn unmap(addr: *mut u8, len: usize) {
    // SAFETY: forwarded from the caller. munmap of our own mapping cannot fail.
    unsafe { libc::munmap(addr.cast(), len) };
}

/// Reads `/proc/sys/vm/max_map_count` (for error messages only).
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// A non-blocking, close-on-exec eventfd: the carrier's doorbell.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory preconditions.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd. ASYNC-SIGNAL-SAFE.
pub(crate) fn eventfd_signal(fd: &OwnedFd) {
    let one: u64 = 1;
    loop {
        // SAFETY: writes 8 bytes from a live local.
        let r = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
        // EAGAIN means the counter is saturated: the doorbell is already ringing.
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Resets an eventfd to zero (it is non-blocking: an unsignalled fd returns EAGAIN).
pub(crate) fn eventfd_drain(fd: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live local.
    let _ = cvt_r(|| unsafe { libc::read(fd.as_raw_fd(), (&raw mut v).cast(), 8) });
}

/// A close-on-exec epoll instance.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no memory preconditions.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `epoll_ctl(op)` for `fd` with `events`, tagged with `token`.
pub(crate) fn epoll_ctl(
    ep: &OwnedFd,
    op: i32,
    fd: RawFd,
    events: u32,
    token: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: ev is a live local the kernel only reads.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &raw mut ev) }).map(drop)
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller borrows, integer arguments only.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// `ppoll(2)` on one descriptor for `events`, for at most `timeout`. `EINTR` goes to
/// the caller, which keeps its own deadline.
pub(crate) fn poll_one(fd: RawFd, events: i16, timeout: Option<Duration>) -> io::Result<usize> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = timeout.map(timespec);
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: one live pollfd; tsp null or a live timespec; no signal mask change.
    cvt(unsafe { libc::ppoll(&mut p, 1, tsp, std::ptr::null()) }).map(|n| n as usize)
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// Waits on `ep` for at most `timeout` (forever if `None`), with nanosecond resolution.
///
/// Returns the number of events (0 on timeout). `EINTR` is returned to the caller, which
/// recomputes its timeout from its own deadline before waiting again.
pub(crate) fn epoll_wait_ns(
    ep: &OwnedFd,
    events: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    // Set once `epoll_pwait2` said ENOSYS (kernels before 5.11, or Valgrind): every
    // softirq pass and idle wait would otherwise make that call first. (std's atomic:
    // a process-wide fact, in no protocol the loom models check.)
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    static NO_PWAIT2: AtomicBool = AtomicBool::new(false);
    if !NO_PWAIT2.load(Relaxed) {
        let ts = timeout.map(timespec);
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: events is a live buffer of the given length, tsp null or a live timespec.
        match cvt(unsafe {
            libc::epoll_pwait2(
                ep.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                tsp,
                std::ptr::null(),
            )
        }) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                NO_PWAIT2.store(true, Relaxed);
            }
            n => return n.map(|n| n as usize),
        }
    }
    // Whole milliseconds, rounded up so we never wake early.
    let ms = timeout.map_or(-1, |d| {
        d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
    });
    // SAFETY: events is a live buffer of the given length.
    let n = cvt(unsafe {
        libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, ms)
    })?;
    Ok(n as usize)
}

/// The calling thread's CPU time in ns: time it ran, which the kernel of a virtual
/// machine counts without the time the hypervisor stole (steal-time accounting).
/// ASYNC-SIGNAL-SAFE.
pub(crate) fn thread_cpu_time_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Asks the kernel for 1 ns timer slack on the calling thread, so timed waits wake
/// when asked rather than up to 50 µs later.
pub(crate) fn set_timer_slack_min() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument; no memory is touched.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// Writes all of `bytes` to stderr with write(2). ASYNC-SIGNAL-SAFE.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

/// Ends the process at once. ASYNC-SIGNAL-SAFE.
pub(crate) fn abort() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}
