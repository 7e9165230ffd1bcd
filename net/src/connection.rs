//! One client connection, on the shard that accepted it.
//!
//! The reader splits frames, decodes each request and starts its handler as a task right
//! away (pipelining); the writer awaits those tasks in request order and writes the
//! answers, so responses always come back in order. At most
//! [`PIPELINE_DEPTH_MAX`](crate::limits::PIPELINE_DEPTH_MAX) requests are in flight: the
//! reader stops reading until the writer catches up. Record data of Fetch answers goes out
//! from memory as is, and from segment files with sendfile (no copy through user space).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use bytes::BytesMut;
use futures::channel::mpsc;
use futures::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use futures::{SinkExt, StreamExt};
use glommio::net::TcpStream;

use crate::codec::{Rejection, decode_request};
use crate::fetch_encode::{OutChunk, RecordChunk};
use crate::frame::FrameDecoder;
use crate::handlers::{self, Reply};
use crate::limits::PIPELINE_DEPTH_MAX;
use crate::shard::Shard;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Write buffer for small responses (flushed whenever the pipeline runs dry).
const WRITE_BUFFER: usize = 64 * 1024;

/// Serves one connection until the client closes it or sends something unservable.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |addr| addr.to_string());
    let socket_fd = stream.as_raw_fd();
    // glommio sends with MSG_DONTWAIT and io_uring, but leaves the socket blocking; sendfile
    // follows the socket's mode, and a blocking one would put the whole shard to sleep
    // whenever a consumer's socket buffer is full. Non-blocking, sendfile answers EAGAIN and
    // the writer waits for room through the reactor instead.
    if let Err(error) = set_nonblocking(socket_fd) {
        tracing::warn!(%peer, %error, "cannot make the socket non-blocking; closing it");
        return;
    }
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "TCP_NODELAY");
    }
    let (reader, writer) = stream.split();
    let (pending, answers) = mpsc::channel::<Answer>(PIPELINE_DEPTH_MAX);
    shard.metrics.connection_opened();
    let writer_task = glommio::spawn_local(write_loop(
        shard.clone(),
        writer,
        socket_fd,
        answers,
        peer.clone(),
    ));
    if let Err(message) = read_loop(&shard, reader, pending, &peer).await {
        tracing::warn!(%peer, %message, "closing connection");
    }
    writer_task.await;
    shard.metrics.connection_closed();
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this connection owns; no memory is involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A request's answer being prepared, and the request's size (in flight until written).
type Answer = (glommio::Task<Reply>, usize);

async fn read_loop(
    shard: &Rc<Shard>,
    mut reader: futures::io::ReadHalf<TcpStream>,
    mut pending: mpsc::Sender<Answer>,
    peer: &str,
) -> Result<(), String> {
    let peer: Rc<str> = Rc::from(peer);
    let decoder = FrameDecoder::new(shard.config.request_max_bytes);
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        while let Some(frame) = decoder
            .decode(&mut buffer)
            .map_err(|error| error.to_string())?
        {
            let size = frame.len();
            let task = match decode_request(frame) {
                Ok(request) => {
                    let shard = shard.clone();
                    let peer = peer.clone();
                    glommio::spawn_local(async move {
                        let started = std::time::Instant::now();
                        let api_key = request.api_key;
                        let reply = handlers::handle(&shard, request, &peer).await;
                        shard
                            .metrics
                            .observe_request(api_key as i16, size, started.elapsed());
                        reply
                    })
                }
                Err(Rejection::Respond(frame)) => {
                    glommio::spawn_local(async move { Reply::Frame(frame) })
                }
                Err(Rejection::Close(message)) => return Err(message),
            };
            shard.metrics.request_received(size);
            if pending.send((task, size)).await.is_err() {
                shard.metrics.request_answered(size);
                return Ok(()); // the writer stopped: the connection is going away
            }
        }
        let read = match reader.read(&mut chunk).await {
            Ok(read) => read,
            Err(error) => {
                // The client went away (reset, timeout): normal life of a connection.
                tracing::debug!(%error, "connection read failed");
                return Ok(());
            }
        };
        if read == 0 {
            if buffer.is_empty() {
                return Ok(());
            }
            return Err(format!(
                "connection closed inside a frame ({} bytes buffered)",
                buffer.len()
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

async fn write_loop(
    shard: Rc<Shard>,
    writer: futures::io::WriteHalf<TcpStream>,
    socket_fd: RawFd,
    mut answers: mpsc::Receiver<Answer>,
    peer: String,
) {
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, writer);
    // Answers still queued when the loop ends are dropped: no longer in flight.
    struct Written<'a>(&'a Shard, usize);
    impl Drop for Written<'_> {
        fn drop(&mut self) {
            self.0.metrics.request_answered(self.1);
        }
    }
    while let Some((task, size)) = answers.next().await {
        let _written = Written(&shard, size);
        let reply = task.await;
        let result = match reply {
            Reply::Frame(frame) => writer.write_all(&frame).await,
            Reply::Chunks(chunks) if shard.config.fetch_zero_copy => {
                write_chunks(&mut writer, socket_fd, chunks).await
            }
            Reply::Chunks(chunks) => write_copied(&mut writer, chunks).await,
            Reply::Nothing => Ok(()),
            Reply::Close(message) => {
                tracing::warn!(%peer, %message, "closing connection");
                break;
            }
        };
        // Flush every answer: the next one may be a long-poll that must not hold this back.
        let result = match result {
            Ok(()) => writer.flush().await,
            other => other,
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "write failed; closing connection");
            break;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.close().await;
    answers.close();
    while let Ok((_, size)) = answers.try_recv() {
        shard.metrics.request_answered(size);
    }
}

async fn write_chunks(
    writer: &mut BufWriter<futures::io::WriteHalf<TcpStream>>,
    socket_fd: RawFd,
    chunks: Vec<OutChunk>,
) -> io::Result<()> {
    for chunk in chunks {
        match chunk {
            OutChunk::Encoded(bytes) | OutChunk::Records(RecordChunk::Memory(bytes)) => {
                writer.write_all(&bytes).await?
            }
            OutChunk::Records(RecordChunk::File {
                file,
                position,
                len,
            }) => {
                writer.flush().await?;
                send_file(writer, socket_fd, &file, position, len).await?;
            }
        }
    }
    Ok(())
}

/// Sends a response the way a copying broker would: every piece, records included, copied
/// into one response buffer (file ranges read with pread), then written. Only used when
/// `fetch_zero_copy` is off, to measure what zero-copy is worth.
async fn write_copied(
    writer: &mut BufWriter<futures::io::WriteHalf<TcpStream>>,
    chunks: Vec<OutChunk>,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let total: u64 = chunks.iter().map(OutChunk::len).sum();
    let mut response = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for chunk in chunks {
        match chunk {
            OutChunk::Encoded(bytes) | OutChunk::Records(RecordChunk::Memory(bytes)) => {
                response.extend_from_slice(&bytes);
            }
            OutChunk::Records(RecordChunk::File {
                file,
                position,
                len,
            }) => {
                let start = response.len();
                let len = usize::try_from(len).map_err(|_| io::Error::other("range over usize"))?;
                response.resize(start + len, 0);
                file.read_exact_at(&mut response[start..], position)?;
            }
        }
    }
    writer.write_all(&response).await
}

/// Sends `len` bytes of `file` at `position` with sendfile. When the socket buffer is full
/// (EAGAIN), a small piece goes through the async write path instead, which waits for the
/// socket to drain; then sendfile resumes.
async fn send_file(
    writer: &mut BufWriter<futures::io::WriteHalf<TcpStream>>,
    socket_fd: RawFd,
    file: &std::fs::File,
    position: u64,
    len: u64,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut offset =
        i64::try_from(position).map_err(|_| io::Error::other("file position over i64"))?;
    let end = offset + i64::try_from(len).map_err(|_| io::Error::other("length over i64"))?;
    while offset < end {
        let count = usize::try_from(end - offset)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        // SAFETY: both descriptors are open for the duration of the call (the socket is
        // owned by this connection's stream, the file by `file`); `offset` is a valid,
        // exclusively borrowed i64 the kernel updates.
        let sent = unsafe { libc::sendfile(socket_fd, file.as_raw_fd(), &raw mut offset, count) };
        if sent > 0 {
            continue;
        }
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file shorter than the range sent",
            ));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN) => {
                let piece = usize::try_from(end - offset)
                    .unwrap_or(usize::MAX)
                    .min(64 * 1024);
                let mut buffer = vec![0u8; piece];
                file.read_exact_at(&mut buffer, offset as u64)?;
                writer.write_all(&buffer).await?;
                writer.flush().await?;
                offset += piece as i64;
            }
            Some(libc::EINTR) => {}
            _ => return Err(error),
        }
    }
    Ok(())
}
