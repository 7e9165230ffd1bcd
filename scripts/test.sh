#!/usr/bin/env bash
# Runs every test of Sluice on a fresh machine: installs what the tests need (idempotent),
# then checks formatting and lints, runs the workspace tests (including the integration
# tests in tests/ that drive the real broker with librdkafka and raw TCP), and finishes with
# the client smoke test (scripts/client_smoke.sh).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain: $(cargo --version)"
# io_uring needs locked memory for glommio; root has CAP_IPC_LOCK, others need a higher limit.
if [ "$(id -u)" != 0 ] && [ "$(ulimit -l)" != unlimited ] && [ "$(ulimit -l)" -lt 65536 ]; then
  ulimit -l unlimited 2>/dev/null || echo "warning: ulimit -l is $(ulimit -l) KiB; glommio tests may fail (raise LimitMEMLOCK)"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz targets build (as plain binaries, no nightly needed)"
if [ -d fuzz ]; then
  (cd fuzz && cargo test --locked)
fi

echo "== client smoke (kcat, confluent-kafka, kafka-python against sluice serve)"
bash scripts/client_smoke.sh
