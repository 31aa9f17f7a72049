#!/usr/bin/env bash
# Streamed replies under load (issue 18, docs/benchmarks.md "Streamed replies (issue 18)").
#
# Starts the fake model server (testkit/examples/fake_llm_server.rs: DELTAS content deltas a
# reply, INTERVAL_MS apart, each carrying its send time), then twice a fresh stack
# (scripts/demo.sh, release build, AGENT_ENGINE=openai at the fake server, fresh data folder):
# once with OPENAI_STREAM=true, once with false. Each time it runs
#   target/release/loadgen --json -c CONNECTIONS --rate RATE --warmup 0s -d DURATION --drain DRAIN
# and prints, from loadgen's report, the model→customer delay of the deltas (p50/p95/p99/max),
# the messages stored in each JetStream stream per reply (NATS monitoring, 127.0.0.1:8222),
# the event frames received per turn, the replies; the most streams the fake model had open at once
# (the turns in flight); and the peak RSS (VmHWM) of the `smart-support up` process, which runs
# every service (ingress, worker, projector, API) in one process: an upper bound of a worker's.
#
# Usage: scripts/bench_deltas.sh   (env: CONNECTIONS RATE DURATION DRAIN DELTAS INTERVAL_MS)
# Build first: cargo build --release --locked -p cli -p shop -p loadgen
#              cargo build --release --locked -p testkit --example fake_llm_server
set -u
cd "$(git rev-parse --show-toplevel)" || exit 2
CONNECTIONS=${CONNECTIONS:-1200}
RATE=${RATE:-200}
DURATION=${DURATION:-30s}
DRAIN=${DRAIN:-20s}
DELTAS=${DELTAS:-20}
INTERVAL_MS=${INTERVAL_MS:-250}
for bin in target/release/loadgen target/release/examples/fake_llm_server target/release/smart-support; do
  [ -x "$bin" ] || { echo "missing $bin: build first (see the header of $0)"; exit 2; }
done
ulimit -n "$(ulimit -Hn)"; [ "$(ulimit -n)" -gt $((CONNECTIONS + 1000)) ] || { echo "ulimit -n $(ulimit -n) is too low for $CONNECTIONS connections"; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
out=$(mktemp -d /var/tmp/bench-deltas.XXXXXX)
llm=$(free_port)
target/release/examples/fake_llm_server --addr "127.0.0.1:$llm" --deltas "$DELTAS" \
  --delta-interval-ms "$INTERVAL_MS" 2>"$out/fake_llm.log" &
llm_pid=$!
demo_pid=
stop_stack() {
  [ -n "$demo_pid" ] || return 0
  kill -TERM -- -"$demo_pid" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- -"$demo_pid" 2>/dev/null
  demo_pid=
}
cleanup() { stop_stack; kill "$llm_pid" 2>/dev/null; }
trap cleanup EXIT
echo "results and logs in $out"
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, $(date -u +%FT%TZ)"
echo "loadgen -c $CONNECTIONS --rate $RATE --warmup 0s -d $DURATION --drain $DRAIN; fake model: $DELTAS deltas, ${INTERVAL_MS} ms apart"

run() { # $1: OPENAI_STREAM
  local mode=$1 data app nats pg shop sup peak
  data=$(mktemp -d /var/tmp/bench-deltas-data.XXXXXX); chmod 755 "$data"
  app=$(free_port); nats=$(free_port); pg=$(free_port); shop=$(free_port)
  AGENT_ENGINE=openai OPENAI_BASE_URL="http://127.0.0.1:$llm/v1" OPENAI_STREAM=$mode \
    WORKER_BATCH=4096 RATE_LIMIT_MESSAGES=1000000 RATE_LIMIT_WINDOW=1s \
    SMART_SUPPORT_DATA=$data NATS_PORT=$nats PG_PORT=$pg SHOP_BIND=127.0.0.1:$shop LISTEN_ADDR=127.0.0.1:$app \
    NATS_CONFIG=${NATS_CONFIG:-nats/nats-server-default-sync.conf} RUST_LOG=warn SEED_DEMO=0 \
    setsid bash scripts/demo.sh >"$out/demo-stream-$mode.log" 2>&1 </dev/null &
  demo_pid=$!
  for _ in $(seq 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$app/api/health" && break
    kill -0 "$demo_pid" 2>/dev/null || { tail -5 "$out/demo-stream-$mode.log"; exit 2; }
    sleep 0.5
  done
  sup=$(pgrep -g "$demo_pid" -f 'smart-support up' | head -1)
  target/release/loadgen --json --url "ws://127.0.0.1:$app/ws" -c "$CONNECTIONS" --rate "$RATE" \
    --warmup 0s -d "$DURATION" --drain "$DRAIN" >"$out/report-stream-$mode.json" 2>/dev/null \
    || { echo "loadgen failed (OPENAI_STREAM=$mode)"; exit 2; }
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$sup/status" 2>/dev/null)
  sleep 3 # the last turns' turn.completed
  curl -fs "http://127.0.0.1:8222/jsz?streams=1" >"$out/jsz-stream-$mode.json" || echo '{}' >"$out/jsz-stream-$mode.json"
  stop_stack
  rm -rf "$data"
  python3 - "$out/report-stream-$mode.json" "$mode" "${peak:-0}" "$out/jsz-stream-$mode.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); mode = sys.argv[2]; peak_kib = int(sys.argv[3])
streams = {s["name"]: s["state"]["messages"] for a in json.load(open(sys.argv[4])).get("account_details", [])
           for s in a.get("stream_detail", [])}
d = r.get("delta_latency_ms"); l = r.get("reply_latency_ms") or {}
print(f"OPENAI_STREAM={mode}: sent {r['sent']}, replied {r['replied']} ({r['reply_rate']:.1f}/s), "
      f"unanswered {r['unanswered']}, send→reply p50 {l.get('p50')} / p99 {l.get('p99')} ms")
print(f"  stored (JetStream, messages per stream): {streams}; per reply: "
      + ", ".join(f"{n} {m / max(r['replied'], 1):.3f}" for n, m in streams.items()))
print(f"  event frames received per turn {r['events_per_reply']:.3f} ({r['events']} events, "
      f"{r['replied_events']} agent.replied), {r['deltas']} deltas")
if d:
    print(f"  model→customer delta ms: p50 {d['p50']} / p95 {d['p95']} / p99 {d['p99']} / max {d['max']}")
print(f"  smart-support up peak RSS (VmHWM): {peak_kib / 1024:.0f} MiB")
PY
}
run true
run false
echo "fake model: $(tail -1 "$out/fake_llm.log")"
