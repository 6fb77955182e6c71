//! A minimal HTTP/1.1 keep-alive server: one green thread per connection, plain
//! blocking `read`/`write` on `preempt::net::TcpStream`.
//!
//! Routes: `/` answers "Hello, world!"; `/spin` burns 5 ms of CPU first (a request that
//! computes). Under `Full` the computing request is preempted and `/` keeps answering;
//! under `None` every `/` waits behind it. `benches/http_compare.sh` drives this server
//! with `wrk` against a tokio server of the same behaviour.
//!
//! ```text
//! cargo run --release --example http_hello -- [--addr 127.0.0.1:8080] [--model none|voluntary|full] [--tick-us 1000] [--fair]
//! cargo run --release --example http_hello -- --self-test   # serve, load it, print, exit
//! ```
//!
//! The server keeps `Builder::preemptive`'s contract: its threads share only sockets
//! and atomics, and print only before the runtime starts or after it ends.

use preempt::net::{TcpListener, TcpStream};
use preempt::{Model, Runtime, thread};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";
const SPUN: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nspun\n";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// Burns `d` of CPU without blocking.
fn spin_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Serves one connection until the peer closes it (or errs: a peer's misbehaviour ends
/// its connection, nothing else).
fn serve(mut s: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match s.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        // Answer every complete request in the buffer (pipelining).
        let mut start = 0;
        while let Some(end) = find_end(&buf[start..filled]) {
            let req = &buf[start..start + end];
            let path = req.split(|&b| b == b' ').nth(1).unwrap_or(b"");
            out.extend_from_slice(match path {
                b"/" => HELLO,
                b"/spin" => {
                    spin_for(Duration::from_millis(5));
                    SPUN
                }
                _ => NOT_FOUND,
            });
            start += end;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            return; // a request larger than the buffer: not ours to serve
        }
        if !out.is_empty() {
            if s.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The length of the first complete request head in `b`, if any.
fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn accept_loop(listener: TcpListener, stop: Arc<AtomicBool>) {
    for s in listener.incoming() {
        if stop.load(Relaxed) {
            return;
        }
        match s {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                thread::spawn(move || serve(s));
            }
            Err(_) => thread::sleep(Duration::from_millis(1)), // EMFILE and friends
        }
    }
}

struct Args {
    addr: String,
    model: Model,
    tick: Duration,
    fair: bool,
    self_test: bool,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        model: Model::Full,
        tick: Duration::from_millis(1),
        fair: false,
        self_test: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--addr" => a.addr = it.next().expect("--addr ADDR"),
            "--model" => {
                a.model = match it.next().as_deref() {
                    Some("none") => Model::None,
                    Some("voluntary") => Model::Voluntary,
                    Some("full") => Model::Full,
                    m => panic!("--model none|voluntary|full, not {m:?}"),
                }
            }
            "--tick-us" => {
                a.tick = Duration::from_micros(
                    it.next().and_then(|v| v.parse().ok()).expect("--tick-us N"),
                )
            }
            "--fair" => a.fair = true,
            "--self-test" => a.self_test = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn build(a: &Args) -> std::io::Result<Runtime> {
    let b = Runtime::builder().tick(a.tick).fair(a.fair).name("http");
    if a.model >= Model::Full {
        // SAFETY: the server's threads share only sockets and atomics (module docs).
        unsafe { b.preemptive(a.model) }.build()
    } else {
        b.model(a.model).build()
    }
}

/// Loads the server from green threads of the same runtime: `conns` keep-alive
/// connections each sending `per_conn` requests for `/`, while one connection hammers
/// `/spin`. Returns the `/` latencies in µs.
fn self_test(addr: SocketAddr, conns: usize, per_conn: usize) -> Vec<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let hammer = thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        let mut buf = [0; 256];
        while !s2.load(Relaxed) {
            c.write_all(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let _ = c.read(&mut buf).unwrap();
        }
    });
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let mut buf = [0; 256];
                let mut lat = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
                    let t = Instant::now();
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut got = 0;
                    while got < HELLO.len() {
                        got += c.read(&mut buf[got..]).unwrap();
                    }
                    assert_eq!(&buf[..got], HELLO);
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<u64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    stop.store(true, Relaxed);
    hammer.join().unwrap();
    all.sort_unstable();
    all
}

fn main() -> std::io::Result<()> {
    let a = args();
    let rt = build(&a)?;
    let stop = Arc::new(AtomicBool::new(false));
    if !a.self_test {
        let listener_addr = a.addr.clone();
        eprintln!(
            "http_hello: serving on http://{} under {:?}, tick {:?}",
            a.addr,
            rt.model(),
            a.tick
        );
        return rt.block_on(move || {
            let l = TcpListener::bind(listener_addr)?;
            accept_loop(l, stop);
            Ok(())
        });
    }
    let lat = rt.block_on(move || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let s = stop.clone();
        let server = thread::spawn(move || accept_loop(l, s));
        let lat = self_test(addr, 8, 200);
        stop.store(true, Relaxed);
        drop(TcpStream::connect(addr)); // wakes the accept loop to see `stop`
        server.join().unwrap();
        lat
    });
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "http_hello self-test under {:?}, tick {:?}: {} requests for / beside a /spin hammer: p50 {} µs, p99 {} µs",
        rt.model(),
        a.tick,
        lat.len(),
        pct(0.5),
        pct(0.99)
    );
    let s = rt.stats();
    println!(
        "  device: {} interrupts, {} softirq passes, {} events; {} involuntary switches",
        s.net_interrupts, s.net_softirq_passes, s.net_events, s.switches_involuntary
    );
    Ok(())
}
