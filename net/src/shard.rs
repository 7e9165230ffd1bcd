//! A shard: one glommio executor pinned to one core, the partitions it owns, its copy of the
//! topic metadata, and its mailbox.
//!
//! Every partition is owned by exactly one shard; only that shard touches its log. Work for
//! a partition owned elsewhere goes to the owner as a [`ShardMessage`] over a bounded
//! channel, and the answer comes back on a oneshot; record data moves as `Bytes` (never
//! copied) and file ranges as shared file handles. The request side awaits the reply, so a
//! full mailbox is backpressure, not growth.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, SinkExt, StreamExt};
use kafka_protocol::error::ResponseError;
use sluice_engine::io::ReadFile;
use sluice_engine::io::glommio_storage::GlommioStorage;
use sluice_engine::{
    AppendError, BatchCache, BatchError, Chunk, FlushPolicy, Log, Offset, ReadError, ReadLimits,
    TimestampMs,
};
use uuid::Uuid;

use crate::config::{BrokerConfig, log_config};
use crate::controller::{ControllerRequest, TopicResult};
use crate::fetch_encode::RecordChunk;
use crate::topics::{TopicMeta, TopicsSnapshot};

/// Mailbox depth of each shard (per sender, plus one slot per sender clone).
pub const MAILBOX_DEPTH: usize = 1024;

/// The log type every shard uses.
pub type PartitionLog = Log<GlommioStorage>;

/// What a produce to one partition came to.
#[derive(Debug, Clone, Default)]
pub struct ProduceOutcome {
    /// Kafka error code (0: none).
    pub error_code: i16,
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// `LogAppendTime` stamp, or -1.
    pub log_append_time: i64,
    /// The partition's log start.
    pub log_start: i64,
    /// Error detail for the client.
    pub message: Option<String>,
}

/// What a fetch from one partition came to.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Kafka error code.
    pub error_code: i16,
    /// High watermark (consumers see offsets below it).
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start: i64,
    /// Whole batches.
    pub records: Vec<RecordChunk>,
}

impl FetchOutcome {
    /// Bytes of record data.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.records.iter().map(RecordChunk::len).sum()
    }

    fn error(error: ResponseError) -> Self {
        Self {
            error_code: error.code(),
            high_watermark: -1,
            log_start: -1,
            records: Vec::new(),
        }
    }
}

/// What a ListOffsets query on one partition came to.
#[derive(Debug, Clone, Copy, Default)]
pub struct OffsetOutcome {
    /// Kafka error code.
    pub error_code: i16,
    /// The timestamp found, or -1.
    pub timestamp: i64,
    /// The offset found, or -1.
    pub offset: i64,
}

/// A request from one shard to another.
#[derive(Debug)]
pub enum ShardMessage {
    /// Append to a partition owned by the receiver.
    Produce {
        /// Topic id.
        topic: Uuid,
        /// Partition.
        partition: i32,
        /// The record set, as it came off the wire.
        records: Bytes,
        /// 0, 1 or -1.
        acks: i16,
        /// Where the answer goes.
        reply: oneshot::Sender<ProduceOutcome>,
    },
    /// Read from a partition.
    Fetch {
        /// Topic id.
        topic: Uuid,
        /// Partition.
        partition: i32,
        /// First offset wanted.
        offset: i64,
        /// Most bytes.
        max_bytes: u64,
        /// Where the answer goes.
        reply: oneshot::Sender<FetchOutcome>,
    },
    /// Resolve once the partition's high watermark passes `after` (fetch long-poll).
    WaitForData {
        /// Topic id.
        topic: Uuid,
        /// Partition.
        partition: i32,
        /// Offset to pass.
        after: i64,
        /// Resolved when data arrived (dropped by the asker when it stops waiting).
        reply: oneshot::Sender<()>,
    },
    /// ListOffsets on a partition.
    ListOffset {
        /// Topic id.
        topic: Uuid,
        /// Partition.
        partition: i32,
        /// -1 latest, -2 earliest, -3 max timestamp, else a timestamp.
        timestamp: i64,
        /// Where the answer goes.
        reply: oneshot::Sender<OffsetOutcome>,
    },
    /// DeleteRecords on a partition; the answer is the new log start or an error code.
    DeleteRecords {
        /// Topic id.
        topic: Uuid,
        /// Partition.
        partition: i32,
        /// New log start (-1: the high watermark).
        offset: i64,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<i64, i16>>,
    },
    /// Open (creating if needed) the receiver's partitions of a topic.
    OpenPartitions {
        /// The topic.
        topic: Arc<TopicMeta>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Close and delete the receiver's partitions of a deleted topic.
    RemoveTopic {
        /// The topic.
        topic: Arc<TopicMeta>,
        /// Where the answer goes.
        reply: oneshot::Sender<()>,
    },
    /// Install a new topics snapshot (and new configs on open partitions).
    Topics {
        /// The snapshot.
        snapshot: Arc<TopicsSnapshot>,
        /// Acknowledged once installed.
        reply: oneshot::Sender<()>,
    },
    /// Topic administration, for shard 0.
    Controller(ControllerRequest),
    /// A consumer-group API call for a group this shard coordinates.
    Group {
        /// The call (boxed: a decoded request is large).
        call: Box<crate::group::coordinator::GroupCall>,
        /// Where the answer goes.
        reply: oneshot::Sender<Option<kafka_protocol::messages::ResponseKind>>,
    },
    /// A new producer id, for shard 0.
    AllocateProducerId {
        /// Where the id (or why there is none) goes.
        reply: oneshot::Sender<Result<i64, String>>,
    },
    /// A metrics snapshot of the receiver, for a scrape (answered on a std channel: the
    /// admin listener is a plain thread).
    Metrics {
        /// Where the snapshot goes.
        reply: std::sync::mpsc::Sender<crate::metrics::ShardSnapshot>,
    },
    /// Stop: close every log cleanly.
    Shutdown {
        /// Acknowledged once closed.
        reply: oneshot::Sender<()>,
    },
}

/// One shard's state. Lives on its executor (`!Send`).
pub struct Shard {
    /// Shard index (= core index among the broker's cores).
    pub id: usize,
    /// Broker settings.
    pub config: BrokerConfig,
    peers: Vec<mpsc::Sender<ShardMessage>>,
    topics: RefCell<Arc<TopicsSnapshot>>,
    partitions: RefCell<HashMap<(Uuid, i32), PartitionLog>>,
    cache: BatchCache,
    /// Storage for logs and metadata files.
    pub storage: GlommioStorage,
    pub(crate) controller: crate::controller::ControllerState,
    /// The consumer groups coordinated on this shard.
    pub groups: crate::group::coordinator::Coordinator,
    /// Producer id allocation (used on shard 0).
    pub producer_ids: crate::producer_ids::ProducerIds,
    /// Connection and request counters.
    pub metrics: crate::metrics::ShardMetrics,
    shutting_down: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Shard")
            .field("id", &self.id)
            .field("partitions", &self.partitions.borrow().len())
            .finish()
    }
}

fn error_outcome(error: ResponseError, message: impl Into<String>) -> ProduceOutcome {
    ProduceOutcome {
        error_code: error.code(),
        base_offset: -1,
        log_append_time: -1,
        log_start: -1,
        message: Some(message.into()),
    }
}

/// The Kafka error for a refused append.
#[must_use]
pub fn append_error_code(error: &AppendError) -> ResponseError {
    match error {
        AppendError::InvalidBatch(BatchError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        AppendError::InvalidBatch(BatchError::UnsupportedMagic { .. }) => {
            ResponseError::UnsupportedForMessageFormat
        }
        AppendError::InvalidBatch(BatchError::RecordCountMismatch { .. }) => {
            ResponseError::InvalidRecord
        }
        AppendError::InvalidBatch(_) => ResponseError::CorruptMessage,
        AppendError::Poisoned(_) | AppendError::DiskFull(_) | AppendError::Roll(_) => {
            ResponseError::KafkaStorageError
        }
        AppendError::Closed => ResponseError::NotLeaderOrFollower,
        AppendError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        AppendError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
    }
}

impl Shard {
    /// A shard with its peers' mailboxes (index = shard id) and the topics it starts with.
    #[must_use]
    pub fn new(
        id: usize,
        config: BrokerConfig,
        peers: Vec<mpsc::Sender<ShardMessage>>,
        topics: TopicsSnapshot,
    ) -> Self {
        let cache = BatchCache::new(config.cache_bytes_per_shard);
        let groups = crate::group::coordinator::Coordinator::new(config.groups.clone());
        Self {
            id,
            config,
            peers,
            topics: RefCell::new(Arc::new(topics)),
            partitions: RefCell::new(HashMap::new()),
            cache,
            storage: GlommioStorage,
            controller: crate::controller::ControllerState::default(),
            groups,
            producer_ids: crate::producer_ids::ProducerIds::default(),
            metrics: crate::metrics::ShardMetrics::default(),
            shutting_down: std::cell::Cell::new(false),
        }
    }

    /// Number of shards in the broker.
    #[must_use]
    pub fn shards(&self) -> usize {
        self.peers.len()
    }

    /// The current topics snapshot.
    #[must_use]
    pub fn topics(&self) -> Arc<TopicsSnapshot> {
        self.topics.borrow().clone()
    }

    /// Whether shutdown has begun.
    #[must_use]
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    /// Sends `message` to shard `to`. A closed mailbox (shutdown) drops the message, which
    /// drops its reply sender: the asker sees a cancelled reply.
    pub async fn send(&self, to: usize, message: ShardMessage) {
        let mut sender = self.peers[to].clone();
        if sender.send(message).await.is_err() {
            tracing::debug!(shard = self.id, to, "mailbox closed");
        }
    }

    fn log(&self, topic: Uuid, partition: i32) -> Option<PartitionLog> {
        self.partitions.borrow().get(&(topic, partition)).cloned()
    }

    /// The log of a partition this shard owns.
    #[must_use]
    pub fn partition_log(&self, topic: Uuid, partition: i32) -> Option<PartitionLog> {
        self.log(topic, partition)
    }

    /// Opens this shard's partitions of every topic (startup).
    ///
    /// # Errors
    /// A partition whose log cannot be opened.
    pub async fn open_owned_partitions(&self) -> Result<(), String> {
        let topics = self.topics();
        for topic in topics.iter() {
            self.open_partitions(topic).await?;
        }
        Ok(())
    }

    async fn open_partitions(&self, topic: &TopicMeta) -> Result<(), String> {
        let config = log_config(&topic.configs, &self.config.topic_defaults);
        for partition in 0..topic.partitions() as i32 {
            if topic.owner(partition) != Some(self.id) || self.log(topic.id, partition).is_some() {
                continue;
            }
            let dir = topic.partition_dir(&self.config.data_dir, partition);
            let log = Log::open(self.storage, &dir, config.clone(), self.cache.clone())
                .await
                .map_err(|error| format!("opening {}: {error}", dir.display()))?;
            let report = log.recovery_report();
            // A new partition has no segments to recover; say nothing about it.
            if report.cut_reason.is_some() || (!report.clean_shutdown && report.segments > 0) {
                tracing::info!(topic = %topic.name, partition, ?report, "partition recovered");
            }
            glommio::spawn_local(log.clone().run_flusher()).detach();
            self.partitions
                .borrow_mut()
                .insert((topic.id, partition), log.clone());
            if topic.name == crate::group::coordinator::OFFSETS_TOPIC {
                self.groups.load(partition, log).await;
            }
        }
        Ok(())
    }

    async fn remove_topic(&self, topic: &TopicMeta) {
        if topic.name == crate::group::coordinator::OFFSETS_TOPIC {
            for partition in 0..topic.partitions() as i32 {
                self.groups.unload(partition);
            }
        } else {
            for (partition, records) in self.groups.remove_topic(&topic.name) {
                if let Err(error) =
                    crate::group::coordinator::persist(self, partition, &records).await
                {
                    tracing::warn!(topic = %topic.name, error = ?error, "storing offset tombstones of a deleted topic");
                }
            }
        }
        let logs: Vec<(i32, PartitionLog)> = {
            let mut partitions = self.partitions.borrow_mut();
            (0..topic.partitions() as i32)
                .filter_map(|p| partitions.remove(&(topic.id, p)).map(|log| (p, log)))
                .collect()
        };
        for (partition, log) in logs {
            self.metrics.retire(&log.stats());
            if let Err(error) = log.close().await {
                tracing::warn!(topic = %topic.name, partition, %error, "closing deleted partition");
            }
            let dir = topic.partition_dir(&self.config.data_dir, partition);
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "removing deleted partition");
            }
        }
    }

    /// Runs periodic log maintenance (interval flushes, retention, checkpoints) forever.
    pub async fn tick_loop(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(Duration::from_millis(500)).await;
            if self.shutting_down() {
                return;
            }
            let logs: Vec<PartitionLog> = self.partitions.borrow().values().cloned().collect();
            for log in logs {
                if let Err(error) = log.tick().await {
                    tracing::warn!(dir = %log.dir().display(), %error, "log maintenance failed");
                }
            }
        }
    }

    /// Runs the group coordinator's timers (sessions, rebalance deadlines, offset
    /// expiry) and stores what they changed.
    pub async fn group_tick_loop(self: Rc<Self>) {
        let mut ticks = 0u64;
        loop {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            if self.shutting_down() {
                return;
            }
            ticks += 1;
            for (partition, records) in self.groups.tick(ticks.is_multiple_of(100)) {
                if let Err(error) =
                    crate::group::coordinator::persist(&self, partition, &records).await
                {
                    tracing::warn!(partition, error = ?error, "storing group changes");
                }
            }
        }
    }

    /// Serves the mailbox: each message runs as its own task, started in arrival order (so
    /// appends from one sender keep their order).
    pub async fn serve_mailbox(self: Rc<Self>, mut mailbox: mpsc::Receiver<ShardMessage>) {
        while let Some(message) = mailbox.next().await {
            if let ShardMessage::Shutdown { reply } = message {
                self.shutdown().await;
                let _ = reply.send(());
                return;
            }
            let shard = self.clone();
            glommio::spawn_local(async move { shard.handle_message(message).await }).detach();
        }
    }

    async fn shutdown(&self) {
        self.shutting_down.set(true);
        let logs: Vec<PartitionLog> = self
            .partitions
            .borrow_mut()
            .drain()
            .map(|(_, log)| log)
            .collect();
        for log in logs {
            if let Err(error) = log.close().await {
                tracing::warn!(dir = %log.dir().display(), %error, "closing log at shutdown");
            }
        }
    }

    async fn handle_message(self: Rc<Self>, message: ShardMessage) {
        match message {
            ShardMessage::Produce {
                topic,
                partition,
                records,
                acks,
                reply,
            } => {
                let _ = reply.send(self.produce_local(topic, partition, records, acks).await);
            }
            ShardMessage::Fetch {
                topic,
                partition,
                offset,
                max_bytes,
                reply,
            } => {
                let _ = reply.send(self.fetch_local(topic, partition, offset, max_bytes).await);
            }
            ShardMessage::WaitForData {
                topic,
                partition,
                after,
                mut reply,
            } => {
                let wait = self.wait_local(topic, partition, after);
                futures::select! {
                    () = wait.fuse() => { let _ = reply.send(()); }
                    () = reply.cancellation().fuse() => {}
                }
            }
            ShardMessage::ListOffset {
                topic,
                partition,
                timestamp,
                reply,
            } => {
                let _ = reply.send(self.list_offset_local(topic, partition, timestamp).await);
            }
            ShardMessage::DeleteRecords {
                topic,
                partition,
                offset,
                reply,
            } => {
                let _ = reply.send(self.delete_records_local(topic, partition, offset).await);
            }
            ShardMessage::OpenPartitions { topic, reply } => {
                let _ = reply.send(self.open_partitions(&topic).await);
            }
            ShardMessage::RemoveTopic { topic, reply } => {
                self.remove_topic(&topic).await;
                let _ = reply.send(());
            }
            ShardMessage::Topics { snapshot, reply } => {
                self.install_topics(snapshot);
                let _ = reply.send(());
            }
            ShardMessage::Controller(request) => crate::controller::handle(&self, request).await,
            ShardMessage::Group { call, reply } => {
                let _ = reply.send(crate::handlers::serve_group_call(&self, *call).await);
            }
            ShardMessage::AllocateProducerId { reply } => {
                let _ = reply.send(self.producer_ids.allocate(&self).await);
            }
            ShardMessage::Metrics { reply } => {
                let _ = reply.send(self.metrics_snapshot());
            }
            ShardMessage::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// This shard's metrics: its counters, memory, and every partition it owns.
    #[must_use]
    pub fn metrics_snapshot(&self) -> crate::metrics::ShardSnapshot {
        let mut snapshot = self.metrics.snapshot(self.id);
        let topics = self.topics();
        let mut unwritten = 0u64;
        for ((topic_id, partition), log) in self.partitions.borrow().iter() {
            let stats = log.stats();
            snapshot.engine.merge(&stats);
            unwritten += log.unwritten_bytes();
            let offsets = log.offsets();
            let (segments, size_bytes) = log.size();
            snapshot.partitions.push(crate::metrics::PartitionSnapshot {
                topic: topics
                    .get_by_id(topic_id)
                    .map_or_else(|| topic_id.to_string(), |topic| topic.name.clone()),
                partition: *partition,
                stats,
                log_start: offsets.log_start.0,
                log_end: offsets.log_end.0,
                high_watermark: Self::high_watermark(log).0,
                segments,
                size_bytes,
                writable: log.poisoned().is_none(),
            });
        }
        snapshot
            .partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        snapshot.memory = vec![
            ("batch_cache", self.cache.bytes() as u64),
            ("write_buffers", unwritten),
            (
                "connection_buffers",
                snapshot.connections_open * crate::metrics::CONNECTION_BUFFER_BYTES
                    + snapshot.inflight_bytes,
            ),
        ];
        snapshot
    }

    /// Replaces the topics snapshot and applies changed configs to open partitions.
    pub(crate) fn install_topics(&self, snapshot: Arc<TopicsSnapshot>) {
        for ((topic_id, _), log) in self.partitions.borrow().iter() {
            if let Some(topic) = snapshot.get_by_id(topic_id) {
                let config = log_config(&topic.configs, &self.config.topic_defaults);
                if let Err(error) = log.set_config(config) {
                    tracing::warn!(topic = %topic.name, %error, "invalid topic config not applied");
                }
            }
        }
        *self.topics.borrow_mut() = snapshot;
    }

    /// High watermark: what consumers may read. With group commit it is the durable end
    /// (acknowledged = fdatasynced = visible, as Redpanda does); with other flush policies
    /// it is the log end, as Kafka does.
    fn high_watermark(log: &PartitionLog) -> Offset {
        let offsets = log.offsets();
        match log.config().flush_policy {
            FlushPolicy::GroupCommit => offsets.durable_end,
            _ => offsets.log_end,
        }
    }

    async fn produce_local(
        &self,
        topic: Uuid,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> ProduceOutcome {
        let Some(log) = self.log(topic, partition) else {
            return error_outcome(
                ResponseError::NotLeaderOrFollower,
                "partition is not open on its owner shard",
            );
        };
        // The engine rewrites the batch header in place. This is free when the record set
        // is the only view of its allocation, and a copy when the request carried several
        // partitions (they share the frame's buffer).
        let records = BytesMut::from(records);
        let info = match log.append(records).await {
            Ok(info) => info,
            Err(error) => return error_outcome(append_error_code(&error), error.to_string()),
        };
        if acks != 0
            && let Err(error) = log.flushed(info.next_offset()).await
        {
            return error_outcome(ResponseError::KafkaStorageError, error.to_string());
        }
        ProduceOutcome {
            error_code: 0,
            base_offset: info.base_offset.0,
            log_append_time: info.log_append_time.map_or(-1, |time| time.0),
            log_start: log.offsets().log_start.0,
            message: None,
        }
    }

    async fn fetch_local(
        &self,
        topic: Uuid,
        partition: i32,
        offset: i64,
        max_bytes: u64,
    ) -> FetchOutcome {
        let Some(log) = self.log(topic, partition) else {
            return FetchOutcome::error(ResponseError::NotLeaderOrFollower);
        };
        let high_watermark = Self::high_watermark(&log);
        let log_start = log.offsets().log_start;
        let mut outcome = FetchOutcome {
            error_code: 0,
            high_watermark: high_watermark.0,
            log_start: log_start.0,
            records: Vec::new(),
        };
        if offset > high_watermark.0 && offset <= log.offsets().log_end.0 {
            return outcome; // acknowledged-but-not-yet-visible range: nothing to return yet
        }
        let limits = ReadLimits {
            max_bytes,
            max_offset: Some(high_watermark),
        };
        match log.read(Offset(offset), limits).await {
            Ok(read) => {
                for chunk in read.chunks {
                    match chunk {
                        Chunk::Memory(bytes) => outcome.records.push(RecordChunk::Memory(bytes)),
                        Chunk::File {
                            reader,
                            position,
                            len,
                        } => match shared_file(&*reader) {
                            Ok(file) => outcome.records.push(RecordChunk::File {
                                file,
                                position,
                                len,
                            }),
                            Err(error) => {
                                tracing::warn!(%error, "duplicating a segment file descriptor");
                                outcome.error_code = ResponseError::KafkaStorageError.code();
                                outcome.records.clear();
                                break;
                            }
                        },
                    }
                }
            }
            Err(ReadError::OffsetOutOfRange { .. }) => {
                outcome.error_code = ResponseError::OffsetOutOfRange.code()
            }
            Err(error) => {
                tracing::warn!(dir = %log.dir().display(), %error, "read failed");
                outcome.error_code = ResponseError::KafkaStorageError.code();
            }
        }
        outcome
    }

    async fn wait_local(&self, topic: Uuid, partition: i32, after: i64) {
        let Some(log) = self.log(topic, partition) else {
            return;
        };
        // Data becomes visible at the high watermark: wait for appends, then durability.
        loop {
            if Self::high_watermark(&log).0 > after {
                return;
            }
            let log_end = log.offsets().log_end;
            if log_end.0 > after {
                let _ = log.flushed(Offset(after + 1)).await;
                return;
            }
            // Here log_end <= after: wait until an append passes `after`.
            log.wait_for_append(Offset(after)).await;
            if self.shutting_down() {
                return;
            }
        }
    }

    async fn list_offset_local(
        &self,
        topic: Uuid,
        partition: i32,
        timestamp: i64,
    ) -> OffsetOutcome {
        let Some(log) = self.log(topic, partition) else {
            return OffsetOutcome {
                error_code: ResponseError::NotLeaderOrFollower.code(),
                timestamp: -1,
                offset: -1,
            };
        };
        let found = |offset: Offset, timestamp: i64| OffsetOutcome {
            error_code: 0,
            timestamp,
            offset: offset.0,
        };
        match timestamp {
            -1 => found(Self::high_watermark(&log), -1),
            -2 => found(log.offsets().log_start, -1),
            -3 => match log.max_timestamp() {
                Some((offset, timestamp)) => found(offset, timestamp.0),
                None => found(Offset(-1), -1),
            },
            timestamp => match log.offset_for_timestamp(TimestampMs(timestamp)).await {
                Ok(Some((offset, timestamp))) if offset < Self::high_watermark(&log) => {
                    found(offset, timestamp.0)
                }
                Ok(_) => found(Offset(-1), -1),
                Err(error) => {
                    tracing::warn!(%error, "timestamp lookup failed");
                    OffsetOutcome {
                        error_code: ResponseError::KafkaStorageError.code(),
                        timestamp: -1,
                        offset: -1,
                    }
                }
            },
        }
    }

    async fn delete_records_local(
        &self,
        topic: Uuid,
        partition: i32,
        offset: i64,
    ) -> Result<i64, i16> {
        let log = self
            .log(topic, partition)
            .ok_or(ResponseError::NotLeaderOrFollower.code())?;
        let high_watermark = Self::high_watermark(&log);
        let target = if offset == -1 {
            high_watermark
        } else {
            Offset(offset)
        };
        if target > high_watermark || target.0 < 0 {
            return Err(ResponseError::OffsetOutOfRange.code());
        }
        log.delete_records_before(target)
            .await
            .map(|start| start.0)
            .map_err(|error| {
                tracing::warn!(%error, "delete records failed");
                ResponseError::KafkaStorageError.code()
            })
    }

    /// Produce to a partition, wherever it lives.
    pub async fn produce(
        &self,
        topic: &TopicMeta,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> ProduceOutcome {
        match topic.owner(partition) {
            None => error_outcome(ResponseError::UnknownTopicOrPartition, "no such partition"),
            Some(owner) if owner == self.id => {
                self.produce_local(topic.id, partition, records, acks).await
            }
            Some(owner) => {
                let (reply, answer) = oneshot::channel();
                self.send(
                    owner,
                    ShardMessage::Produce {
                        topic: topic.id,
                        partition,
                        records,
                        acks,
                        reply,
                    },
                )
                .await;
                answer.await.unwrap_or_else(|_| {
                    error_outcome(ResponseError::NotLeaderOrFollower, "owner shard stopped")
                })
            }
        }
    }

    /// Fetch from a partition, wherever it lives.
    pub async fn fetch(
        &self,
        topic: &TopicMeta,
        partition: i32,
        offset: i64,
        max_bytes: u64,
    ) -> FetchOutcome {
        match topic.owner(partition) {
            None => FetchOutcome::error(ResponseError::UnknownTopicOrPartition),
            Some(owner) if owner == self.id => {
                self.fetch_local(topic.id, partition, offset, max_bytes)
                    .await
            }
            Some(owner) => {
                let (reply, answer) = oneshot::channel();
                self.send(
                    owner,
                    ShardMessage::Fetch {
                        topic: topic.id,
                        partition,
                        offset,
                        max_bytes,
                        reply,
                    },
                )
                .await;
                answer
                    .await
                    .unwrap_or_else(|_| FetchOutcome::error(ResponseError::NotLeaderOrFollower))
            }
        }
    }

    /// Resolves when the partition's high watermark passes `after` (never for a missing
    /// partition: the caller's deadline ends the wait).
    pub async fn wait_for_data(&self, topic: &TopicMeta, partition: i32, after: i64) {
        match topic.owner(partition) {
            None => futures::future::pending().await,
            Some(owner) if owner == self.id => self.wait_local(topic.id, partition, after).await,
            Some(owner) => {
                let (reply, answer) = oneshot::channel();
                self.send(
                    owner,
                    ShardMessage::WaitForData {
                        topic: topic.id,
                        partition,
                        after,
                        reply,
                    },
                )
                .await;
                if answer.await.is_err() {
                    futures::future::pending::<()>().await;
                }
            }
        }
    }

    /// ListOffsets on a partition, wherever it lives.
    pub async fn list_offset(
        &self,
        topic: &TopicMeta,
        partition: i32,
        timestamp: i64,
    ) -> OffsetOutcome {
        let unknown = OffsetOutcome {
            error_code: ResponseError::UnknownTopicOrPartition.code(),
            timestamp: -1,
            offset: -1,
        };
        match topic.owner(partition) {
            None => unknown,
            Some(owner) if owner == self.id => {
                self.list_offset_local(topic.id, partition, timestamp).await
            }
            Some(owner) => {
                let (reply, answer) = oneshot::channel();
                self.send(
                    owner,
                    ShardMessage::ListOffset {
                        topic: topic.id,
                        partition,
                        timestamp,
                        reply,
                    },
                )
                .await;
                answer.await.unwrap_or(OffsetOutcome {
                    error_code: ResponseError::NotLeaderOrFollower.code(),
                    ..unknown
                })
            }
        }
    }

    /// DeleteRecords on a partition, wherever it lives.
    pub async fn delete_records(
        &self,
        topic: &TopicMeta,
        partition: i32,
        offset: i64,
    ) -> Result<i64, i16> {
        match topic.owner(partition) {
            None => Err(ResponseError::UnknownTopicOrPartition.code()),
            Some(owner) if owner == self.id => {
                self.delete_records_local(topic.id, partition, offset).await
            }
            Some(owner) => {
                let (reply, answer) = oneshot::channel();
                self.send(
                    owner,
                    ShardMessage::DeleteRecords {
                        topic: topic.id,
                        partition,
                        offset,
                        reply,
                    },
                )
                .await;
                answer
                    .await
                    .unwrap_or(Err(ResponseError::NotLeaderOrFollower.code()))
            }
        }
    }

    /// Sends a request to shard 0's controller.
    /// Sends the request `make` builds to shard 0's controller and waits for its per-topic
    /// results; empty if the controller stopped before answering.
    pub async fn ask_controller(
        &self,
        make: impl FnOnce(oneshot::Sender<Vec<TopicResult>>) -> ControllerRequest,
    ) -> Vec<TopicResult> {
        let (reply, answer) = oneshot::channel();
        self.send(0, ShardMessage::Controller(make(reply))).await;
        answer.await.unwrap_or_default()
    }
}

/// A `Send` handle on a segment file for zero-copy sends from any shard: a duplicate of the
/// reader's descriptor (the segment may be deleted meanwhile; the open file stays readable).
fn shared_file<R: ReadFile>(reader: &R) -> std::io::Result<Arc<std::fs::File>> {
    use std::os::fd::BorrowedFd;
    let fd = reader
        .raw_fd()
        .ok_or_else(|| std::io::Error::other("storage has no file descriptors"))?;
    // SAFETY: `fd` belongs to `reader`, which is alive for the whole call; it is only
    // borrowed to duplicate it, and the duplicate is owned by the returned `File`.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(Arc::new(std::fs::File::from(
        borrowed.try_clone_to_owned()?,
    )))
}
