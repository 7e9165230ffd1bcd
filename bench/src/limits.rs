//! Hardware limits a broker on this machine can at best reach: `sluice-bench limits`.
//!
//! The disk part is [`crate::disk::measure_disk`]. The network part is loopback TCP
//! bandwidth: two plain std sockets on 127.0.0.1, a sender thread writing 1 MiB chunks for
//! a fixed time and a receiver reading until end of stream (`net.loopback_tcp`). It bounds
//! what a produce or fetch benchmark against a local broker can show, since loopback
//! traffic costs CPU on both ends of the same machine.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use crate::report::ResultLine;

/// Size of each write and read.
pub const CHUNK: usize = 1 << 20;

/// Measures loopback TCP bandwidth by streaming for `duration`.
pub fn loopback_tcp(duration: Duration) -> anyhow::Result<ResultLine> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let address = listener.local_addr()?;
    eprintln!("net.loopback_tcp: {CHUNK}-byte writes for {duration:?} over {address}");
    let sender = std::thread::Builder::new()
        .name("sluice-bench-tcp-send".into())
        .spawn(move || -> anyhow::Result<u64> {
            let mut stream = TcpStream::connect(address).context("connecting")?;
            let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
            let mut sent = 0u64;
            let start = Instant::now();
            while start.elapsed() < duration {
                stream.write_all(&chunk).context("sending")?;
                sent += CHUNK as u64;
            }
            stream.shutdown(Shutdown::Write).context("closing")?;
            Ok(sent)
        })
        .context("spawning the sender thread")?;

    let (mut stream, _) = listener.accept().context("accepting")?;
    let mut buffer = vec![0u8; CHUNK];
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
            .with_extra("chunk_bytes", CHUNK as f64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_moves_bytes() -> anyhow::Result<()> {
        let line = loopback_tcp(Duration::from_millis(50))?;
        assert!(line.bytes >= CHUNK as u64);
        assert!(line.mb_per_s > 0.0);
        Ok(())
    }
}
