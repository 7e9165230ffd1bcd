//! The `sluice` admin CLI, run as a subprocess (the built binary) against a real broker:
//!
//! * `topic create|list|describe|alter-config|add-partitions|delete`, with `--validate-only`,
//!   configs and their sources, and the errors for an existing or unknown topic and an
//!   invalid config value;
//! * `produce` with keys (`-k`), headers (`-H`), `--acks`, `--partition` and every
//!   compression codec (checked in the stored batches), then `consume` back with `-n`,
//!   `-e`, `-f` formats, `--json`, `-o` offsets (absolute, from the end, `@timestamp`) and
//!   a partition filter; keyed records land in Kafka's murmur2 partition;
//! * Ctrl-C (SIGINT) ends a consume cleanly, and a produce after flushing what it read;
//! * `group list|describe|delete|reset-offsets` on a group `consume -g` committed for:
//!   committed offsets and lag, a reset to the earliest offsets read again, delete;
//! * `cluster info`, `completion`, `--help` on every command, `SLUICE_BROKERS`, and
//!   `log inspect` on a partition written through the CLI;
//! * one-line errors and exit status 1 for an unreachable broker (bounded by `--timeout`),
//!   an unknown topic or partition, and an invalid config.
//!
//! Every CLI run is bounded in time and killed if it overruns; every broker is stopped.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, TestDir};

/// How long one CLI run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What a CLI run left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// Asserts exit status 0 and returns stdout.
    fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "CLI failed: {self:#?}");
        self.stdout
    }

    /// Asserts exit status 1 with a one-line error containing `needle`.
    fn fails_with(&self, needle: &str) {
        assert_eq!(self.code, Some(1), "expected exit status 1: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected a one-line error: {self:#?}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "expected an error about {needle:?}: {self:#?}"
        );
    }
}

/// Runs `sluice ARGS` with `input` on stdin and `env` set, killing it after `limit`.
fn run_with(args: &[&str], input: &[u8], env: &[(&str, &str)], limit: Duration) -> Run {
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .env_remove("SLUICE_BROKERS")
        .env_remove("SLUICE_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn sluice");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(Box::new(stdout));
    let stderr = read(Box::new(stderr));
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sluice {args:?} did not finish within {limit:?}; stderr: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        elapsed: started.elapsed(),
    }
}

/// Runs `sluice ARGS` against `broker` (via `--brokers`).
fn sluice(broker: &Broker, args: &[&str], input: &[u8]) -> Run {
    let bootstrap = broker.bootstrap();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--brokers", &bootstrap, "--timeout", "15s"]);
    run_with(&full, input, &[], RUN_LIMIT)
}

/// The `(partition, offset, key, value)` of each line printed with `-f '%p|%o|%k|%s\n'`.
fn parse_records(text: &str) -> Vec<(i32, i64, String, String)> {
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, '|').collect();
            assert_eq!(fields.len(), 4, "line {line:?}");
            (
                fields[0].parse().expect("partition"),
                fields[1].parse().expect("offset"),
                fields[2].to_string(),
                fields[3].to_string(),
            )
        })
        .collect()
}

/// Values of the rows of `sluice topic describe` whose first column is `first`.
fn describe_row(describe: &str, first: &str) -> Vec<String> {
    describe
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find(|fields| fields.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in\n{describe}"))
}

#[test]
fn topic_commands() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 1, &["--auto-create-topics", "false"]);

        let out = sluice(
            &broker,
            &[
                "topic",
                "create",
                "orders",
                "-p",
                "3",
                "-r",
                "1",
                "-c",
                "retention.ms=86400000",
                "-c",
                "cleanup.policy=delete",
            ],
            b"",
        )
        .ok();
        assert_eq!(out, "created topic 'orders'\n");
        // Broker defaults for partitions and replicas (-1 in CreateTopics).
        sluice(&broker, &["topic", "create", "defaults"], b"").ok();
        sluice(&broker, &["topic", "create", "orders"], b"").fails_with("already exists");

        // --validate-only creates nothing.
        let out = sluice(
            &broker,
            &["topic", "create", "dry", "-p", "2", "--validate-only"],
            b"",
        )
        .ok();
        assert!(out.contains("validated only"), "{out}");

        let list = sluice(&broker, &["topic", "list"], b"").ok();
        let rows: Vec<Vec<&str>> = list
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["NAME", "PARTITIONS", "REPLICAS"], "{list}");
        assert!(rows.contains(&vec!["orders", "3", "1"]), "{list}");
        assert!(rows.contains(&vec!["defaults", "1", "1"]), "{list}");
        assert!(
            !list.contains("dry"),
            "validate-only created a topic:\n{list}"
        );

        // Describe: partitions with leader, replicas, ISR and offsets; configs with sources.
        sluice(&broker, &["produce", "orders", "-p", "1"], b"a\nb\n").ok();
        let describe = sluice(&broker, &["topic", "describe", "orders"], b"").ok();
        assert!(
            describe.starts_with("topic        orders\npartitions   3\n"),
            "{describe}"
        );
        assert_eq!(describe_row(&describe, "0"), ["0", "0", "0", "0", "0", "0"]);
        assert_eq!(describe_row(&describe, "1"), ["1", "0", "0", "0", "0", "2"]);
        assert_eq!(
            describe_row(&describe, "retention.ms"),
            ["retention.ms", "86400000", "DYNAMIC_TOPIC_CONFIG"]
        );
        assert_eq!(
            describe_row(&describe, "segment.bytes")[2],
            "DEFAULT_CONFIG",
            "{describe}"
        );

        // alter-config: set and delete (back to the default) in one IncrementalAlterConfigs.
        let out = sluice(
            &broker,
            &[
                "topic",
                "alter-config",
                "orders",
                "--set",
                "segment.bytes=1048576",
                "--delete",
                "retention.ms",
            ],
            b"",
        )
        .ok();
        assert_eq!(
            out,
            "altered configs of topic 'orders': set segment.bytes=1048576, deleted retention.ms\n"
        );
        let describe = sluice(&broker, &["topic", "describe", "orders"], b"").ok();
        assert_eq!(
            describe_row(&describe, "segment.bytes"),
            ["segment.bytes", "1048576", "DYNAMIC_TOPIC_CONFIG"]
        );
        assert_eq!(
            describe_row(&describe, "retention.ms"),
            ["retention.ms", "604800000", "DEFAULT_CONFIG"]
        );
        // --validate-only changes nothing.
        sluice(
            &broker,
            &[
                "topic",
                "alter-config",
                "orders",
                "--set",
                "segment.bytes=2097152",
                "--validate-only",
            ],
            b"",
        )
        .ok();
        let describe = sluice(&broker, &["topic", "describe", "orders"], b"").ok();
        assert_eq!(describe_row(&describe, "segment.bytes")[1], "1048576");

        // Invalid config values: refused on create and on alter, one line, exit 1.
        // The broker's reason comes through (librdkafka keeps only the code).
        let run = sluice(
            &broker,
            &["topic", "create", "bad", "-c", "retention.ms=soon"],
            b"",
        );
        run.fails_with("cannot create topic 'bad': ");
        assert!(
            run.stderr.contains("retention.ms") && run.stderr.contains("Configuration is invalid"),
            "{run:#?}"
        );
        let run = sluice(
            &broker,
            &[
                "topic",
                "alter-config",
                "orders",
                "--set",
                "retention.ms=soon",
            ],
            b"",
        );
        run.fails_with("cannot alter configs of topic 'orders': ");
        assert!(
            run.stderr.contains("retention.ms") && run.stderr.contains("INVALID_CONFIG"),
            "{run:#?}"
        );
        // Usage error: nothing to change (clap's exit status 2).
        let run = sluice(&broker, &["topic", "alter-config", "orders"], b"");
        assert_eq!(run.code, Some(2), "{run:#?}");

        // add-partitions: 3 -> 5; fewer is refused.
        let out = sluice(
            &broker,
            &["topic", "add-partitions", "orders", "-p", "5"],
            b"",
        )
        .ok();
        assert_eq!(out, "topic 'orders' now has 5 partitions\n");
        let describe = sluice(&broker, &["topic", "describe", "orders"], b"").ok();
        assert!(describe.contains("\npartitions   5\n"), "{describe}");
        assert_eq!(describe_row(&describe, "4"), ["4", "0", "0", "0", "0", "0"]);
        sluice(
            &broker,
            &["topic", "add-partitions", "orders", "-p", "2"],
            b"",
        )
        .fails_with("cannot add partitions to topic 'orders'");

        // Unknown topics (auto-creation is off on this broker, so produce does not create).
        for args in [
            &["topic", "describe", "nope"][..],
            &["produce", "nope"],
            &["consume", "nope"],
            &["topic", "alter-config", "nope", "--set", "retention.ms=1"],
            &["topic", "add-partitions", "nope", "-p", "4"],
            &["topic", "delete", "nope"],
        ] {
            sluice(&broker, args, b"").fails_with("unknown topic 'nope'");
        }

        // delete: several at once; then they are gone.
        let out = sluice(&broker, &["topic", "delete", "orders", "defaults"], b"").ok();
        assert!(out.contains("deleted topic 'orders'\n"), "{out}");
        assert!(out.contains("deleted topic 'defaults'\n"), "{out}");
        let list = sluice(&broker, &["topic", "list"], b"").ok();
        assert_eq!(list.trim(), "NAME  PARTITIONS  REPLICAS", "{list}");

        broker.stop();
    });
}

#[test]
fn produce_and_consume() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        sluice(&broker, &["topic", "create", "events", "-p", "4"], b"").ok();

        // Keyed records with headers; keys are split at the first ':'.
        let mut input = String::new();
        for i in 0..40 {
            input.push_str(&format!("key-{i}:value-{i}:with:colons\n"));
        }
        input.push_str("no separator here\n");
        sluice(
            &broker,
            &[
                "produce",
                "events",
                "-k",
                ":",
                "-H",
                "source=cli",
                "-H",
                "empty=",
                "--acks",
                "all",
            ],
            input.as_bytes(),
        )
        .ok();

        // Default output: each value on its own line; -e exits at the end of every partition.
        let out = sluice(&broker, &["consume", "events", "-e"], b"").ok();
        let mut values: Vec<&str> = out.lines().collect();
        values.sort_unstable();
        let mut expected: Vec<String> = (0..40).map(|i| format!("value-{i}:with:colons")).collect();
        expected.push("no separator here".to_string());
        expected.sort_unstable();
        assert_eq!(values, expected);

        // -f: partition, offset, key, value; keyed records in Kafka's murmur2 partition,
        // offsets dense per partition.
        let out = sluice(
            &broker,
            &["consume", "events", "-e", "-f", "%p|%o|%k|%s\\n"],
            b"",
        )
        .ok();
        let records = parse_records(&out);
        assert_eq!(records.len(), 41);
        let mut next = [0i64; 4];
        for (partition, offset, key, value) in &records {
            assert_eq!(*offset, next[*partition as usize], "{out}");
            next[*partition as usize] += 1;
            if let Some(i) = key.strip_prefix("key-") {
                assert_eq!(value, &format!("value-{i}:with:colons"));
                assert_eq!(
                    *partition,
                    common::kafka_partition(key.as_bytes(), 4),
                    "key {key}"
                );
            } else {
                assert_eq!((key.as_str(), value.as_str()), ("", "no separator here"));
            }
        }

        // Headers, sizes, topic and timestamp tokens.
        let out = sluice(
            &broker,
            &["consume", "events", "-n", "1", "-f", "%t %h %K %S %T"],
            b"",
        )
        .ok();
        let fields: Vec<&str> = out.split(' ').collect();
        assert_eq!(fields[..2], ["events", "source=cli,empty="], "{out}");
        assert!(fields[2] == "-1" || fields[2].parse::<i64>().is_ok_and(|n| n > 0));
        assert!(fields[3].parse::<i64>().is_ok_and(|n| n > 0), "{out}");
        let timestamp: i64 = fields[4].parse().expect("timestamp");
        assert!((common::now_ms() - timestamp).abs() < 600_000, "{out}");

        // --json: one object per record.
        let out = sluice(&broker, &["consume", "events", "-e", "--json"], b"").ok();
        let objects: Vec<serde_json::Value> = out
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(objects.len(), 41);
        let keyed = objects
            .iter()
            .find(|object| object["key"] == "key-7")
            .expect("key-7");
        assert_eq!(keyed["value"], "value-7:with:colons");
        assert_eq!(keyed["topic"], "events");
        assert_eq!(keyed["timestamp_type"], "CreateTime");
        assert_eq!(
            keyed["headers"],
            serde_json::json!([{"key": "source", "value": "cli"}, {"key": "empty", "value": ""}])
        );
        assert!(objects.iter().any(|object| object["key"].is_null()));

        // -n: exactly that many, then exit (without -e).
        let out = sluice(&broker, &["consume", "events", "-n", "5"], b"").ok();
        assert_eq!(out.lines().count(), 5);

        // A partition filter, and explicit offsets within it.
        let p0: Vec<_> = records.iter().filter(|r| r.0 == 0).cloned().collect();
        assert!(p0.len() >= 3, "partition 0 has {} records", p0.len());
        let out = sluice(
            &broker,
            &["consume", "events", "-p", "0", "-e", "-f", "%p|%o|%k|%s\\n"],
            b"",
        )
        .ok();
        assert_eq!(parse_records(&out), p0);
        let out = sluice(
            &broker,
            &[
                "consume",
                "events",
                "-p",
                "0",
                "-o",
                "2",
                "-e",
                "-f",
                "%p|%o|%k|%s\\n",
            ],
            b"",
        )
        .ok();
        assert_eq!(parse_records(&out), p0[2..]);
        let out = sluice(
            &broker,
            &[
                "consume",
                "events",
                "-p",
                "0",
                "-o",
                "-1",
                "-e",
                "-f",
                "%p|%o|%k|%s\\n",
            ],
            b"",
        )
        .ok();
        assert_eq!(parse_records(&out), p0[p0.len() - 1..]);
        // -o end with -e: nothing new, exits.
        let out = sluice(&broker, &["consume", "events", "-o", "end", "-e"], b"").ok();
        assert_eq!(out, "");

        // --partition on produce, and -o @timestamp: only records from that time on.
        sluice(
            &broker,
            &["produce", "events", "--partition", "3"],
            b"old-1\nold-2\n",
        )
        .ok();
        std::thread::sleep(Duration::from_millis(50));
        let since = common::now_ms();
        std::thread::sleep(Duration::from_millis(50));
        sluice(
            &broker,
            &["produce", "events", "--partition", "3", "--acks", "1"],
            b"new-1\nnew-2\nnew-3\n",
        )
        .ok();
        let at = format!("@{since}");
        let out = sluice(&broker, &["consume", "events", "-o", &at, "-e"], b"").ok();
        assert_eq!(out, "new-1\nnew-2\nnew-3\n");
        let out = sluice(
            &broker,
            &[
                "consume", "events", "-p", "3", "-o", &at, "-e", "-f", "%p\\n",
            ],
            b"",
        )
        .ok();
        assert_eq!(out, "3\n3\n3\n");
        let future = format!("@{}", common::now_ms() + 3_600_000);
        let out = sluice(&broker, &["consume", "events", "-o", &future, "-e"], b"").ok();
        assert_eq!(out, "");

        // acks=0: fire and forget, still stored.
        sluice(
            &broker,
            &["produce", "events", "-p", "2", "--acks", "0"],
            b"zero\n",
        )
        .ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = sluice(
                &broker,
                &["consume", "events", "-p", "2", "-o", "-1", "-e"],
                b"",
            )
            .ok();
            if out == "zero\n" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "acks=0 record not stored: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        // Errors: unknown topic, unknown partition (produce and consume), bad offsets.
        sluice(&broker, &["consume", "missing", "-e"], b"").fails_with("unknown topic 'missing'");
        sluice(&broker, &["consume", "events", "-p", "9", "-e"], b"")
            .fails_with("has no partition 9");
        sluice(&broker, &["produce", "events", "--partition", "9"], b"x\n")
            .fails_with("has no partition 9");
        sluice(
            &broker,
            &["consume", "events", "-p", "0", "-o", "1000", "-e"],
            b"",
        )
        .fails_with("offset 1000 is out of range for partition 0 of 'events' (offsets 0 to");
        let run = sluice(&broker, &["consume", "events", "-o", "someday"], b"");
        assert_eq!(run.code, Some(2), "{run:#?}");
        let run = sluice(&broker, &["consume", "events", "-f", "%x"], b"");
        assert_eq!(run.code, Some(2), "{run:#?}");

        // SLUICE_BROKERS instead of --brokers.
        let bootstrap = broker.bootstrap();
        let run = run_with(
            &["consume", "events", "-p", "3", "-o", "-1", "-e"],
            b"",
            &[("SLUICE_BROKERS", &bootstrap)],
            RUN_LIMIT,
        );
        assert_eq!(run.ok(), "new-3\n");

        broker.stop();
        assert_eq!(broker.warnings(), Vec::<String>::new(), "broker warnings");
    });
}

#[test]
fn consume_with_a_group_resumes_after_its_commits() {
    common::with_timeout(Duration::from_secs(180), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(
            &dir.data(),
            2,
            &["--group-initial-rebalance-delay-ms", "100"],
        );
        sluice(&broker, &["topic", "create", "grouped", "-p", "3"], b"").ok();
        let first: String = (1..=20).map(|i| format!("{i}\n")).collect();
        sluice(&broker, &["produce", "grouped"], first.as_bytes()).ok();
        let out = sluice(
            &broker,
            &["consume", "grouped", "-g", "cli-group", "-n", "20"],
            b"",
        )
        .ok();
        let mut got: Vec<u32> = out.lines().map(|l| l.parse().expect("number")).collect();
        got.sort_unstable();
        assert_eq!(got, (1..=20).collect::<Vec<_>>());
        // The group committed what it printed: the next run starts after it.
        sluice(&broker, &["produce", "grouped"], b"21\n22\n").ok();
        let out = sluice(
            &broker,
            &["consume", "grouped", "-g", "cli-group", "-n", "2"],
            b"",
        )
        .ok();
        let mut got: Vec<&str> = out.lines().collect();
        got.sort_unstable();
        assert_eq!(got, ["21", "22"]);
        // The offsets topic exists now; it is listed only on request.
        let listed = sluice(&broker, &["topic", "list"], b"").ok();
        assert!(!listed.contains("__consumer_offsets"), "{listed}");
        let listed = sluice(&broker, &["topic", "list", "--internal"], b"").ok();
        assert!(listed.contains("__consumer_offsets"), "{listed}");
        broker.assert_alive();
    });
}

/// The rows of `group describe`'s offsets table: `(topic, partition, committed, end, lag)`.
fn group_offsets(describe: &str) -> Vec<(String, i32, i64, i64, i64)> {
    describe
        .lines()
        .skip_while(|line| !line.starts_with("TOPIC"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let number = |cell: &str| cell.parse::<i64>().expect("number");
            (
                cells[0].to_string(),
                i32::try_from(number(cells[1])).expect("partition"),
                number(cells[2]),
                number(cells[3]),
                number(cells[4]),
            )
        })
        .collect()
}

#[test]
fn group_commands() {
    common::with_timeout(Duration::from_secs(240), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(
            &dir.data(),
            2,
            &["--group-initial-rebalance-delay-ms", "100"],
        );
        sluice(&broker, &["topic", "create", "gt", "-p", "3"], b"").ok();
        // Ten lines to each partition, so the group commits all three.
        for partition in 0..3 {
            let lines: String = (1..=10)
                .map(|i| format!("{}\n", partition * 10 + i))
                .collect();
            let partition = partition.to_string();
            sluice(
                &broker,
                &["produce", "gt", "-p", &partition],
                lines.as_bytes(),
            )
            .ok();
        }
        let out = sluice(&broker, &["consume", "gt", "-g", "g1", "-n", "30"], b"").ok();
        assert_eq!(out.lines().count(), 30, "{out}");

        let out = sluice(&broker, &["group", "list"], b"").ok();
        assert_eq!(
            describe_row(&out, "g1"),
            ["g1", "Empty", "consumer"],
            "{out}"
        );

        let out = sluice(&broker, &["group", "describe", "g1"], b"").ok();
        assert!(out.contains("state     Empty\n"), "{out}");
        let rows = group_offsets(&out);
        assert_eq!(rows.len(), 3, "{out}");
        assert_eq!(rows.iter().map(|row| row.2).sum::<i64>(), 30, "{out}");
        assert!(rows.iter().all(|row| row.0 == "gt" && row.4 == 0), "{out}");
        assert!(out.contains("lag       0\n"), "{out}");

        sluice(
            &broker,
            &["produce", "gt", "-p", "1"],
            b"31\n32\n33\n34\n35\n",
        )
        .ok();
        let out = sluice(&broker, &["group", "describe", "g1"], b"").ok();
        let rows = group_offsets(&out);
        assert_eq!(rows.iter().map(|row| row.4).sum::<i64>(), 5, "{out}");
        assert_eq!(rows.iter().map(|row| row.3).sum::<i64>(), 35, "{out}");

        let out = sluice(
            &broker,
            &[
                "group",
                "reset-offsets",
                "g1",
                "--topic",
                "gt",
                "--to-earliest",
                "--dry-run",
            ],
            b"",
        )
        .ok();
        assert!(out.contains("dry run"), "{out}");
        let out = sluice(&broker, &["group", "describe", "g1"], b"").ok();
        assert!(out.contains("lag       5\n"), "dry run committed: {out}");
        let out = sluice(
            &broker,
            &[
                "group",
                "reset-offsets",
                "g1",
                "--topic",
                "gt",
                "--to-earliest",
            ],
            b"",
        )
        .ok();
        assert_eq!(describe_row(&out, "gt").len(), 4, "{out}");
        let out = sluice(&broker, &["group", "describe", "g1"], b"").ok();
        assert!(out.contains("lag       35\n"), "{out}");
        let out = sluice(&broker, &["consume", "gt", "-g", "g1", "-n", "35"], b"").ok();
        let mut got: Vec<u32> = out.lines().map(|l| l.parse().expect("number")).collect();
        got.sort_unstable();
        assert_eq!(got, (1..=35).collect::<Vec<_>>());

        sluice(
            &broker,
            &["group", "reset-offsets", "g1", "-t", "nope", "--to-latest"],
            b"",
        )
        .fails_with("unknown topic 'nope'");
        let out = sluice(&broker, &["group", "delete", "g1"], b"").ok();
        assert_eq!(out, "deleted group 'g1'\n");
        sluice(&broker, &["group", "describe", "g1"], b"").fails_with("group 'g1' does not exist");
        sluice(&broker, &["group", "delete", "g1"], b"").fails_with("does not exist");
        let out = sluice(&broker, &["group", "list"], b"").ok();
        assert!(!out.contains("g1"), "{out}");
        broker.assert_alive();
    });
}

#[test]
fn compression_codecs() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 1, &[]);
        for (codec, code) in [
            ("none", 0),
            ("gzip", 1),
            ("snappy", 2),
            ("lz4", 3),
            ("zstd", 4),
        ] {
            let topic = format!("compressed-{codec}");
            sluice(&broker, &["topic", "create", &topic, "-p", "1"], b"").ok();
            // Compressible lines, enough to fill a batch.
            let lines: Vec<String> = (0..500)
                .map(|i| format!("{codec} line {i} {}", "abcdefgh".repeat(8)))
                .collect();
            let input = lines.join("\n") + "\n";
            sluice(
                &broker,
                &["produce", &topic, "--compression", codec],
                input.as_bytes(),
            )
            .ok();
            let out = sluice(&broker, &["consume", &topic, "-e"], b"").ok();
            assert_eq!(out, input, "{codec}: records read back");
            let batches = common::stored_batches(&dir.data().join(format!("{topic}-0")));
            assert!(!batches.is_empty(), "{codec}: no batches stored");
            assert!(
                batches.iter().all(|batch| batch.codec == code),
                "{codec}: stored codecs {batches:?}"
            );
        }
        broker.stop();
        // `sluice log inspect` still opens a partition written through the CLI.
        let partition = dir.data().join("compressed-zstd-0");
        let partition = partition.to_str().expect("utf-8 path");
        let out = run_with(&["log", "inspect", partition], b"", &[], RUN_LIMIT).ok();
        assert!(out.contains("log end        500\n"), "{out}");
    });
}

#[test]
fn cluster_info_completion_and_help() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 1, &[]);
        let out = sluice(&broker, &["cluster", "info"], b"").ok();
        assert!(out.contains("controller  0\n"), "{out}");
        let broker_row = describe_row(&out, "0*");
        assert_eq!(broker_row[1], broker.bootstrap(), "{out}");
        let produce = describe_row(&out, "Produce");
        assert_eq!(produce[..2], ["Produce", "0"], "{out}");
        assert!(produce[2].ends_with("-13"), "{out}");
        for api in ["ApiVersions", "Metadata", "IncrementalAlterConfigs"] {
            describe_row(&out, api);
        }
        let cluster_id = describe_row(&out, "cluster")[2].clone();
        assert!(!cluster_id.is_empty() && cluster_id != "-", "{out}");

        for shell in ["bash", "zsh", "fish"] {
            let run = run_with(&["completion", shell], b"", &[], RUN_LIMIT);
            let script = run.ok();
            assert!(script.contains("sluice"), "{shell}");
            assert!(script.contains("alter-config"), "{shell}: subcommands");
        }

        for command in [
            &[][..],
            &["serve"],
            &["log", "inspect"],
            &["topic"],
            &["topic", "create"],
            &["topic", "list"],
            &["topic", "describe"],
            &["topic", "alter-config"],
            &["topic", "add-partitions"],
            &["topic", "delete"],
            &["produce"],
            &["consume"],
            &["cluster"],
            &["cluster", "info"],
            &["group"],
            &["group", "list"],
            &["group", "describe"],
            &["group", "delete"],
            &["group", "reset-offsets"],
            &["completion"],
        ] {
            let mut args = command.to_vec();
            args.push("--help");
            let run = run_with(&args, b"", &[], RUN_LIMIT);
            let help = run.ok();
            assert!(help.contains("Usage: sluice"), "{command:?}: {help}");
        }
        let help = run_with(&["consume", "--help"], b"", &[], RUN_LIMIT).ok();
        assert!(help.contains("[default: beginning]"), "{help}");
        assert!(help.contains("SLUICE_BROKERS"), "{help}");
        broker.stop();
    });
}

/// Sends SIGINT to `child` and waits (at most 15 s) for its exit status.
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice did not stop within 15s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_ends_a_produce_cleanly() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 1, &[]);
        sluice(&broker, &["topic", "create", "typed", "-p", "1"], b"").ok();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["produce", "typed", "--brokers", &broker.bootstrap()])
            .env_remove("SLUICE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice produce");
        // Lines typed at a terminal: standard input stays open.
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"first\nsecond\n").expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "exited early"
        );
        let status = interrupt(&mut child);
        drop(stdin);
        assert_eq!(status.code(), Some(0), "exit status after SIGINT");
        let out = sluice(&broker, &["consume", "typed", "-e"], b"").ok();
        assert_eq!(out, "first\nsecond\n");
        broker.stop();
    });
}

#[test]
fn ctrl_c_ends_a_consume_cleanly() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 1, &[]);
        sluice(&broker, &["produce", "tail"], b"one\ntwo\n").ok();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["consume", "tail", "--brokers", &broker.bootstrap()])
            .env_remove("SLUICE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice consume");
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        // Running, following the topic: it does not exit on its own.
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "exited early"
        );
        let status = interrupt(&mut child);
        assert_eq!(status.code(), Some(0), "exit status after SIGINT");
        assert_eq!(reader.join().expect("reader"), "one\ntwo\n");
        broker.stop();
    });
}

#[test]
fn unreachable_broker_is_a_prompt_error() {
    common::with_timeout(Duration::from_secs(180), || {
        // A port with nothing listening.
        let port = common::free_port();
        let brokers = format!("127.0.0.1:{port}");
        for args in [
            &["topic", "list"][..],
            &["topic", "create", "t"],
            &["topic", "describe", "t"],
            &["topic", "alter-config", "t", "--set", "retention.ms=1"],
            &["topic", "add-partitions", "t", "-p", "2"],
            &["topic", "delete", "t"],
            &["produce", "t"],
            &["consume", "t"],
            &["cluster", "info"],
        ] {
            let mut full = args.to_vec();
            full.extend(["--brokers", &brokers, "--timeout", "2s"]);
            let run = run_with(&full, b"x\n", &[], Duration::from_secs(30));
            run.fails_with(&format!("cannot reach the brokers at {brokers} within 2s"));
            assert!(
                run.elapsed < Duration::from_secs(10),
                "{args:?} took {:?}",
                run.elapsed
            );
        }
        // SLUICE_BROKERS is used when --brokers is not given.
        let run = run_with(
            &["cluster", "info", "--timeout", "1s"],
            b"",
            &[("SLUICE_BROKERS", &brokers)],
            Duration::from_secs(30),
        );
        run.fails_with(&format!("cannot reach the brokers at {brokers}"));
    });
}
