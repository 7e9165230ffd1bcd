//! The admin HTTP listener (`--admin-addr`, default 127.0.0.1:9644): `GET /metrics` in the
//! Prometheus text format and `GET /health` (200 once every partition is recovered and the
//! Kafka listener serves, 503 before that and while stopping).
//!
//! It runs on a plain thread of its own, outside the shards: it is up while the shards are
//! still recovering (so `/health` can say so), and a slow scraper never holds up a shard. A
//! scrape asks each shard for a snapshot through its mailbox, like any cross-shard work,
//! and waits a bounded time for the answers; a shard that does not answer in time shows as
//! `sluice_shard_up 0`. Connections are served one at a time with short timeouts, and
//! requests are bounded in size.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::channel::mpsc;

use crate::metrics::{ShardSnapshot, render};
use crate::shard::ShardMessage;

/// Largest request head accepted.
const REQUEST_HEAD_MAX: usize = 8 * 1024;
/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape waits for the shards' snapshots.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// The broker's lifecycle as `/health` reports it.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    /// Every shard recovered its partitions and serves.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Shutdown began.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Ready and not stopping.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }
}

/// The running admin listener; dropping it does not stop it, [`AdminServer::stop`] does.
#[derive(Debug)]
pub struct AdminServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Binds `addr` and serves it on a new thread.
///
/// # Errors
/// The address cannot be bound.
pub fn start(
    addr: SocketAddr,
    health: Arc<Health>,
    mailboxes: Vec<mpsc::Sender<ShardMessage>>,
) -> std::io::Result<AdminServer> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("sluice-admin".to_string())
            .spawn(move || serve(&listener, &stop, &health, mailboxes))?
    };
    tracing::info!(%addr, "admin listener (/metrics, /health)");
    Ok(AdminServer {
        addr,
        stop,
        thread: Some(thread),
    })
}

impl AdminServer {
    /// Stops accepting and waits for the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: &TcpListener,
    stop: &AtomicBool,
    health: &Health,
    mut mailboxes: Vec<mpsc::Sender<ShardMessage>>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if let Err(error) = serve_client(stream, health, &mut mailboxes) {
            tracing::debug!(%error, "admin request failed");
        }
    }
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    Health,
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Routes a request head (`GET /path HTTP/1.1\r\n…`). `HEAD` is served like `GET`.
fn route(head: &[u8]) -> (Route, bool) {
    let Some(line) = head.split(|&b| b == b'\r' || b == b'\n').next() else {
        return (Route::BadRequest, false);
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return (Route::BadRequest, false);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(protocol)) = (parts.next(), parts.next(), parts.next())
    else {
        return (Route::BadRequest, false);
    };
    if !protocol.starts_with("HTTP/1.") {
        return (Route::BadRequest, false);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (Route::MethodNotAllowed, false);
    }
    let path = target.split('?').next().unwrap_or(target);
    let route = match path {
        "/metrics" => Route::Metrics,
        "/health" | "/ready" => Route::Health,
        _ => Route::NotFound,
    };
    (route, head_only)
}

fn serve_client(
    mut stream: TcpStream,
    health: &Health,
    mailboxes: &mut [mpsc::Sender<ShardMessage>],
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() > REQUEST_HEAD_MAX {
            return respond(
                &mut stream,
                431,
                "text/plain",
                "request head too large\n",
                false,
            );
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let (route, head_only) = route(&head);
    match route {
        Route::Metrics => {
            let body = scrape(health, mailboxes);
            respond(
                &mut stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
                head_only,
            )
        }
        Route::Health if health.is_ready() => {
            respond(&mut stream, 200, "text/plain", "ready\n", head_only)
        }
        Route::Health => respond(
            &mut stream,
            503,
            "text/plain",
            "not ready: recovering or stopping\n",
            head_only,
        ),
        Route::NotFound => respond(
            &mut stream,
            404,
            "text/plain",
            "not found: try /metrics or /health\n",
            head_only,
        ),
        Route::MethodNotAllowed => respond(
            &mut stream,
            405,
            "text/plain",
            "only GET and HEAD\n",
            head_only,
        ),
        Route::BadRequest => respond(&mut stream, 400, "text/plain", "bad request\n", false),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Asks every shard for its snapshot and renders what came back in time.
fn scrape(health: &Health, mailboxes: &mut [mpsc::Sender<ShardMessage>]) -> String {
    let (reply, answers) = std::sync::mpsc::channel();
    let mut asked = 0;
    for mailbox in mailboxes.iter_mut() {
        // A full mailbox (a shard far behind) is skipped rather than waited on.
        if mailbox
            .try_send(ShardMessage::Metrics {
                reply: reply.clone(),
            })
            .is_ok()
        {
            asked += 1;
        }
    }
    drop(reply);
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let mut snapshots: Vec<ShardSnapshot> = Vec::with_capacity(asked);
    while snapshots.len() < asked {
        let left = deadline.saturating_duration_since(Instant::now());
        match answers.recv_timeout(left) {
            Ok(snapshot) => snapshots.push(snapshot),
            Err(_) => break,
        }
    }
    snapshots.sort_by_key(|snapshot| snapshot.shard);
    render(health.is_ready(), mailboxes.len(), &snapshots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            (Route::Metrics, false)
        );
        assert_eq!(
            route(b"HEAD /health HTTP/1.0\r\n\r\n"),
            (Route::Health, true)
        );
        assert_eq!(
            route(b"GET /metrics?name[]=x HTTP/1.1\r\n\r\n").0,
            Route::Metrics
        );
        assert_eq!(route(b"GET /nope HTTP/1.1\r\n\r\n").0, Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n").0,
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"\xff\xfe\r\n\r\n").0, Route::BadRequest);
        assert_eq!(route(b"GET /metrics\r\n\r\n").0, Route::BadRequest);
    }

    #[test]
    fn health_is_ready_only_between_recovery_and_shutdown() {
        let health = Health::default();
        assert!(!health.is_ready());
        health.set_ready();
        assert!(health.is_ready());
        health.set_stopping();
        assert!(!health.is_ready());
    }
}
