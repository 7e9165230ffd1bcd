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
#   4. end-to-end (publish → receive, one producer and two consumers at once, acks=all):
#      the peak rate of that setup, then the latency at 50% of it, open-loop. These run
#      first, on a quiet disk: deleting the other cases' topics (gigabytes) makes later
#      fdatasyncs wait on the file system's journal.
# Every result carries the broker's CPU over it (cores, CPU-seconds per GB).
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

# measured COMMAND ARGS...: runs `sluice-bench --json --cpu any COMMAND ARGS...` and appends
# its results to the run, each with the broker's CPU over the command beside it (cores, and
# CPU-seconds per GB moved): on a small machine the clients can be the bottleneck, and the
# broker's CPU shows what each path costs.
measured() {
  local before output after
  before=$(broker_cpu_ticks)
  output=$("$BENCH" --json --cpu any "$@")
  after=$(broker_cpu_ticks)
  python3 -c "
import json, os, sys
seconds = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf('SC_CLK_TCK')
for line in sys.argv[1].splitlines():
    r = json.loads(line)
    r['broker_cpu_cores'] = seconds / r['duration_s'] if r['duration_s'] else 0.0
    r['broker_cpu_s_per_gb'] = seconds / (r['bytes'] / 1e9) if r['bytes'] else 0.0
    print(json.dumps(r, sort_keys=True))" "$output" "$before" "$after" >>"$RUN"
}

rm -rf "$DIR"
mkdir -p "$DIR"
rm -f "$OUT/broker.log"

say "limits: disk, loopback TCP, cores"
"$BENCH" --json limits --dir "$DIR" >>"$RUN"

start_broker
E2E=(--brokers "$B" --topic e2e --record-size 1KiB --partitions 8 --acks all --producers 1
  --consumers 2 --no-progress)
say "e2e peak: as fast as one producer and two consumers go, together"
measured e2e "${E2E[@]}" --warmup 2 --duration "$SECONDS_PER_CASE" --label peak
PEAK_RATE=$(python3 -c "
import json
print(int([json.loads(l) for l in open('$RUN') if json.loads(l)['name'] == 'e2e.consume.peak'][-1]['ops_per_s']))")
RATE=$((PEAK_RATE / 2))
say "e2e at 50% of that peak: $RATE records/s, open-loop"
measured e2e "${E2E[@]}" --rate "$RATE" --warmup 3 --duration 20 --label half-peak \
  --hdr-out "$OUT/e2e.hgrm"
scrape e2e
"$SLUICE" topic delete e2e --brokers "$B" >/dev/null

COMMON=(--brokers "$B" --record-size 1KiB --partitions 8 --warmup 2 --duration "$SECONDS_PER_CASE" --no-progress)
for producers in 1 8; do
  for acks in 1 all; do
    label="acks${acks}.p${producers}"
    say "produce acks=$acks, $producers producer(s)"
    measured produce "${COMMON[@]}" --topic "p-$label" --acks "$acks" \
      --producers "$producers" --label "$label"
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
  say "consume hot.$mode"
  measured consume "${CONSUME[@]}" --label "hot.$mode"
  stop_broker
  cold=$(drop_caches)
  start_broker --config "$DIR/hot.toml" --fetch-zero-copy "$zero_copy"
  say "consume $cold.$mode"
  measured consume "${CONSUME[@]}" --label "$cold.$mode"
  say "consume warm.$mode"
  measured consume "${CONSUME[@]}" --label "warm.$mode"
  scrape "consume-$mode"
  "$SLUICE" topic delete "c-$mode" --brokers "$B" >/dev/null
  stop_broker
done

say "chart and table"
python3 scripts/plot_bench.py "$RUN" -o "$OUT/bench.png" --title "Sluice, 1 KiB records" \
  --markdown "$OUT/table.md"
cat "$OUT/table.md"
