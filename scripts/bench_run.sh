#!/usr/bin/env bash
# The README's "Performance" run: one sluice-bench session on this machine, against a
# release broker it starts and stops itself.
#
#   bash scripts/bench_run.sh [OUT_DIR]        (default: bench-results/)
#
# Measures, in this order and in one run (so the ratios mean something on a noisy machine):
#   1. the physical limits: raw O_DIRECT disk write, fdatasync, loopback TCP, cores;
#   2. produce, 1 KiB records, 8 partitions, group-commit fdatasync on: acks=1 and acks=all,
#      with 1 and with 8 producers;
#   3. consume from the beginning: hot (from the broker's batch cache), cold (broker
#      restarted, page cache dropped) and warm (in the page cache), each with zero-copy
#      fetch (memory slices, sendfile) and with the copying path (`--fetch-zero-copy
#      false`), with the broker's CPU per GB, to measure what zero-copy is worth;
#   4. end-to-end latency (publish → receive) at 50% of the peak acks=all rate, open-loop.
# Writes OUT_DIR/run.jsonl (one JSON object per result), OUT_DIR/bench.png (chart),
# OUT_DIR/table.md (the README table), OUT_DIR/metrics-*.txt (broker /metrics after each
# phase) and OUT_DIR/e2e.hgrm. Environment: BENCH_DIR (data, default /tmp/sluice-bench-run),
# BENCH_SECONDS (measured seconds per produce case, default 10), BENCH_CORES (broker
# shards, default all).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-bench-results}
DIR=${BENCH_DIR:-/tmp/sluice-bench-run}
SECONDS_PER_CASE=${BENCH_SECONDS:-10}
CORES=${BENCH_CORES:-$(nproc)}
mkdir -p "$OUT"
RUN="$OUT/run.jsonl"
: >"$RUN"

say() { echo "== bench: $*" >&2; }

say "building release binaries"
cargo build --release --locked -p sluice -p sluice-bench >&2
SLUICE=target/release/sluice
BENCH=target/release/sluice-bench

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
ADMIN=$(free_port)
B="127.0.0.1:$PORT"
BROKER_PID=

stop_broker() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID"
    for _ in $(seq 1 300); do
      kill -0 "$BROKER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  BROKER_PID=
}

cleanup() {
  stop_broker
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_broker [extra serve flags...]: starts on $DIR/data and waits for /health.
start_broker() {
  stop_broker
  # A stopped broker's io_uring listener can linger for a moment: wait until refused.
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
    sleep 0.1
  done
  "$SLUICE" serve --data-dir "$DIR/data" --kafka-addr "$B" --admin-addr "127.0.0.1:$ADMIN" \
    --cores "$CORES" "$@" >>"$OUT/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 300); do
    kill -0 "$BROKER_PID" 2>/dev/null || { tail -20 "$OUT/broker.log" >&2; exit 1; }
    if python3 -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$ADMIN/health', timeout=1).status != 200)" 2>/dev/null; then
      return
    fi
    sleep 0.1
  done
  echo "broker not ready" >&2
  exit 1
}

scrape() {
  python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$ADMIN/metrics', timeout=10).read().decode(), end='')" >"$OUT/metrics-$1.txt"
}

drop_caches() {
  sync
  if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
    echo cold
  else
    say "cannot drop the page cache (not root): the cold case reads from the page cache"
    echo cold-cache-not-dropped
  fi
}

# broker_cpu_ticks: user + system clock ticks of the broker so far.
broker_cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$BROKER_PID/stat"
}

# consume_case LABEL ARGS...: one consume result, with the broker's CPU beside it.
consume_case() {
  local label=$1
  shift
  say "consume $label"
  local before result after
  before=$(broker_cpu_ticks)
  result=$("$BENCH" --json --cpu any consume "$@" --label "$label")
  after=$(broker_cpu_ticks)
  python3 -c "
import json, os, sys
r = json.loads(sys.argv[1])
seconds = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf('SC_CLK_TCK')
r['broker_cpu_cores'] = seconds / r['duration_s'] if r['duration_s'] else 0.0
r['broker_cpu_s_per_gb'] = seconds / (r['bytes'] / 1e9) if r['bytes'] else 0.0
print(json.dumps(r, sort_keys=True))" "$result" "$before" "$after" >>"$RUN"
}

rm -rf "$DIR"
mkdir -p "$DIR"
rm -f "$OUT/broker.log"

say "limits: disk, loopback TCP, cores"
"$BENCH" --json limits --dir "$DIR" >>"$RUN"

start_broker
COMMON=(--brokers "$B" --record-size 1KiB --partitions 8 --warmup 2 --duration "$SECONDS_PER_CASE" --no-progress)
for producers in 1 8; do
  for acks in 1 all; do
    label="acks${acks}.p${producers}"
    say "produce acks=$acks, $producers producer(s)"
    "$BENCH" --json --cpu any produce "${COMMON[@]}" --topic "p-$label" --acks "$acks" \
      --producers "$producers" --label "$label" >>"$RUN"
    "$SLUICE" topic delete "p-$label" --brokers "$B" >/dev/null # keep the disk small
  done
done
scrape produce
stop_broker

# Consume, once per fetch path. The broker writes with O_DIRECT, so nothing it wrote is in
# the page cache: "hot" is the tail served from the broker's batch cache (sized here to hold
# the whole topic), "cold" comes from the disk after a restart with the page cache dropped,
# and "warm" reads the same files again, now in the page cache. The broker's CPU time per
# GB is recorded beside each result (the client, one librdkafka consumer, can be the
# bottleneck on a small machine; the broker's CPU shows what zero-copy saves).
HOT_RECORDS=${BENCH_HOT_RECORDS:-1500000}
printf 'cache_bytes_per_shard = %d\n' $((2 << 30)) >"$DIR/hot.toml"
for mode in zero-copy copy; do
  zero_copy=true
  [ "$mode" = copy ] && zero_copy=false
  start_broker --config "$DIR/hot.toml" --fetch-zero-copy "$zero_copy"
  say "consume ($mode): produce $HOT_RECORDS records, then read them hot, cold and warm"
  "$BENCH" --cpu any produce --brokers "$B" --topic "c-$mode" --record-size 1KiB --partitions 8 \
    --acks all --count "$HOT_RECORDS" --no-progress >/dev/null
  CONSUME=(--brokers "$B" --topic "c-$mode" --count "$HOT_RECORDS" --no-progress)
  consume_case "hot.$mode" "${CONSUME[@]}"
  stop_broker
  cold=$(drop_caches)
  start_broker --config "$DIR/hot.toml" --fetch-zero-copy "$zero_copy"
  consume_case "$cold.$mode" "${CONSUME[@]}"
  consume_case "warm.$mode" "${CONSUME[@]}"
  scrape "consume-$mode"
  "$SLUICE" topic delete "c-$mode" --brokers "$B" >/dev/null
  stop_broker
done

sync
sleep 2 # let writeback of the deleted topics settle before measuring latency
start_broker
PEAK=$(python3 -c "
import json
rates = [json.loads(l) for l in open('$RUN')]
best = max((r for r in rates if r['name'].startswith('produce.acksall')), key=lambda r: r['ops_per_s'])
print(int(best['ops_per_s']), int(best['producers']))")
read -r PEAK_RATE PEAK_PRODUCERS <<<"$PEAK"
RATE=$((PEAK_RATE / 2))
say "e2e at 50% of the peak acks=all rate: $RATE records/s, $PEAK_PRODUCERS producer(s)"
"$BENCH" --json --cpu any e2e --brokers "$B" --topic e2e --record-size 1KiB --partitions 8 \
  --acks all --rate "$RATE" --producers "$PEAK_PRODUCERS" --consumers 2 --warmup 3 \
  --duration 20 --no-progress --label half-peak --hdr-out "$OUT/e2e.hgrm" >>"$RUN"
scrape e2e
stop_broker

say "chart and table"
python3 scripts/plot_bench.py "$RUN" -o "$OUT/bench.png" --title "Sluice, 1 KiB records" \
  --markdown "$OUT/table.md"
cat "$OUT/table.md"
