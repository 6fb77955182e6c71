//! Blocking I/O that parks green threads: the epoll device, [`Fd`] for any pollable
//! descriptor, and the blocking pool.
//!
//! A green thread calls plain blocking-style I/O — `read`, `write`, `accept` — and the
//! runtime turns the kernel's `EAGAIN` into a park: descriptors are non-blocking, a call
//! that would block registers the descriptor with the CPU's epoll instance and sleeps
//! until the device's softirq reports it ready (DESIGN.md §6; the protocol is in
//! `reactor`, the device in `device`). Code written for `std` ports by changing imports:
//! [`crate::net`] has `TcpListener`, `TcpStream` and `UdpSocket`,
//! [`crate::os::unix::net`] the Unix-domain sockets, and [`Fd`] wraps anything else
//! epoll can wait for (pipes, eventfds, timerfds, terminals).
//!
//! The same types work on plain OS threads outside a runtime: there a call that would
//! block waits in `poll(2)` instead, as `std`'s would (with timeouts kept exactly and
//! `EINTR` retried with the time that is left: HAZARDS.md H10).
//!
//! What epoll cannot wait for — regular files, `fsync`, name resolution, `waitpid` —
//! runs on a small pool of helper OS threads while the green thread sleeps
//! ([`crate::fs`], [`crate::task::spawn_blocking`]).
//!
//! Rules a user can rely on:
//!
//! * one waiter per direction: a second thread that would wait to read (or write) a
//!   descriptor somebody already waits on gets `ErrorKind::ResourceBusy`;
//! * [`Fd::close`] wakes every waiter with an error, and every later call fails;
//! * dropping a wrapper takes its descriptor out of the epoll instance before closing
//!   it;
//! * errors are the kernel's (`ECONNRESET`, `EMFILE`, …) as `io::Error`s; nothing a
//!   peer does makes the runtime panic.

pub(crate) mod blocking;
pub(crate) mod device;
#[doc(hidden)]
pub mod reactor;

use crate::sched::{self, Cpu};
use crate::sync::RawSpinLock;
use crate::task::Task;
use reactor::{AlreadyWaiting, IoWaker, READ, ScheduledIo, WRITE};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A registration whose waiters are green threads.
pub(crate) type Io = ScheduledIo<Arc<Task>>;

impl IoWaker for Arc<Task> {
    fn into_raw(self) -> *mut () {
        Arc::into_raw(self).cast_mut().cast()
    }
    unsafe fn from_raw(p: *mut ()) -> Self {
        // SAFETY: forwarded: `p` came from `into_raw` above.
        unsafe { Arc::from_raw(p.cast_const().cast()) }
    }
    fn wake(self) {
        sched::wake_up(&self);
    }
}

/// Turns epoll tokens back into registrations.
pub(crate) struct IoRef;

impl IoRef {
    /// # Safety
    /// `token` is a live registration's token (see `device::dispatch`).
    pub(crate) unsafe fn from_token<'a>(token: u64) -> &'a Io {
        // SAFETY: forwarded.
        unsafe { &*(token as *const Io) }
    }
}

/// The runtime's side of one pollable descriptor: its registration, the CPU whose
/// epoll instance holds it, and std-like settings (non-blocking mode, timeouts).
pub(crate) struct Registration {
    fd: RawFd,
    io: Arc<Io>,
    /// The CPU whose epoll instance holds the descriptor (registered lazily, by the
    /// first wait on a carrier). Changed only under its lock.
    cpu: RawSpinLock<Option<Arc<Cpu>>>,
    nonblocking: AtomicBool,
    /// Read and write timeouts in nanoseconds (0: none).
    timeouts: [AtomicU64; 2],
    /// After a stream read that returned less than it asked for, the read direction's
    /// event count seen before that read, plus one (0: none); see
    /// [`Registration::read_stream`].
    drained: AtomicUsize,
}

impl Registration {
    /// Takes charge of `fd`: makes it non-blocking (the runtime waits for it instead).
    /// A regular file or directory is refused: epoll cannot wait for it.
    pub(crate) fn new(fd: BorrowedFd<'_>) -> io::Result<Registration> {
        let raw = fd.as_raw_fd();
        if sys_is_regular(raw)? {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a regular file cannot be waited for with epoll; use preempt::fs, which runs \
                 file I/O on the blocking pool",
            ));
        }
        crate::sys::set_nonblocking(raw, true)?;
        Ok(Registration::new_nonblocking(raw))
    }

    /// For a descriptor created non-blocking (`SOCK_NONBLOCK`) by the caller.
    pub(crate) fn new_nonblocking(fd: RawFd) -> Registration {
        Registration {
            fd,
            io: Arc::new(Io::new()),
            cpu: RawSpinLock::new(None),
            nonblocking: AtomicBool::new(false),
            timeouts: [AtomicU64::new(0), AtomicU64::new(0)],
            drained: AtomicUsize::new(0),
        }
    }

    /// std's `set_nonblocking`: a call that would block returns `WouldBlock` instead of
    /// parking.
    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }

    /// std's `set_read_timeout` / `set_write_timeout`: `Some(0)` is `InvalidInput`.
    pub(crate) fn set_timeout(&self, dir: usize, t: Option<Duration>) -> io::Result<()> {
        let ns = match t {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ));
            }
            Some(d) => d.as_nanos().clamp(1, u64::MAX as u128) as u64,
        };
        self.timeouts[dir].store(ns, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn timeout(&self, dir: usize) -> Option<Duration> {
        match self.timeouts[dir].load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for readiness in
    /// `dir` in between — within the direction's timeout (`TimedOut`), unless the
    /// descriptor is in non-blocking mode.
    pub(crate) fn io_loop<R>(
        &self,
        dir: usize,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = self.timeout(dir).map(|t| Instant::now() + t);
        self.io_loop_until(dir, deadline, |_| op())
    }

    /// [`io_loop`](Self::io_loop) with an explicit deadline; `op` is given the
    /// direction's event count read before the attempt.
    pub(crate) fn io_loop_until<R>(
        &self,
        dir: usize,
        deadline: Option<Instant>,
        mut op: impl FnMut(usize) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            if self.io.is_closed() {
                return Err(closed());
            }
            let snapshot = self.io.snapshot(dir);
            match op(snapshot) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.wait(dir, snapshot, deadline)?;
        }
    }

    /// [`io_loop`](Self::io_loop) for a read of up to `len` bytes from a stream socket
    /// (TCP, Unix), which skips the call that would only say `WouldBlock`. A
    /// stream read that returns less than it asked for emptied the receive queue, so
    /// until the descriptor's next event the next read would fail with `WouldBlock`
    /// (tokio's observation): it waits at once. Any data that arrives after that read
    /// makes an edge-triggered event, counted after the count read before it, so the
    /// wait cannot miss it; a hang-up or error that came with the data is remembered by
    /// the registration and read at once. A request–response server saves a system call
    /// per request.
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let deadline = self.timeout(READ).map(|t| Instant::now() + t);
        self.io_loop_until(READ, deadline, |snapshot| {
            // The hint is used once: after the wait (or on an OS thread, whose `poll`
            // counts no events) the next pass reads. A hang-up reported with the data
            // (the peer wrote and closed) makes no later event: that read is made at once.
            let drained = self.drained.swap(0, Ordering::Relaxed);
            if len > 0 && drained == snapshot.wrapping_add(1) && !self.io.is_hung_up() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = op()?;
            if n > 0 && n < len {
                self.drained
                    .store(snapshot.wrapping_add(1), Ordering::Relaxed);
            }
            Ok(n)
        })
    }

    /// Sleeps until an event in `dir` after `snapshot`, the deadline, or a close.
    fn wait(&self, dir: usize, snapshot: usize, deadline: Option<Instant>) -> io::Result<()> {
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            return Err(timed_out(dir));
        }
        let Some(cpu) = sched::this_cpu() else {
            return poll_os_thread(self.fd, dir, deadline);
        };
        let Some(t) = sched::current_task() else {
            // The idle loop never does I/O; a carrier outside a green thread is a bug.
            sched::no_runtime("blocking I/O");
        };
        crate::preempt::might_sleep();
        // SAFETY: t is the current task, alive while it runs.
        let task = unsafe { &*t };
        self.ensure_registered(&task.cpu)?;
        // SAFETY: as above; a new strong reference for the slot.
        let me = unsafe {
            Arc::increment_strong_count(t);
            Arc::from_raw(t)
        };
        if let Err(AlreadyWaiting) = self.io.arm(dir, me) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "another thread is already waiting to {} this descriptor; \
                     one waiter per direction",
                    if dir == READ { "read" } else { "write" }
                ),
            ));
        }
        let timeout = deadline.map(|d| cpu.instant_to_ns(d));
        sched::block_current(cpu, t, timeout, || self.io.ready_since(dir, snapshot));
        self.io.disarm(dir);
        if self.io.is_closed() {
            return Err(closed());
        }
        Ok(())
    }

    /// Registers the descriptor with `cpu`'s epoll instance if it is not already (moving
    /// it from a previous runtime's CPU if need be).
    fn ensure_registered(&self, cpu: &Arc<Cpu>) -> io::Result<()> {
        let mut slot = self.cpu.lock();
        match &*slot {
            Some(c) if Arc::ptr_eq(c, cpu) => return Ok(()),
            Some(old) => {
                let old = old.clone();
                *slot = None;
                self.deregister_from(&old);
            }
            None => {}
        }
        let token = Arc::into_raw(self.io.clone()) as u64;
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if let Err(e) =
            crate::sys::epoll_ctl(&cpu.epoll, libc::EPOLL_CTL_ADD, self.fd, events, token)
        {
            // SAFETY: the token was not registered; take its reference back.
            drop(unsafe { Arc::from_raw(token as *const Io) });
            return Err(if e.raw_os_error() == Some(libc::EPERM) {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this descriptor cannot be waited for with epoll (a regular file?); \
                     use preempt::fs or preempt::task::spawn_blocking",
                )
            } else {
                e
            });
        }
        *slot = Some(cpu.clone());
        drop(slot);
        device::ensure_ksoftirqd(cpu)
    }

    /// Takes the descriptor out of `cpu`'s instance and releases the token's reference:
    /// at once on `cpu`'s own carrier (no softirq pass can be looking at it: passes run
    /// with preemption disabled), else after the carrier's next pass.
    fn deregister_from(&self, cpu: &Arc<Cpu>) {
        let _ = crate::sys::epoll_ctl(&cpu.epoll, libc::EPOLL_CTL_DEL, self.fd, 0, 0);
        // SAFETY: the token's reference, made by `Arc::into_raw` in `ensure_registered`.
        let token = unsafe { Arc::from_raw(Arc::as_ptr(&self.io)) };
        if sched::this_cpu().is_some_and(|c| std::ptr::eq(c, &**cpu)) {
            drop(token);
        } else {
            cpu.net.bury(token);
        }
    }

    /// Closes the registration: waiters wake with an error; later calls fail.
    pub(crate) fn close(&self) {
        self.io.close();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(cpu) = self.cpu.get_mut().take() {
            self.deregister_from(&cpu);
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

fn sys_is_regular(fd: RawFd) -> io::Result<bool> {
    // SAFETY: fstat fills a zeroed stat for a descriptor we borrow.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    crate::sys::cvt(unsafe { libc::fstat(fd, &mut st) })?;
    let fmt = st.st_mode & libc::S_IFMT;
    Ok(fmt == libc::S_IFREG || fmt == libc::S_IFDIR)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the descriptor was closed (Fd::close) while or before a thread waited on it",
    )
}

fn timed_out(dir: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        if dir == READ {
            "read timed out"
        } else {
            "write timed out"
        },
    )
}

/// Outside a runtime: wait in `poll(2)` like a blocking descriptor would, keeping the
/// deadline exactly across `EINTR` (H10).
fn poll_os_thread(fd: RawFd, dir: usize, deadline: Option<Instant>) -> io::Result<()> {
    let events = if dir == READ {
        libc::POLLIN
    } else {
        libc::POLLOUT
    };
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out(dir));
                }
                Some(left)
            }
        };
        match crate::sys::poll_one(fd, events, timeout) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A pollable file descriptor the runtime waits on: a pipe end, an eventfd, a timerfd,
/// a terminal, a socket of a kind [`crate::net`] does not wrap.
///
/// `Fd::new` makes the descriptor non-blocking; [`read_with`](Fd::read_with) and
/// [`write_with`](Fd::write_with) run an operation and, when it fails with
/// `WouldBlock`, park the calling green thread until the descriptor is ready (or the
/// timeout passes) and run it again. [`Read`](io::Read) and [`Write`](io::Write) are
/// implemented when the wrapped type implements them.
///
/// ```
/// use std::io::{Read, Write};
/// let rt = preempt::Runtime::builder().build()?;
/// let got = rt.block_on(|| {
///     let (r, w) = std::io::pipe().unwrap();
///     let mut r = preempt::io::Fd::new(r).unwrap();
///     let writer = preempt::spawn(move || {
///         let mut w = preempt::io::Fd::new(w).unwrap();
///         w.write_all(b"ping").unwrap();
///     });
///     let mut buf = [0; 4];
///     r.read_exact(&mut buf).unwrap(); // parks until the writer has run
///     writer.join().unwrap();
///     buf
/// });
/// assert_eq!(&got, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Fd<T: AsFd> {
    // Dropped before `inner`: the descriptor leaves the epoll instance while still open.
    reg: Registration,
    inner: T,
}

impl<T: AsFd> Fd<T> {
    /// Takes charge of `inner`'s descriptor and makes it non-blocking.
    ///
    /// # Errors
    /// `Unsupported` for a regular file or a directory (epoll cannot wait for them: use
    /// [`crate::fs`]); the OS error if the descriptor's flags cannot be changed.
    pub fn new(inner: T) -> io::Result<Fd<T>> {
        let reg = Registration::new(inner.as_fd())?;
        Ok(Fd { reg, inner })
    }

    /// For a value whose descriptor the caller made non-blocking (`SOCK_NONBLOCK`).
    pub(crate) fn from_nonblocking(inner: T) -> Fd<T> {
        let reg = Registration::new_nonblocking(inner.as_fd().as_raw_fd());
        Fd { reg, inner }
    }

    /// The read or write timeout.
    pub(crate) fn timeout(&self, dir: usize) -> Option<Duration> {
        self.reg.timeout(dir)
    }

    /// Runs `op` for direction `dir` until `deadline` (no timeout setting applies).
    pub(crate) fn io_until<R>(
        &self,
        dir: usize,
        deadline: Option<Instant>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.reg.io_loop_until(dir, deadline, |_| op(&self.inner))
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped value, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Gives the wrapped value back (its descriptor stays non-blocking).
    pub fn into_inner(self) -> T {
        let Fd { reg, inner } = self;
        drop(reg);
        inner
    }

    /// Runs `op` until it does not fail with `WouldBlock`, parking until the descriptor
    /// is readable in between.
    ///
    /// # Errors
    /// `op`'s error; `TimedOut` after the read timeout; `ResourceBusy` if another thread
    /// already waits to read; `NotConnected` after [`close`](Fd::close).
    pub fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.reg.io_loop(READ, || op(&self.inner))
    }

    /// [`read_with`](Fd::read_with) for a read of up to `len` bytes from a stream
    /// (`Registration::read_stream`).
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.reg.read_stream(len, || op(&self.inner))
    }

    /// [`read_with`](Fd::read_with) with mutable access.
    ///
    /// # Errors
    /// As for `read_with`.
    pub fn read_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let inner = &mut self.inner;
        self.reg.io_loop(READ, || op(inner))
    }

    /// Runs `op` until it does not fail with `WouldBlock`, parking until the descriptor
    /// is writable in between.
    ///
    /// # Errors
    /// As for [`read_with`](Fd::read_with), for writing.
    pub fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.reg.io_loop(WRITE, || op(&self.inner))
    }

    /// [`write_with`](Fd::write_with) with mutable access.
    ///
    /// # Errors
    /// As for `write_with`.
    pub fn write_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let inner = &mut self.inner;
        self.reg.io_loop(WRITE, || op(inner))
    }

    /// Sets the read timeout (`None`: wait forever). A zero duration is `InvalidInput`,
    /// as in `std`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reg.set_timeout(READ, t)
    }

    /// Sets the write timeout; see [`set_read_timeout`](Fd::set_read_timeout).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reg.set_timeout(WRITE, t)
    }

    /// In non-blocking mode an operation that would block returns `WouldBlock` instead
    /// of parking.
    pub fn set_nonblocking(&self, on: bool) {
        self.reg.set_nonblocking(on);
    }

    /// Closes the descriptor for the runtime, as Go's `Close` does for a connection
    /// other goroutines use: threads waiting on it wake with `NotConnected`, and every
    /// later call fails the same way. The descriptor itself is released when the `Fd`
    /// is dropped (no thread can be using it then).
    pub fn close(&self) {
        self.reg.close();
    }
}

impl<T: AsFd> AsFd for Fd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<T: AsFd> AsRawFd for Fd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

impl<T: AsFd + io::Read> io::Read for Fd<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with_mut(|i| i.read(buf))
    }
}

impl<T: AsFd + io::Write> io::Write for Fd<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with_mut(|i| i.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write_with_mut(|i| i.flush())
    }
}
