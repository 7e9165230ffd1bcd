//! Regression: with the default data directory (`./data`, a relative path) topic
//! auto-creation failed — glommio cannot open a relative directory (EBADF) — and the failure
//! was logged only at debug level; every produce answered UNKNOWN_TOPIC_OR_PARTITION. This
//! runs `sluice serve` exactly as the README says, from an empty working directory.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Kills the broker if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn default_relative_data_dir_works() {
    common::with_timeout(Duration::from_secs(60), || {
        let work = tempfile::tempdir().expect("tempdir");
        let port = common::free_port();
        let bootstrap = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .arg("--kafka-addr")
            .arg(&bootstrap)
            .arg("--admin-addr")
            .arg("off")
            .arg("--cores")
            .arg("2")
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sluice");
        let mut child = KillOnDrop(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&bootstrap).is_err() {
            assert!(std::time::Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("enable.idempotence", "false")
            .create()
            .expect("producer");
        for i in 0..10 {
            let value = format!("value-{i}");
            producer
                .send(BaseRecord::<(), _>::to("relative").payload(&value))
                .expect("enqueue");
        }
        producer
            .flush(Duration::from_secs(15))
            .expect("all records acknowledged");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "relative")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset("relative", 0, Offset::Beginning)
            .expect("assign");
        consumer.assign(&assignment).expect("assign");
        let mut seen = 0;
        while seen < 10 {
            if let Some(message) = consumer.poll(Duration::from_secs(5)) {
                let message = message.expect("message");
                assert_eq!(message.payload(), Some(format!("value-{seen}").as_bytes()));
                seen += 1;
            }
        }
        assert!(
            work.path().join("data").join("relative-0").is_dir(),
            "partition under ./data"
        );
        // SAFETY: plain kill(2) of the child we started.
        unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
        let status = child.0.wait().expect("wait");
        assert!(status.success(), "clean shutdown: {status}");
    });
}
