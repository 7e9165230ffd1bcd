#!/usr/bin/env bash
# Client smoke test: real Kafka clients against a freshly built `sluice serve`.
#
#   kcat             produce keyed lines, consume them back (-e), list metadata
#   confluent-kafka  AdminClient create topic, produce 1000 keyed, consume all by assign()
#   kafka-python     producer (enable_idempotence=False), consumer by assign(), counts
#
# Installs what it needs (idempotent), builds the broker, starts it on a free 127.0.0.1
# port with a temporary data directory, and stops it (by PID) on exit. Every client command
# runs under `timeout`; any failure exits non-zero.
#
# Usage: bash scripts/client_smoke.sh
#   SLUICE_BIN=path   use this broker binary instead of building one
#   SMOKE_TIMEOUT=s   seconds allowed to each client command (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-60}
say() { echo "== client smoke: $*"; }
fail() {
  echo "client smoke FAILED: $*" >&2
  exit 1
}

# --- what the clients need ------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v kcat >/dev/null 2>&1; then
  say "installing kcat"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi
if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
  say "installing confluent-kafka"
  python3 -m pip install --quiet confluent-kafka
fi
if ! python3 -c 'import prometheus_client.parser' >/dev/null 2>&1; then
  say "installing prometheus-client (pip)"
  python3 -m pip install --quiet prometheus-client
fi
if ! python3 -c 'import kafka.producer' >/dev/null 2>&1; then
  say "installing kafka-python"
  python3 -m pip install --quiet kafka-python
fi

# --- the broker ---------------------------------------------------------------------
if [ -z "${SLUICE_BIN:-}" ]; then
  say "building the broker"
  cargo build --locked --quiet -p sluice --bin sluice
  SLUICE_BIN=target/debug/sluice
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then SLUICE_BIN="$CARGO_TARGET_DIR/debug/sluice"; fi
fi
[ -x "$SLUICE_BIN" ] || fail "no broker binary at $SLUICE_BIN"

WORK=$(mktemp -d -t sluice-smoke-XXXXXX)
BROKER_PID=""
cleanup() {
  local status=$?
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$BROKER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "broker did not stop on SIGTERM; killing it" >&2
      kill -KILL "$BROKER_PID" 2>/dev/null || true
      status=1
    fi
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -f "$WORK/broker.log" ]; then
    echo "--- broker log (last 50 lines) ---" >&2
    tail -n 50 "$WORK/broker.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BOOTSTRAP="127.0.0.1:$PORT"
ADMIN_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
say "starting $SLUICE_BIN on $BOOTSTRAP (2 shards, data in $WORK/data)"
SLUICE_LOG=info "$SLUICE_BIN" serve --data-dir "$WORK/data" --kafka-addr "$BOOTSTRAP" \
  --admin-addr "127.0.0.1:$ADMIN_PORT" --cores 2 --num-partitions 3 >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
ready=0
for _ in $(seq 1 300); do
  kill -0 "$BROKER_PID" 2>/dev/null || fail "broker exited during startup"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || fail "broker not accepting connections after 30 s"

# --- kcat ---------------------------------------------------------------------------
KCAT=(timeout "$SMOKE_TIMEOUT" kcat -b "$BOOTSTRAP" -X broker.address.family=v4)
say "kcat: produce 1000 keyed lines (topic auto-created)"
seq 1 1000 | sed 's/.*/key-&:line-&/' >"$WORK/kcat.in"
"${KCAT[@]}" -P -t smoke-kcat -K: -X acks=all -X enable.idempotence=true <"$WORK/kcat.in" || fail "kcat produce"

say "kcat: consume them back"
"${KCAT[@]}" -C -t smoke-kcat -o beginning -e -q -f '%k:%s\n' >"$WORK/kcat.out" || fail "kcat consume"
sort "$WORK/kcat.in" >"$WORK/kcat.in.sorted"
sort "$WORK/kcat.out" >"$WORK/kcat.out.sorted"
cmp -s "$WORK/kcat.in.sorted" "$WORK/kcat.out.sorted" ||
  fail "kcat read $(wc -l <"$WORK/kcat.out") lines, not the 1000 produced"

say "kcat: metadata"
"${KCAT[@]}" -L -t smoke-kcat >"$WORK/kcat.meta" || fail "kcat -L"
grep -q 'topic "smoke-kcat" with 3 partitions' "$WORK/kcat.meta" ||
  fail "kcat -L: $(cat "$WORK/kcat.meta")"
grep -q "broker 0 at 127.0.0.1:$PORT" "$WORK/kcat.meta" || fail "kcat -L: $(cat "$WORK/kcat.meta")"

# --- Python clients -----------------------------------------------------------------
say "confluent-kafka and kafka-python"
timeout $((SMOKE_TIMEOUT * 3)) python3 scripts/client_smoke.py "$BOOTSTRAP" || fail "python clients"

say "admin APIs with confluent-kafka and kafka-python"
timeout $((SMOKE_TIMEOUT * 6)) python3 scripts/admin_smoke.py "$BOOTSTRAP" || fail "admin APIs"

say "metrics: scrape /metrics with prometheus_client's parser"
timeout "$SMOKE_TIMEOUT" python3 scripts/metrics_smoke.py "127.0.0.1:$ADMIN_PORT" smoke-kcat 1000 ||
  fail "metrics"

kill -0 "$BROKER_PID" 2>/dev/null || fail "the broker died"
# Well-behaved clients never make the broker warn (e.g. close a connection on a request
# it cannot serve); a client resetting its own connection is not the broker's doing.
sed 's/\x1b\[[0-9;]*m//g' "$WORK/broker.log" | grep -E ' (WARN|ERROR) ' |
  grep -v 'Connection reset by peer' >"$WORK/warnings" || true
if [ -s "$WORK/warnings" ]; then
  cat "$WORK/warnings" >&2
  fail "the broker logged warnings"
fi
echo "client_smoke: 7 passed, 0 failed"
