//! TCP and UDP sockets whose blocking calls park the green thread, not the carrier.
//!
//! The types mirror `std::net` — same names, same methods, `std::io::{Read, Write}` —
//! so code ports by changing imports. Sockets are non-blocking underneath; a call that
//! would block parks the calling green thread until the epoll device reports the socket
//! ready ([`crate::io`]). Read, write and connect timeouts are kept by the runtime's
//! timers and end a wait with `ErrorKind::TimedOut`. On a plain OS thread the calls
//! block in `poll(2)`, as `std`'s would.
//!
//! Addresses given as names are resolved on the calling thread, as `std` does; from a
//! green thread, resolve names with [`lookup_host`], which runs the resolver on the
//! blocking pool.
//!
//! ```
//! use std::io::{Read, Write};
//! let rt = preempt::Runtime::builder().build()?;
//! let reply = rt.block_on(|| {
//!     let listener = preempt::net::TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = preempt::spawn(move || {
//!         let (mut s, _) = listener.accept().unwrap();
//!         let mut buf = [0; 5];
//!         s.read_exact(&mut buf).unwrap();
//!         s.write_all(&buf).unwrap();
//!     });
//!     let mut c = preempt::net::TcpStream::connect(addr).unwrap();
//!     c.write_all(b"hello").unwrap();
//!     let mut buf = [0; 5];
//!     c.read_exact(&mut buf).unwrap();
//!     server.join().unwrap();
//!     buf
//! });
//! assert_eq!(&reply, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```

mod addr;

use crate::io::Fd;
use crate::io::reactor::{READ, WRITE};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Resolves `host` (`"example.com:80"`, or anything [`ToSocketAddrs`] takes as a
/// string) on the blocking pool, so a green thread's DNS lookup does not stop its CPU.
///
/// # Errors
/// The resolver's error.
pub fn lookup_host(host: &str) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let host = host.to_owned();
    crate::io::blocking::run(move || host.to_socket_addrs().map(|a| a.collect::<Vec<_>>()))?
        .map(Vec::into_iter)
}

/// Tries `f` on each address in turn, returning the first success or the last error
/// (std's `each_addr`).
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// A new non-blocking, close-on-exec socket for `addr`'s family.
fn socket(addr: &SocketAddr, ty: libc::c_int) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket has no memory preconditions.
    let fd = crate::sys::cvt(unsafe {
        libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The std-like accessors every socket type shares: its timeouts, its blocking mode, its
/// pending error and its local address (`SocketAddr` as named where it expands: an IP
/// or a Unix-domain address).
macro_rules! socket_accessors {
    () => {
        /// Sets the read timeout (`None`: wait forever); a read that waits longer fails
        /// with `ErrorKind::TimedOut`.
        ///
        /// # Errors
        /// `InvalidInput` for a zero duration, as in `std`.
        pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
            self.fd.set_read_timeout(dur)
        }

        /// Sets the write timeout; see `set_read_timeout`.
        ///
        /// # Errors
        /// `InvalidInput` for a zero duration, as in `std`.
        pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
            self.fd.set_write_timeout(dur)
        }

        /// The read timeout.
        ///
        /// # Errors
        /// None today; `io::Result` for `std`'s signature.
        pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.fd.timeout(READ))
        }

        /// The write timeout.
        ///
        /// # Errors
        /// None today; `io::Result` for `std`'s signature.
        pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.fd.timeout(WRITE))
        }

        /// In non-blocking mode, a call that would block returns `WouldBlock` instead of
        /// parking the thread.
        ///
        /// # Errors
        /// None today; `io::Result` for `std`'s signature.
        pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
            self.fd.set_nonblocking(nonblocking);
            Ok(())
        }

        /// Takes the socket's pending error (`SO_ERROR`).
        ///
        /// # Errors
        /// The OS error of the query.
        pub fn take_error(&self) -> io::Result<Option<io::Error>> {
            self.fd.get_ref().take_error()
        }

        /// The local address.
        ///
        /// # Errors
        /// The OS error.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.fd.get_ref().local_addr()
        }
    };
}

pub(crate) use socket_accessors;

/// The IP time-to-live accessors of the IP socket types.
macro_rules! ttl {
    () => {
        /// Sets the IP time-to-live.
        ///
        /// # Errors
        /// The OS error.
        pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
            self.fd.get_ref().set_ttl(ttl)
        }

        /// The IP time-to-live.
        ///
        /// # Errors
        /// The OS error.
        pub fn ttl(&self) -> io::Result<u32> {
            self.fd.get_ref().ttl()
        }
    };
}

/// `AsFd` and `AsRawFd` for a socket type wrapping an `Fd`.
macro_rules! fd_traits {
    ($t:ty) => {
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }
    };
}
pub(crate) use fd_traits;

/// A TCP listener (std's [`std::net::TcpListener`]); `accept` parks the green thread.
#[derive(Debug)]
pub struct TcpListener {
    fd: Fd<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` and listens (std's backlog of 128).
    ///
    /// # Errors
    /// The OS error (`AddrInUse`, `PermissionDenied`, …).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::from_std(std::net::TcpListener::bind(addr)?)
    }

    /// Takes over a `std` listener (made non-blocking).
    ///
    /// # Errors
    /// The OS error of changing its flags.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { fd: Fd::new(l)? })
    }

    /// Accepts a connection, parking until one arrives.
    ///
    /// # Errors
    /// The OS error (`EMFILE` when out of descriptors, …); `TimedOut` never (a listener
    /// has no timeout); `WouldBlock` in non-blocking mode.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.fd.read_with(|l| {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
            // SAFETY: accept4 writes at most `len` bytes into `st`.
            let fd = crate::sys::cvt(unsafe {
                libc::accept4(
                    l.as_raw_fd(),
                    (&raw mut st).cast(),
                    &mut len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            })?;
            // SAFETY: a fresh descriptor we own.
            let s = unsafe { std::net::TcpStream::from_raw_fd(fd) };
            Ok((TcpStream::from_nonblocking(s), addr::from_raw(&st)?))
        })
    }

    /// An endless iterator over accepted connections (std's `incoming`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// A second handle to the same listener (a duplicated descriptor).
    ///
    /// # Errors
    /// The OS error (`EMFILE`, …).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        TcpListener::from_std(self.fd.get_ref().try_clone()?)
    }

    socket_accessors!();
    ttl!();
}

fd_traits!(TcpListener);

/// A TCP connection (std's [`std::net::TcpStream`]); reads, writes and connects park
/// the green thread.
#[derive(Debug)]
pub struct TcpStream {
    fd: Fd<std::net::TcpStream>,
}

impl TcpStream {
    fn from_nonblocking(s: std::net::TcpStream) -> TcpStream {
        TcpStream {
            fd: Fd::from_nonblocking(s),
        }
    }

    /// Connects to `addr`, trying each address it resolves to.
    ///
    /// # Errors
    /// The OS error of the last address tried (`ConnectionRefused`, …).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_until(a, None))
    }

    /// Connects to `addr`, giving up after `timeout` with `TimedOut`.
    ///
    /// # Errors
    /// `InvalidInput` for a zero timeout; `TimedOut`; the OS error.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_until(addr, Some(Instant::now() + timeout))
    }

    fn connect_until(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let fd = socket(addr, libc::SOCK_STREAM)?;
        let (st, len) = addr::to_raw(addr);
        // SAFETY: connect reads `len` bytes of `st`.
        let r = unsafe { libc::connect(fd.as_raw_fd(), (&raw const st).cast(), len) };
        // errno at once: registering the stream below may take a lock whose futex wait
        // leaves EAGAIN there (under preemption, now and then).
        let e = (r != 0).then(io::Error::last_os_error);
        let stream = TcpStream::from_nonblocking(std::net::TcpStream::from(fd));
        let Some(e) = e else {
            return Ok(stream);
        };
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        stream.fd.io_until(WRITE, deadline, |s| {
            if let Some(e) = s.take_error()? {
                return Err(e);
            }
            match s.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        })?;
        Ok(stream)
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The OS error (`NotConnected`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().peer_addr()
    }

    /// Shuts down one or both halves; a thread parked reading wakes to end-of-file.
    ///
    /// # Errors
    /// The OS error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.get_ref().shutdown(how)
    }

    /// Reads without consuming, parking until data arrives.
    ///
    /// # Errors
    /// As for `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read_with(|s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// The OS error.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.fd.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// The OS error.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.fd.get_ref().nodelay()
    }

    /// A second handle to the same connection (a duplicated descriptor, with its own
    /// registration and timeouts).
    ///
    /// # Errors
    /// The OS error (`EMFILE`, …).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::from_nonblocking(self.fd.get_ref().try_clone()?))
    }

    /// Takes over a `std` stream (made non-blocking).
    ///
    /// # Errors
    /// The OS error of changing its flags.
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { fd: Fd::new(s)? })
    }

    /// Closes the connection for the runtime: threads parked on it wake with
    /// `NotConnected` (see [`Fd::close`](crate::io::Fd::close)).
    pub fn close(&self) {
        self.fd.close();
    }

    socket_accessors!();
    ttl!();
}

fd_traits!(TcpStream);

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.fd.read_stream(len, |mut s| s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.fd.read_stream(len, |mut s| s.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write_with(|mut s| s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.fd.write_with(|mut s| s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A UDP socket (std's [`std::net::UdpSocket`]); receives park the green thread.
#[derive(Debug)]
pub struct UdpSocket {
    fd: Fd<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr`.
    ///
    /// # Errors
    /// The OS error (`AddrInUse`, …).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let fd = socket(a, libc::SOCK_DGRAM)?;
            let (st, len) = addr::to_raw(a);
            // SAFETY: bind reads `len` bytes of `st`.
            crate::sys::cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const st).cast(), len) })?;
            Ok(UdpSocket {
                fd: Fd::from_nonblocking(std::net::UdpSocket::from(fd)),
            })
        })
    }

    /// Takes over a `std` socket (made non-blocking).
    ///
    /// # Errors
    /// The OS error of changing its flags.
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket { fd: Fd::new(s)? })
    }

    /// Receives one datagram and its sender, parking until one arrives.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; the OS error.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.read_with(|s| s.recv_from(buf))
    }

    /// Like `recv_from`, leaving the datagram queued.
    ///
    /// # Errors
    /// As for `recv_from`.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.read_with(|s| s.peek_from(buf))
    }

    /// Sends one datagram to `addr`, parking while the send buffer is full.
    ///
    /// # Errors
    /// `TimedOut` after the write timeout; the OS error.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        each_addr(addr, |a| self.fd.write_with(|s| s.send_to(buf, a)))
    }

    /// Sets the default peer (for `send` and `recv`) and filters what is received.
    ///
    /// # Errors
    /// The OS error.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        self.fd.get_ref().connect(addr)
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    /// As for `send_to`; `NotConnected` without a peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write_with(|s| s.send(buf))
    }

    /// Receives from the connected peer.
    ///
    /// # Errors
    /// As for `recv_from`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read_with(|s| s.recv(buf))
    }

    /// Like `recv`, leaving the datagram queued.
    ///
    /// # Errors
    /// As for `recv_from`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read_with(|s| s.peek(buf))
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// `NotConnected` without a peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// The OS error.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.fd.get_ref().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    /// The OS error.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.fd.get_ref().broadcast()
    }

    /// A second handle to the same socket (a duplicated descriptor).
    ///
    /// # Errors
    /// The OS error (`EMFILE`, …).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            fd: Fd::from_nonblocking(self.fd.get_ref().try_clone()?),
        })
    }

    socket_accessors!();
    ttl!();
}

fd_traits!(UdpSocket);
