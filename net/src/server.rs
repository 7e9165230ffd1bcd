//! Starting and stopping the broker: one glommio executor per core, each with its shard,
//! its mailbox and its own listener on the shared Kafka port (`SO_REUSEPORT`: the kernel
//! spreads connections over the shards).

use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, SinkExt};
use glommio::{LocalExecutorBuilder, Placement};

use crate::admin::{AdminServer, Health};
use crate::config::BrokerConfig;
use crate::shard::{MAILBOX_DEPTH, Shard, ShardMessage};
use crate::topics::{TOPICS_FILE, TopicsSnapshot};

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the topics file could not be used.
    #[error("data directory {path}: {message}")]
    Data {
        /// The path.
        path: String,
        /// What failed.
        message: String,
    },
    /// glommio could not start an executor: io_uring or locked memory is missing.
    #[error(
        "cannot start an io_uring executor on core {core}: {message}. Sluice needs Linux 5.8+ with io_uring \
         enabled (sysctl kernel.io_uring_disabled=0) and locked memory: raise `ulimit -l` (e.g. `ulimit -l unlimited`) \
         or set LimitMEMLOCK=infinity in the systemd unit"
    )]
    Executor {
        /// The core.
        core: usize,
        /// glommio's error.
        message: String,
    },
    /// The admin listener's address cannot be bound.
    #[error(
        "cannot bind the admin listener (/metrics, /health) on {addr}: {message}; choose another \
         address with --admin-addr, or --admin-addr off"
    )]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        message: String,
    },
    /// A shard failed during startup (binding the port, opening logs).
    #[error("shard {shard} failed to start: {message}")]
    Shard {
        /// The shard.
        shard: usize,
        /// What failed.
        message: String,
    },
}

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    mailboxes: Vec<mpsc::Sender<ShardMessage>>,
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
    /// Where the Kafka listener is bound.
    pub kafka_addr: SocketAddr,
    /// What `/health` reports.
    pub health: Arc<Health>,
    /// The admin HTTP listener (`/metrics`, `/health`), if enabled.
    admin: Option<AdminServer>,
    /// Held for the broker's life: the data directory's exclusive lock.
    _lock: std::fs::File,
}

/// Takes the data directory's lock (`flock` on `__sluice/lock`), so a second broker on the
/// same directory refuses to start instead of corrupting it.
fn lock_data_dir(config: &BrokerConfig) -> Result<std::fs::File, StartError> {
    use std::os::fd::AsRawFd;
    let path = config.data_dir.join("__sluice/lock");
    let fail = |message: String| StartError::Data {
        path: config.data_dir.display().to_string(),
        message,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| fail(error.to_string()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| fail(format!("opening {}: {error}", path.display())))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(fail(format!(
            "in use by another process ({}: {})",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(file)
}

fn load_topics(config: &BrokerConfig) -> Result<TopicsSnapshot, StartError> {
    let data_error = |path: &Path, message: String| StartError::Data {
        path: path.display().to_string(),
        message,
    };
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|error| data_error(&config.data_dir, error.to_string()))?;
    let path = config.data_dir.join(TOPICS_FILE);
    let mut snapshot = match std::fs::read(&path) {
        Ok(bytes) => {
            TopicsSnapshot::decode(&bytes).map_err(|message| data_error(&path, message))?
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => TopicsSnapshot::default(),
        Err(error) => return Err(data_error(&path, error.to_string())),
    };
    if snapshot.reassign_for(config.cores) {
        tracing::info!(
            cores = config.cores,
            "core count changed: partitions reassigned to shards"
        );
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let temp = path.with_extension("json.tmp");
            std::fs::write(&temp, snapshot.encode())?;
            std::fs::File::open(&temp)?.sync_all()?;
            std::fs::rename(&temp, &path)
        };
        write().map_err(|error| data_error(&path, error.to_string()))?;
    }
    Ok(snapshot)
}

/// Resolves port 0 to a free port, so every shard binds the same one.
///
/// A fixed port is not probed: after a crash, the dead process's listener can linger while
/// the kernel tears down its io_uring (pending accepts hold it), and a probe without
/// `SO_REUSEPORT` would refuse the restart. Two brokers on one data directory are refused
/// by the directory lock instead.
fn resolve_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr)?;
    probe.local_addr()
}

/// Starts the broker and returns once every shard is serving.
///
/// # Errors
/// See [`StartError`].
pub fn start(mut config: BrokerConfig) -> Result<Broker, StartError> {
    config.cores = config.cores.max(1);
    config.kafka_addr = resolve_port(config.kafka_addr).map_err(|error| StartError::Shard {
        shard: 0,
        message: format!("binding {}: {error}", config.kafka_addr),
    })?;
    if config.advertised_port == 0 {
        config.advertised_port = config.kafka_addr.port();
    }
    let lock = lock_data_dir(&config)?;
    let snapshot = load_topics(&config)?;
    let (mailboxes, receivers): (Vec<_>, Vec<_>) = (0..config.cores)
        .map(|_| mpsc::channel::<ShardMessage>(MAILBOX_DEPTH))
        .unzip();
    let health = Arc::new(Health::default());
    // Up before recovery, so `/health` can say the broker is not ready yet.
    let admin = match config.admin_addr {
        Some(addr) => Some(
            crate::admin::start(addr, health.clone(), mailboxes.clone()).map_err(|error| {
                StartError::Admin {
                    addr,
                    message: error.to_string(),
                }
            })?,
        ),
        None => None,
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut threads = Vec::new();
    let mut ready = Vec::new();
    for (id, receiver) in receivers.into_iter().enumerate() {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        ready.push(ready_rx);
        let config = config.clone();
        let peers = mailboxes.clone();
        let snapshot = snapshot.clone();
        let placement = if config.cores <= cpus {
            Placement::Fixed(id)
        } else {
            Placement::Unbound
        };
        let thread = LocalExecutorBuilder::new(placement)
            .name(&format!("sluice-shard-{id}"))
            .spawn(move || async move {
                run_shard(id, config, peers, receiver, snapshot, ready_tx).await
            })
            .map_err(|error| StartError::Executor {
                core: id,
                message: error.to_string(),
            });
        match thread {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                if let Some(admin) = admin {
                    admin.stop();
                }
                return Err(error);
            }
        }
    }
    let broker = Broker {
        mailboxes,
        threads,
        kafka_addr: config.kafka_addr,
        health,
        admin,
        _lock: lock,
    };
    for (shard, ready) in ready.into_iter().enumerate() {
        let outcome = futures::executor::block_on(ready)
            .unwrap_or_else(|_| Err("shard exited during startup".to_string()));
        if let Err(message) = outcome {
            broker.shutdown();
            broker.join();
            return Err(StartError::Shard { shard, message });
        }
    }
    broker.health.set_ready();
    tracing::info!(addr = %broker.kafka_addr, shards = broker.threads.len(), "broker ready");
    Ok(broker)
}

async fn run_shard(
    id: usize,
    config: BrokerConfig,
    peers: Vec<mpsc::Sender<ShardMessage>>,
    mailbox: mpsc::Receiver<ShardMessage>,
    snapshot: TopicsSnapshot,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let addr = config.kafka_addr;
    let shard = Rc::new(Shard::new(id, config, peers, snapshot));
    if let Err(message) = shard.open_owned_partitions().await {
        let _ = ready.send(Err(message));
        return;
    }
    let listener = match glommio::net::TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(error) => {
            let _ = ready.send(Err(format!("binding {addr}: {error}")));
            return;
        }
    };
    glommio::spawn_local(shard.clone().tick_loop()).detach();
    glommio::spawn_local(shard.clone().group_tick_loop()).detach();
    let mailbox_task = glommio::spawn_local(shard.clone().serve_mailbox(mailbox));
    let _ = ready.send(Ok(()));
    let accept_loop = async {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    glommio::spawn_local(crate::connection::serve(shard.clone(), stream)).detach();
                }
                Err(error) => {
                    tracing::warn!(shard = id, %error, "accept failed");
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    // The mailbox task ends after a Shutdown message closed every log.
    futures::select! {
        () = mailbox_task.fuse() => {}
        () = accept_loop.fuse() => {}
    }
    tracing::debug!(shard = id, "shard stopped");
}

impl Broker {
    /// Stops accepting, closes every log cleanly (flush, checkpoint) and waits for it.
    pub fn shutdown(&self) {
        self.health.set_stopping();
        let mut acks = Vec::new();
        for mailbox in &self.mailboxes {
            let (reply, answer) = oneshot::channel();
            let mut mailbox = mailbox.clone();
            if futures::executor::block_on(mailbox.send(ShardMessage::Shutdown { reply })).is_ok() {
                acks.push(answer);
            }
        }
        for answer in acks {
            let _ = futures::executor::block_on(answer);
        }
    }

    /// Waits for every shard thread to end (after [`Broker::shutdown`]).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
        if let Some(admin) = self.admin {
            admin.stop();
        }
    }

    /// Where the admin listener is bound, if enabled.
    #[must_use]
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|admin| admin.addr)
    }
}
