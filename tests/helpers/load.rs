//! A load generator for `just bench`: `load PORT CONNECTIONS SECONDS` sends `GET /` to
//! the host's 127.0.0.1:PORT (and nowhere else) from CONNECTIONS threads at once, each a
//! new connection per request (busybox httpd closes every one), for SECONDS after a
//! warm-up of half a second, and prints `requests N failed F per-second R`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<u64> = args.iter().filter_map(|arg| arg.parse().ok()).collect();
    let (port, connections, seconds) = match numbers[..] {
        [port, connections, seconds] if args.len() == 3 => (port, connections, seconds),
        _ => {
            eprintln!("usage: load PORT CONNECTIONS SECONDS");
            return ExitCode::from(2);
        }
    };
    let Ok(port) = u16::try_from(port) else {
        eprintln!("load: {port} is not a port");
        return ExitCode::from(2);
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (counting, stop) = (counting.clone(), stop.clone());
            let (done, failed) = (done.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = get(address);
                    if counting.load(Ordering::Relaxed) {
                        let counter = if ok { &done } else { &failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    counting.store(true, Ordering::SeqCst);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    counting.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        let _ = worker.join();
    }
    let (done, failed) = (done.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    println!(
        "requests {done} failed {failed} per-second {:.0}",
        done as f64 / elapsed
    );
    match failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// One `GET /` on a connection of its own: true if the answer is a 200, within 5 s.
fn get(address: SocketAddr) -> bool {
    let wait = Duration::from_secs(5);
    let Ok(mut stream) = TcpStream::connect_timeout(&address, wait) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(wait));
    if stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = Vec::with_capacity(512);
    stream.read_to_end(&mut answer).is_ok() && answer.windows(5).any(|w| w == b" 200 ")
}
