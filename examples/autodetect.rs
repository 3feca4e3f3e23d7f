//! Measures what the `auto` listener's `auto_detect` must cover: the time from the server's
//! `accept` (or from the end of a PROXY v2 header) to the first byte of a client that speaks
//! TLS first. `scripts/auto-detect.sh` runs it over a lossy loopback (1% of packets dropped by
//! iptables in a network namespace), directly and behind HAProxy with PROXY v2.
//!
//!   autodetect --listen ADDR [--target ADDR] [--proxy-v2] [--connections N] [--concurrency C]
//!              [--label NAME]
//!
//! It starts the timing server on `--listen` (directly: no `--target`; behind HAProxy:
//! `--target` is HAProxy's frontend, whose backend is `--listen`, and `--proxy-v2`), opens N
//! connections C at a time, each writing a 517-byte record that starts like a TLS 1.3
//! ClientHello as soon as it is connected, and prints the distribution of the waits and the
//! share detected within each candidate `auto_detect`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

const CANDIDATES_MS: [u64; 10] = [50, 100, 150, 200, 250, 300, 400, 500, 750, 1000];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let listen = get("--listen").expect("--listen ADDR");
    let target = get("--target").unwrap_or_else(|| listen.clone());
    let n: usize = get("--connections").map_or(20_000, |v| v.parse().expect("number"));
    let concurrency: usize = get("--concurrency").map_or(50, |v| v.parse().expect("number"));
    let proxy_v2 = args.iter().any(|a| a == "--proxy-v2");
    let label = get("--label").unwrap_or_else(|| "direct".into());

    let listener = TcpListener::bind(&listen).await.expect("bind --listen");
    let waits = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let server_waits = Arc::clone(&waits);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let waits = Arc::clone(&server_waits);
            tokio::spawn(async move {
                if let Some(wait) = first_byte_wait(tcp, proxy_v2).await {
                    waits.lock().await.push(wait);
                }
            });
        }
    });

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let (next, target) = (Arc::clone(&next), target.clone());
        clients.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let _ = client(&target).await;
            }
        }));
    }
    for c in clients {
        let _ = c.await;
    }
    // Let the last servers record.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut w = waits.lock().await.clone();
    w.sort();
    let total = w.len();
    let pct = |p: f64| {
        w.get(((total as f64 * p) as usize).min(total.saturating_sub(1)))
            .copied()
    };
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!(
        "{label}: {total} of {n} connections timed in {:.1} s; wait p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, p99.99 {:.2} ms, max {:.2} ms",
        started.elapsed().as_secs_f64(),
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(pct(0.999)),
        ms(pct(0.9999)),
        ms(w.last().copied()),
    );
    for c in CANDIDATES_MS {
        let within = w.iter().filter(|d| **d <= Duration::from_millis(c)).count();
        println!(
            "{label}: auto_detect {c:>4} ms detects {:.3}% ({} missed)",
            within as f64 * 100.0 / total.max(1) as f64,
            total - within
        );
    }
}

/// Time from accept (or the end of the PROXY v2 header) to the first byte after it.
async fn first_byte_wait(mut tcp: TcpStream, proxy_v2: bool) -> Option<Duration> {
    let mut start = Instant::now();
    if proxy_v2 {
        let mut head = [0u8; 16];
        tcp.read_exact(&mut head).await.ok()?;
        let len = u16::from_be_bytes([head[14], head[15]]) as usize;
        let mut rest = vec![0u8; len];
        tcp.read_exact(&mut rest).await.ok()?;
        start = Instant::now();
    }
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(30), tcp.peek(&mut first))
        .await
        .ok()?
        .ok()?;
    (n == 1 && first[0] == 0x16).then(|| start.elapsed())
}

async fn client(target: &str) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(target).await?;
    tcp.set_nodelay(true)?;
    // A TLS record header (handshake, TLS 1.0 record version, 512 bytes), then filler.
    let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00];
    hello.resize(517, 0x01);
    tcp.write_all(&hello).await?;
    // Wait for the server to have seen it (it closes after peeking).
    let mut sink = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut sink)).await;
    Ok(())
}
