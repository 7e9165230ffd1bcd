//! Consumer groups with librdkafka (rdkafka) against the real broker on two shards:
//!
//! * three members over a 12-partition topic while records are being produced; members join
//!   and leave mid-stream; every record is consumed exactly once across the members (each
//!   member commits every record synchronously before it polls again);
//! * the committed offsets survive a broker restart: the group resumes where it left off;
//! * the cooperative-sticky assignor (incremental rebalances) keeps exactly-once as well;
//! * static membership: a member that restarts with its `group.instance.id` gets its
//!   partitions back without a rebalance of the others.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Broker, TestDir};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;

const PARTITIONS: i32 = 12;

/// Counts rebalances and remembers the current assignment.
#[derive(Default)]
struct Membership {
    rebalances: AtomicUsize,
    assigned: Mutex<Vec<i32>>,
}

#[derive(Clone, Default)]
struct MemberContext(Arc<Membership>);

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.0.rebalances.fetch_add(1, Ordering::SeqCst);
        let mut assigned = self.0.assigned.lock().expect("assigned");
        match rebalance {
            Rebalance::Assign(list) => {
                for element in list.elements() {
                    if !assigned.contains(&element.partition()) {
                        assigned.push(element.partition());
                    }
                }
            }
            Rebalance::Revoke(list) => {
                let revoked: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                assigned.retain(|p| !revoked.contains(p));
            }
            Rebalance::Error(_) => {}
        }
        assigned.sort_unstable();
    }
}

/// A running group member: a thread polling and committing every record.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    membership: Arc<Membership>,
}

impl Member {
    fn start(
        broker: &Broker,
        topic: &str,
        group: &str,
        extra: &[(&str, &str)],
        seen: Arc<Mutex<Vec<String>>>,
    ) -> Member {
        let mut config = common::client_config(broker);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "500")
            .set("fetch.wait.max.ms", "100");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        let context = MemberContext::default();
        let membership = context.0.clone();
        let consumer: BaseConsumer<MemberContext> =
            config.create_with_context(context).expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        eprintln!("consumer error: {error}");
                        continue;
                    }
                };
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                seen.lock().expect("seen").push(value.into_owned());
                // Commit before polling again, retrying while a rebalance completes.
                let mut attempts = 0;
                while let Err(error) = consumer.commit_message(&message, CommitMode::Sync) {
                    attempts += 1;
                    assert!(attempts < 200, "commit kept failing: {error}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            drop(consumer); // close: LeaveGroup for dynamic members
        });
        Member {
            stop,
            thread: Some(thread),
            membership,
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
    }

    fn assigned(&self) -> Vec<i32> {
        self.membership.assigned.lock().expect("assigned").clone()
    }

    fn rebalances(&self) -> usize {
        self.membership.rebalances.load(Ordering::SeqCst)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

fn produce(bootstrap: &str, topic: &str, range: std::ops::Range<usize>, pause: Duration) {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    let producer: common::Producer = config
        .create_with_context(common::DeliveryContext::default())
        .expect("producer");
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in range {
        let value = format!("rec-{id}");
        let key = format!("key-{id}");
        let mut record = BaseRecord::with_opaque_to(topic, id)
            .key(key.as_bytes())
            .payload(value.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    assert!(Instant::now() < deadline, "producer queue stayed full");
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    common::flush_all(&producer, Duration::from_secs(30));
}

/// Waits until `seen` holds `count` values (or the deadline passes), then a little longer
/// so that duplicates would show.
fn wait_for(seen: &Mutex<Vec<String>>, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while seen.lock().expect("seen").len() < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
}

/// Asserts every id of `range` was seen exactly once and nothing else.
fn assert_exactly_once(seen: &[String], range: std::ops::Range<usize>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for value in seen {
        *counts.entry(value.as_str()).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "{} records consumed more than once, e.g. {:?}",
        duplicates.len(),
        duplicates.iter().take(5).collect::<Vec<_>>()
    );
    let missing: Vec<usize> = range
        .clone()
        .filter(|id| !counts.contains_key(format!("rec-{id}").as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records never consumed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(seen.len(), range.len(), "no records outside the range");
}

fn start_broker(dir: &TestDir) -> Broker {
    Broker::start(
        &dir.data(),
        2,
        &["--group-initial-rebalance-delay-ms", "300"],
    )
}

#[test]
fn members_join_and_leave_mid_stream_and_every_record_is_consumed_once() {
    common::with_timeout(Duration::from_secs(240), || {
        let dir = TestDir::new();
        let mut broker = start_broker(&dir);
        let topic = "group-exactly-once";
        common::create_topic(&broker, topic, PARTITIONS, &[]);
        const FIRST: usize = 3000;
        let seen = Arc::new(Mutex::new(Vec::new()));

        let producer = {
            let bootstrap = broker.bootstrap();
            std::thread::spawn(move || {
                produce(&bootstrap, topic, 0..FIRST, Duration::from_micros(1500));
            })
        };
        let mut one = Member::start(&broker, topic, "g-mid-stream", &[], seen.clone());
        let mut two = Member::start(&broker, topic, "g-mid-stream", &[], seen.clone());
        std::thread::sleep(Duration::from_millis(1500));
        let mut three = Member::start(&broker, topic, "g-mid-stream", &[], seen.clone());
        std::thread::sleep(Duration::from_millis(1500));
        one.stop(); // leaves mid-stream
        producer.join().expect("producer");
        wait_for(&seen, FIRST, Duration::from_secs(60));
        assert_exactly_once(&seen.lock().expect("seen"), 0..FIRST);
        let mut union: Vec<i32> = two.assigned();
        union.extend(three.assigned());
        union.sort_unstable();
        assert_eq!(
            union,
            (0..PARTITIONS).collect::<Vec<_>>(),
            "every partition owned once"
        );
        two.stop();
        three.stop();

        // Commits survive a restart: the group resumes after the last committed record.
        produce(
            &broker.bootstrap(),
            topic,
            FIRST..FIRST + 500,
            Duration::ZERO,
        );
        broker.stop();
        broker.restart();
        let resumed = Arc::new(Mutex::new(Vec::new()));
        let mut four = Member::start(&broker, topic, "g-mid-stream", &[], resumed.clone());
        wait_for(&resumed, 500, Duration::from_secs(60));
        four.stop();
        assert_exactly_once(&resumed.lock().expect("resumed"), FIRST..FIRST + 500);
        broker.assert_alive();
    });
}

#[test]
fn cooperative_sticky_rebalances_keep_exactly_once() {
    common::with_timeout(Duration::from_secs(180), || {
        let dir = TestDir::new();
        let mut broker = start_broker(&dir);
        let topic = "group-cooperative";
        common::create_topic(&broker, topic, PARTITIONS, &[]);
        const TOTAL: usize = 2000;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let strategy = [("partition.assignment.strategy", "cooperative-sticky")];
        let producer = {
            let bootstrap = broker.bootstrap();
            std::thread::spawn(move || {
                produce(&bootstrap, topic, 0..TOTAL, Duration::from_micros(1500));
            })
        };
        let mut one = Member::start(&broker, topic, "g-coop", &strategy, seen.clone());
        std::thread::sleep(Duration::from_millis(1500));
        let mut two = Member::start(&broker, topic, "g-coop", &strategy, seen.clone());
        producer.join().expect("producer");
        wait_for(&seen, TOTAL, Duration::from_secs(60));
        assert_exactly_once(&seen.lock().expect("seen"), 0..TOTAL);
        let (a, b) = (one.assigned(), two.assigned());
        assert_eq!(a.len() + b.len(), PARTITIONS as usize, "{a:?} {b:?}");
        assert!(
            !a.is_empty() && !b.is_empty(),
            "both members own partitions: {a:?} {b:?}"
        );
        one.stop();
        two.stop();
        broker.assert_alive();
    });
}

#[test]
fn a_static_member_comes_back_without_a_rebalance() {
    common::with_timeout(Duration::from_secs(180), || {
        let dir = TestDir::new();
        let mut broker = start_broker(&dir);
        let topic = "group-static";
        common::create_topic(&broker, topic, PARTITIONS, &[]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let one_id = [("group.instance.id", "instance-1")];
        let two_id = [("group.instance.id", "instance-2")];
        let mut one = Member::start(&broker, topic, "g-static", &one_id, seen.clone());
        let two = Member::start(&broker, topic, "g-static", &two_id, seen.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        while one.assigned().len() + two.assigned().len() != PARTITIONS as usize
            || one.assigned().is_empty()
            || two.assigned().is_empty()
        {
            assert!(Instant::now() < deadline, "group never settled");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(1000));
        let before = (one.assigned(), two.assigned(), two.rebalances());
        one.stop(); // a static member does not leave the group on close
        let again = Member::start(&broker, topic, "g-static", &one_id, seen.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        while again.assigned().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the static member got nothing back"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(2000));
        assert_eq!(again.assigned(), before.0, "same partitions back");
        assert_eq!(
            two.assigned(),
            before.1,
            "the other member kept its partitions"
        );
        assert_eq!(
            two.rebalances(),
            before.2,
            "the other member saw no rebalance"
        );
        broker.assert_alive();
    });
}
