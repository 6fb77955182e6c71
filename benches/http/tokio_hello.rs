//! The baseline of `benches/http_compare.sh`: the same HTTP/1.1 keep-alive server as
//! `examples/http_hello.rs` — `/` answers "Hello, world!", `/spin` burns 5 ms of CPU
//! first — on tokio's current-thread runtime (one core, cooperative tasks).
//!
//! `cargo run --release --example tokio_hello -- [--addr 127.0.0.1:8081]`

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";
const SPUN: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nspun\n";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

async fn serve(mut s: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match s.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut start = 0;
        while let Some(end) = find_end(&buf[start..filled]) {
            let path = buf[start..start + end]
                .split(|&b| b == b' ')
                .nth(1)
                .unwrap_or(b"");
            out.extend_from_slice(match path {
                b"/" => HELLO,
                b"/spin" => {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(5) {
                        std::hint::spin_loop();
                    }
                    SPUN
                }
                _ => NOT_FOUND,
            });
            start += end;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            return;
        }
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8081".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--addr" {
            addr = it.next().expect("--addr ADDR");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let l = TcpListener::bind(&addr).await?;
        eprintln!("tokio_hello: serving on http://{addr}");
        loop {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            tokio::spawn(serve(s));
        }
    })
}
