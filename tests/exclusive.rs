//! A broker's data directory is its own: a second broker on the same directory refuses to
//! start with a clear error.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Broker, TestDir};

/// Runs `sluice serve` expecting it to fail; returns its stderr.
fn refused(data_dir: &std::path::Path, port: u16) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--kafka-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cores")
        .arg("1")
        .stdin(Stdio::null())
        .output()
        .expect("run sluice");
    assert!(!output.status.success(), "a second broker started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_second_broker_on_the_same_directory_refuses_to_start() {
    common::with_timeout(Duration::from_secs(60), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 1, &[]);
        let error = refused(&dir.data(), common::free_port());
        assert!(error.contains("in use by another process"), "{error}");
        broker.assert_alive();
    });
}
