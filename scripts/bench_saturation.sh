#!/usr/bin/env bash
# Where the CPU goes at a load: runs ../shared/tools/bench-e2e from the checkout DIR (its release
# build) with the loadgen arguments given, and over SECONDS (default 12) of the load reads
#   - each process's CPU time from /proc (this stack's smart-support, nats-server, PostgreSQL,
#     shop-api, and loadgen), as cores and as µs per answered message;
#   - nats-server's per-connection counters (/connz on its monitoring port 127.0.0.1:8222):
#     messages in and out of each client connection per answered message;
#   - PostgreSQL's statements (pg_stat_statements, loaded through POSTGRES_OPTIONS): time and
#     rows of each over the same seconds.
# Usage: scripts/bench_saturation.sh DIR [LOADGEN ARGS...]
#   e.g. scripts/bench_saturation.sh . -c 100 --in-flight 4 --warmup 3s -d 20s --drain 15s
# Run it with nothing else on the machine: it reads every process's CPU.
set -u
dir=$(cd "$1" && pwd); shift
window=${SECONDS_MEASURED:-12}
bench=${BENCH_E2E:-$(cd "$(dirname "$0")/.." && pwd)/../shared/tools/bench-e2e}
out=$(mktemp -d /var/tmp/bench-saturation.XXXXXX)
trap 'rm -rf "$out"' EXIT

snap() { python3 - <<'PY'
import os
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{p}/stat").read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat[stat.rindex(")") + 2:].split()
    if comm in ("smart-support", "nats-server", "postgres", "shop-api", "loadgen"):
        print(p, comm, int(f[11]) + int(f[12]))
PY
}
. "$(dirname "$0")/lib.sh"
pg_bin=$(pg_bin_dir)
psql_() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d smart_support -tAq "$@"; }

( cd "$dir" && POSTGRES_OPTIONS="-c shared_preload_libraries=pg_stat_statements" "$bench" "$@" > "$out/bench" 2>&1 ) &
bench_pid=$!
until pgrep -f "target/release/loadgen" >/dev/null; do
  sleep 0.2
  kill -0 $bench_pid 2>/dev/null || { echo "bench-e2e failed: $(cat "$out/bench")"; exit 1; }
done
pg_port=$(pgrep -a -f 'bin/postgres -D' | grep -o ' -p [0-9]*' | awk 'NR==1 {print $2}')
psql_ -c "create extension if not exists pg_stat_statements" 2>/dev/null
sleep 6
snap > "$out/cpu1"; curl -fs 127.0.0.1:8222/connz > "$out/connz1"
psql_ -c "select pg_stat_statements_reset()" >/dev/null 2>&1
start=$(date +%s.%N)
sleep "$window"
snap > "$out/cpu2"; curl -fs 127.0.0.1:8222/connz > "$out/connz2"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
psql_ -F ' | ' -c "select calls, rows, round(total_exec_time) as ms, left(regexp_replace(query, '\s+', ' ', 'g'), 100)
                   from pg_stat_statements where calls > 1 order by total_exec_time desc limit 10" \
  > "$out/statements" 2>/dev/null
wait $bench_pid
rate=$(tail -1 "$out/bench" | awk '{print $1}')
echo "answered/s p99_ms: $(tail -1 "$out/bench")"
echo "CPU over ${window}s (cores, µs per answered message):"
python3 - "$out" "$elapsed" "$rate" <<'PY'
import json, sys
out, elapsed, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def load(name):
    cpu = {}
    for line in open(f"{out}/{name}"):
        pid, comm, ticks = line.split()
        cpu[(pid, comm)] = int(ticks)
    return cpu
a, b = load("cpu1"), load("cpu2")
per = {}
for key, ticks in b.items():
    per[key[1]] = per.get(key[1], 0) + (ticks - a.get(key, 0)) / 100
total = 0
for comm, secs in sorted(per.items(), key=lambda kv: -kv[1]):
    cores = secs / elapsed
    total += cores
    print(f"  {comm:14s} {cores:5.2f} cores  {cores / rate * 1e6:6.1f} us/msg")
print(f"  {'total':14s} {total:5.2f} cores  {total / rate * 1e6:6.1f} us/msg")
try:
    c1 = {c["cid"]: c for c in json.load(open(f"{out}/connz1"))["connections"]}
    c2 = json.load(open(f"{out}/connz2"))["connections"]
except (OSError, ValueError, KeyError):
    sys.exit(0)
print("NATS client connections, per answered message (in = from the client, out = to it):")
for c in c2:
    o = c1.get(c["cid"])
    if not o:
        continue
    d = lambda k: (c[k] - o[k]) / elapsed / rate
    if d("in_msgs") + d("out_msgs") > 0.01:
        print(f"  cid {c['cid']:3d} {c.get('name', ''):14s} in {d('in_msgs'):5.2f} msgs {d('in_bytes'):7.0f} B"
              f"   out {d('out_msgs'):5.2f} msgs {d('out_bytes'):7.0f} B")
PY
if [ -s "$out/statements" ]; then
  echo "PostgreSQL statements over the same ${window}s (calls | rows | ms | statement):"
  sed 's/^/  /' "$out/statements"
fi
