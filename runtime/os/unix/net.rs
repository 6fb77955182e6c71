//! Unix-domain stream sockets whose blocking calls park the green thread (std's
//! [`std::os::unix::net`]).
//!
//! `connect` to a path is made by `std` (a Unix-domain connect does not wait for the
//! peer; it fails at once when the listener's backlog is full); everything after it
//! parks.

use crate::io::Fd;
use crate::io::reactor::{READ, WRITE};
use crate::net::{fd_traits, socket_accessors};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A Unix-domain stream socket.
#[derive(Debug)]
pub struct UnixStream {
    fd: Fd<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    /// The OS error (`NotFound`, `ConnectionRefused`, …).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::from_std(std::os::unix::net::UnixStream::connect(path)?)
    }

    /// A connected pair.
    ///
    /// # Errors
    /// The OS error (`EMFILE`, …).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Takes over a `std` stream (made non-blocking).
    ///
    /// # Errors
    /// The OS error of changing its flags.
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream { fd: Fd::new(s)? })
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The OS error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().peer_addr()
    }

    /// Shuts down one or both halves.
    ///
    /// # Errors
    /// The OS error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.get_ref().shutdown(how)
    }

    socket_accessors!();
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.fd.read_stream(len, |mut s| s.read(buf))
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write_with(|mut s| s.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fd_traits!(UnixStream);

/// A Unix-domain listener; `accept` parks the green thread.
#[derive(Debug)]
pub struct UnixListener {
    fd: Fd<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` and listens.
    ///
    /// # Errors
    /// The OS error (`AddrInUse`, …).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        Ok(UnixListener {
            fd: Fd::new(std::os::unix::net::UnixListener::bind(path)?)?,
        })
    }

    /// Accepts a connection, parking until one arrives.
    ///
    /// # Errors
    /// The OS error (`EMFILE`, …).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.fd.read_with(|l| l.accept())?;
        Ok((UnixStream::from_std(s)?, a))
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }
}

fd_traits!(UnixListener);
