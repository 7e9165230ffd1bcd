//! Hardware limits a broker on this machine can at best reach: `sluice-bench limits`
//! (disk, loopback TCP and cores side by side) and `sluice-bench net` (loopback TCP alone).
//!
//! The disk part is [`crate::disk::measure_disk`]. The network part is loopback TCP
//! bandwidth: two plain std sockets on 127.0.0.1, a writer thread writing large chunks
//! (1 MiB by default) for a fixed time and a reader thread reading until end of stream
//! (`net.loopback_tcp`). It bounds what a produce or fetch benchmark against a local broker
//! can show, since loopback traffic costs CPU on both ends of the same machine. The core
//! count (`machine.cores`) says how many threads broker and load tool share.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use crate::report::ResultLine;

/// Size of each write and read.
pub const CHUNK: usize = 1 << 20;

/// Measures loopback TCP bandwidth by streaming [`CHUNK`]-byte writes for `duration`.
///
/// # Errors
/// Socket or thread failures, or fewer bytes arriving than were sent.
pub fn loopback_tcp(duration: Duration) -> anyhow::Result<ResultLine> {
    loopback_tcp_with(duration, CHUNK)
}

/// Measures loopback TCP bandwidth by streaming `chunk`-byte writes for `duration`: one
/// writer thread, one reader thread (the caller's) reading `chunk` bytes at a time.
///
/// # Errors
/// Socket or thread failures, or fewer bytes arriving than were sent.
pub fn loopback_tcp_with(duration: Duration, chunk: usize) -> anyhow::Result<ResultLine> {
    anyhow::ensure!(chunk > 0, "the chunk size must be positive");
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let address = listener.local_addr()?;
    eprintln!("net.loopback_tcp: {chunk}-byte writes for {duration:?} over {address}");
    let sender = std::thread::Builder::new()
        .name("sluice-bench-tcp-send".into())
        .spawn(move || -> anyhow::Result<u64> {
            let mut stream = TcpStream::connect(address).context("connecting")?;
            let data: Vec<u8> = (0..chunk).map(|i| (i % 251) as u8).collect();
            let mut sent = 0u64;
            let start = Instant::now();
            while start.elapsed() < duration {
                stream.write_all(&data).context("sending")?;
                sent += chunk as u64;
            }
            stream.shutdown(Shutdown::Write).context("closing")?;
            Ok(sent)
        })
        .context("spawning the sender thread")?;

    let (mut stream, _) = listener.accept().context("accepting")?;
    let mut buffer = vec![0u8; chunk];
    let mut received = 0u64;
    let mut reads = 0u64;
    let start = Instant::now();
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                received += n as u64;
                reads += 1;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receiving"),
        }
    }
    let elapsed = start.elapsed();
    let sent = sender
        .join()
        .map_err(|_| anyhow!("the sender thread panicked"))??;
    anyhow::ensure!(sent == received, "sent {sent} bytes, received {received}");
    Ok(
        ResultLine::new("net.loopback_tcp", received, reads, elapsed)
            .with_extra("chunk_bytes", chunk as f64),
    )
}

/// CPU cores this process may run on (`machine.cores`, in the `cores` field).
pub fn cores() -> ResultLine {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    ResultLine::new("machine.cores", 0, 0, Duration::ZERO).with_extra("cores", cores as f64)
}

/// One line with the limits side by side: disk write MB/s, fdatasync p99, loopback TCP
/// MB/s and cores, from the result lines of `limits` (missing ones are skipped).
pub fn summary(results: &[ResultLine]) -> String {
    let find = |name: &str| results.iter().find(|r| r.name == name);
    let mut parts = Vec::new();
    if let Some(disk) = find("disk.write") {
        parts.push(format!("disk write {:.0} MB/s", disk.mb_per_s));
    }
    if let Some(p99) = find("disk.fdatasync").and_then(|r| {
        r.latencies
            .iter()
            .find(|(label, _)| label == "fdatasync")
            .map(|(_, p)| p.p99_us)
    }) {
        parts.push(format!("fdatasync p99 {p99:.0} us"));
    }
    if let Some(net) = find("net.loopback_tcp") {
        parts.push(format!("loopback TCP {:.0} MB/s", net.mb_per_s));
    }
    if let Some(cores) = find("machine.cores")
        .and_then(|r| r.extra.iter().find(|(k, _)| k == "cores").map(|(_, v)| *v))
    {
        parts.push(format!("{cores:.0} cores"));
    }
    format!("limits: {}\n", parts.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_moves_bytes() -> anyhow::Result<()> {
        let line = loopback_tcp(Duration::from_millis(50))?;
        assert!(line.bytes >= CHUNK as u64);
        assert!(line.mb_per_s > 0.0);
        let small = loopback_tcp_with(Duration::from_millis(20), 64 << 10)?;
        assert_eq!(small.extra, vec![("chunk_bytes".to_string(), 65536.0)]);
        assert!(loopback_tcp_with(Duration::from_millis(1), 0).is_err());
        Ok(())
    }

    #[test]
    fn summary_puts_the_limits_side_by_side() {
        let net = ResultLine::new("net.loopback_tcp", 5_000_000_000, 1, Duration::from_secs(1));
        let disk = ResultLine::new("disk.write", 2_000_000_000, 1, Duration::from_secs(1));
        let cores = cores();
        assert!(cores.extra[0].1 >= 1.0);
        let text = summary(&[disk, net, cores]);
        assert!(
            text.starts_with("limits: disk write 2000 MB/s | loopback TCP 5000 MB/s | "),
            "{text}"
        );
        assert!(text.trim_end().ends_with("cores"), "{text}");
    }
}
