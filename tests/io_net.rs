//! The epoll device on loopback: TCP, UDP, Unix sockets and pipes parking green
//! threads; timeouts (HAZARDS.md H10); errors from misbehaving peers; the misuse list's
//! I/O entries (two waiters, a descriptor closed under a waiter, a regular file).
//!
//! Tests under `Model::Full` keep the `preemptive` contract: their green threads share
//! only atomics and the runtime's own sockets.

mod support;

use preempt::io::Fd;
use preempt::net::{TcpListener, TcpStream, UdpSocket};
use preempt::thread::{self, Builder};
use preempt::{Model, Priority, Runtime};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A byte pattern that differs per connection and position.
fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + conn * 7 + i / 251) as u8)
        .collect()
}

fn echo_server(listener: TcpListener, conns: usize) -> preempt::thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..conns {
            let (mut s, _) = listener.accept().unwrap();
            handlers.push(thread::spawn(move || {
                let mut buf = vec![0; 16 << 10];
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => return,
                        n => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            }));
        }
        for h in handlers {
            h.join().unwrap();
        }
    })
}

fn echo_many(rt: &Runtime, conns: usize, bytes: usize) {
    rt.block_on(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = echo_server(listener, conns);
        let clients: Vec<_> = (0..conns)
            .map(|c| {
                thread::spawn(move || {
                    let s = Arc::new(TcpStream::connect(addr).unwrap());
                    let data = pattern(c, bytes);
                    // A writer and a reader per connection, so neither side's buffers
                    // can fill up against the other.
                    let (w, d) = (s.clone(), data.clone());
                    let writer = thread::spawn(move || {
                        for chunk in d.chunks(7919) {
                            (&*w).write_all(chunk).unwrap();
                        }
                        w.shutdown(std::net::Shutdown::Write).unwrap();
                    });
                    let mut back = Vec::with_capacity(bytes);
                    (&*s).read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    assert!(back == data, "connection {c}: echoed bytes differ");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
    });
}

#[test]
fn one_mib_echoed_through_100_concurrent_connections() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    echo_many(&rt, 100, 1 << 20);
    let s = rt.stats();
    assert!(s.net_events > 0, "the device saw no events: {s:?}");
}

#[test]
fn echo_under_full_preemption() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(250));
    echo_many(&rt, 16, 256 << 10);
}

#[test]
fn an_accept_loop_serves_many_clients() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    const CLIENTS: usize = 500;
    let served = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let mut served = 0;
            for s in listener.incoming().take(CLIENTS) {
                let mut s = s.unwrap();
                let mut b = [0; 8];
                s.read_exact(&mut b).unwrap();
                let v = u64::from_le_bytes(b) + 1;
                s.write_all(&v.to_le_bytes()).unwrap();
                served += 1;
            }
            served
        });
        let clients: Vec<_> = (0..CLIENTS as u64)
            .map(|i| {
                thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(&i.to_le_bytes()).unwrap();
                    let mut b = [0; 8];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(u64::from_le_bytes(b), i + 1);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap()
    });
    assert_eq!(served, CLIENTS);
}

/// H10: under a 100 µs tick, a read with a timeout neither returns `Interrupted` nor
/// returns early — from green threads (runtime timers) and from a plain OS thread
/// (`ppoll`, retried with the time left).
#[test]
fn read_timeouts_fire_on_time_and_never_early_h10() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(100));
    const TIMEOUT: Duration = Duration::from_millis(20);
    let waits = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(TIMEOUT));
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(TIMEOUT)).unwrap();
        // A spinner keeps the tick running and the carrier busy.
        let stop = Arc::new(AtomicUsize::new(0));
        let s2 = stop.clone();
        let spinner = thread::spawn(move || {
            while s2.load(Relaxed) == 0 {
                std::hint::spin_loop();
            }
        });
        let mut waits = Vec::new();
        for i in 0..10 {
            let t = Instant::now();
            let e = if i % 2 == 0 {
                (&client).read(&mut [0; 8]).unwrap_err()
            } else {
                udp.recv_from(&mut [0; 8]).unwrap_err()
            };
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            waits.push(t.elapsed());
        }
        stop.store(1, Relaxed);
        spinner.join().unwrap();
        waits
    });
    for w in &waits {
        assert!(*w >= TIMEOUT, "a read timed out early: {w:?}");
    }
    let mut sorted = waits.clone();
    sorted.sort();
    assert!(
        sorted[sorted.len() / 2] < TIMEOUT * 3,
        "median timed-out read took {:?}",
        sorted[sorted.len() / 2]
    );
    // A plain OS thread, bombarded with SIGALRM (which the runtime forwards), keeps its
    // deadline across EINTR.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let tid = Arc::new(AtomicU64::new(0));
    let t2 = tid.clone();
    let reader = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        t2.store(unsafe { libc::gettid() } as u64, Relaxed);
        let t = Instant::now();
        let e = udp.recv_from(&mut [0; 8]).unwrap_err();
        (e.kind(), t.elapsed())
    });
    while !reader.is_finished() {
        let t = tid.load(Relaxed);
        if t != 0 {
            // SAFETY: tgkill to a thread of ours; SIGALRM has the runtime's handler.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), t as i32, libc::SIGALRM) };
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let (kind, took) = reader.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(
        took >= TIMEOUT,
        "an OS thread's read timed out early: {took:?}"
    );
    drop(rt);
}

#[test]
fn a_peer_reset_is_an_error_not_a_panic() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let kind = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        client.write_all(b"unread").unwrap();
        // SO_LINGER {on, 0}: close sends RST.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads a live linger struct of the given size.
        let r = unsafe {
            libc::setsockopt(
                server_side.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size_of::<libc::linger>() as u32,
            )
        };
        assert_eq!(r, 0);
        let reader = thread::spawn(move || client.read(&mut [0; 64]).map_err(|e| e.kind()));
        thread::yield_now(); // the reader parks
        drop(server_side);
        reader.join().unwrap()
    });
    assert_eq!(kind, Err(ErrorKind::ConnectionReset));
}

#[test]
fn refused_and_timed_out_connects_are_errors() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        // A port nobody listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = TcpStream::connect(port).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        let e = TcpStream::connect_timeout(&port, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn udp_datagrams_round_trip() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    rt.block_on(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let echo = thread::spawn(move || {
            let mut buf = [0; 1500];
            for _ in 0..1000 {
                let (n, from) = b.recv_from(&mut buf).unwrap();
                assert_eq!(from, aa);
                b.send_to(&buf[..n], from).unwrap();
            }
        });
        a.connect(ba).unwrap();
        let mut buf = [0; 1500];
        for i in 0..1000usize {
            let msg = pattern(i, 1 + i % 1400);
            a.send(&msg).unwrap();
            let n = a.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg[..]);
        }
        echo.join().unwrap();
    });
}

#[test]
fn a_pipe_carries_a_mib_between_green_threads() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let (r, w) = std::io::pipe().unwrap();
        let data = pattern(3, 1 << 20);
        let d = data.clone();
        let writer = thread::spawn(move || {
            let mut w = Fd::new(w).unwrap();
            for chunk in d.chunks(10_007) {
                w.write_all(chunk).unwrap();
            }
        });
        let mut r = Fd::new(r).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == data);
    });
}

#[test]
fn unix_stream_pair_round_trip() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let (a, b) = preempt::os::unix::net::UnixStream::pair().unwrap();
        let t = thread::spawn(move || {
            let mut b = b;
            let mut buf = [0; 5];
            b.read_exact(&mut buf).unwrap();
            b.write_all(&buf).unwrap();
        });
        let mut a = a;
        a.write_all(b"unix!").unwrap();
        let mut buf = [0; 5];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"unix!");
        t.join().unwrap();
    });
}

/// Ping-pong of one-byte messages read into a larger buffer: every read is short, so the
/// next read waits for the socket's next event without trying first. The peer (an OS
/// thread) sends only after the reply to the previous message, i.e. after that short
/// read: each message must still arrive (no lost wakeup).
fn short_reads_then_later_data(rounds: u8) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0; 1];
        for i in 0..rounds {
            c.write_all(&[i]).unwrap();
            c.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i);
        }
    });
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0; 64];
    for i in 0..rounds {
        assert_eq!(s.read(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], i);
        s.write_all(&[i]).unwrap();
    }
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    client.join().unwrap();
}

/// On a carrier, and on a plain OS thread (where `poll` waits and no events are counted).
#[test]
fn data_that_comes_after_a_short_read_is_not_missed() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| short_reads_then_later_data(200));
    drop(rt);
    short_reads_then_later_data(200);
}

/// The peer writes a byte and closes at once while the reader waits: the data and the
/// hang-up often come in one event. After the short read of the byte, the next read must
/// report the end of the stream at once, not wait for an event that never comes.
#[test]
fn a_hang_up_that_comes_with_the_data_ends_the_stream() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            for _ in 0..100 {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c.write_all(b"a").unwrap();
                let mut k = [0; 1];
                c.read_exact(&mut k).unwrap();
                c.write_all(b"x").unwrap(); // and the drop closes
            }
        });
        for _ in 0..100 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0; 64];
            assert_eq!(s.read(&mut buf).unwrap(), 1);
            s.write_all(b"k").unwrap();
            let mut got = Vec::new();
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            assert_eq!(got, b"x");
        }
        client.join().unwrap();
    });
}

/// Misuse: a second waiter in the same direction gets an error, and the first still
/// gets its datagram.
#[test]
fn two_waiters_on_one_socket_is_an_error() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = sock.local_addr().unwrap();
        let s2 = sock.clone();
        let first = thread::spawn(move || {
            let mut buf = [0; 8];
            s2.recv(&mut buf).unwrap()
        });
        thread::yield_now(); // `first` runs and parks in recv
        let e = sock.recv(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ResourceBusy, "{e}");
        assert!(e.to_string().contains("already waiting"), "{e}");
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"hi", addr)
            .unwrap();
        assert_eq!(first.join().unwrap(), 2);
    });
}

/// Misuse: a descriptor closed under a parked waiter wakes it with an error.
#[test]
fn closing_under_a_waiter_wakes_it_with_an_error() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let (r, _w) = std::io::pipe().unwrap();
        let r = Arc::new(Fd::new(r).unwrap());
        let r2 = r.clone();
        let waiter = thread::spawn(move || r2.read_with(|mut p| p.read(&mut [0; 8])).unwrap_err());
        thread::yield_now(); // the waiter parks
        r.close();
        let e = waiter.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
        let again = r.read_with(|mut p| p.read(&mut [0; 8])).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::NotConnected);
    });
}

/// Misuse: a regular file cannot be waited for with epoll.
#[test]
fn a_regular_file_is_refused_with_unsupported() {
    let f = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let e = Fd::new(f).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("preempt::fs"), "{e}");
}

/// Dropping a stream takes it out of the epoll instance: thousands of short-lived
/// connections leave no registration behind and the descriptors are reused.
#[test]
fn dropped_streams_are_deregistered() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            for _ in 0..2000 {
                let (mut s, _) = listener.accept().unwrap();
                s.write_all(b"x").unwrap();
            }
        });
        let mut fds = std::collections::HashSet::new();
        for _ in 0..2000 {
            let mut c = TcpStream::connect(addr).unwrap();
            let mut b = [0; 1];
            c.read_exact(&mut b).unwrap(); // parks once: registered
            fds.insert(c.as_raw_fd());
        }
        server.join().unwrap();
        assert!(fds.len() < 50, "descriptors were not reused: {}", fds.len());
    });
}

/// A high-priority reader preempts a spinner as soon as its data arrives (`Full`).
#[test]
fn a_woken_reader_outranks_the_spinner() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    rt.block_on(|| {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        let reader = Builder::new()
            .priority(Priority::new(40))
            .spawn(move || {
                for _ in 0..50 {
                    sock.recv(&mut [0; 8]).unwrap();
                    g.fetch_add(1, Relaxed);
                }
            })
            .unwrap();
        let sender = std::thread::spawn(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..50 {
                s.send_to(b"x", addr).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        // Spin (never block) until every datagram was read.
        while got.load(Relaxed) < 50 {
            std::hint::spin_loop();
        }
        reader.join().unwrap();
        sender.join().unwrap();
    });
    let _ = Model::Full;
}

/// The runtime is dropped the moment `block_on` returns, while the thread that returned
/// may still be exiting and `ksoftirqd` (started by the first registration) sleeps. The
/// carrier must still see the shutdown once only daemons are left: a shutdown requested
/// between its last look and its going idle rang no bell, and it waited forever
/// (about one drop in 10^4 under load). `PREEMPT_SOAK_ITERS` runs more rounds.
#[test]
fn dropping_the_runtime_as_block_on_returns_never_hangs() {
    let _l = support::runtime_lock();
    let rounds: usize = std::env::var("PREEMPT_SOAK_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    for _ in 0..rounds {
        let rt = preempt::Runtime::builder()
            .shutdown_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let got = rt.block_on(|| {
            let sock = preempt::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = sock.local_addr().unwrap();
            let sender = preempt::spawn(move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.send_to(b"x", addr).unwrap();
            });
            let mut buf = [0; 1];
            let n = sock.recv(&mut buf).unwrap();
            sender.join().unwrap();
            n
        });
        assert_eq!(got, 1);
        drop(rt); // aborts the process if the carrier hangs
    }
}
