#!/usr/bin/env bash
# CPU time per answered message, per process, below saturation: runs ../shared/tools/bench-e2e at a fixed rate
# from the checkout DIR (its release build) and reads each process's CPU time (/proc/<pid>/stat, user + system)
# over 18 s of the load. Steadier on a noisy machine than throughput at saturation (docs/benchmarks.md).
# Usage: scripts/bench_cpu.sh DIR NAME [RATE]   (RATE default 3000; run two builds alternately)
# Env: TOOL_CALLS=1 sends loadgen's default messages (order questions: a tool call each) instead of
# "Hello, can you help me?" (answered without a tool call).
set -u
dir=$1; name=$2; rate=${3:-3000}
content=(--content "Hello, can you help me?")
[ "${TOOL_CALLS:-0}" = 1 ] && content=()
# bench-e2e lives beside the checkout (../shared/tools), as for bench-ab.
bench=${BENCH_E2E:-$(cd "$(dirname "$0")/.." && pwd)/../shared/tools/bench-e2e}
out=${TMPDIR:-/tmp}/bench-cpu.$name
# Only the processes of this run's stack (the session bench-e2e starts scripts/demo.sh in, from
# DIR), so tests or builds running beside it are not counted.
snap() { python3 - "$dir" <<'PY'
import os, sys
want = os.path.realpath(sys.argv[1])
procs = []
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{p}/stat").read()
        cmd = open(f"/proc/{p}/cmdline").read().split("\0")
        cwd = os.readlink(f"/proc/{p}/cwd")
    except OSError:
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat[stat.rindex(")") + 2:].split()
    procs.append((int(p), int(f[1]), comm, int(f[3]), int(f[11]) + int(f[12]), cmd, cwd))
sids = {sid for _, _, _, sid, _, cmd, cwd in procs
        if cmd[:2] == ["bash", "scripts/demo.sh"] and cwd == want}
parent = {pid: ppid for pid, ppid, *_ in procs}
sid_of = {pid: sid for pid, _, _, sid, *_ in procs}
def in_stack(pid):
    # PostgreSQL runs under runuser, which starts a session of its own: follow the parents.
    while pid > 1:
        if sid_of.get(pid) in sids:
            return True
        pid = parent.get(pid, 0)
    return False
total = {}
for pid, _, comm, _, t, _, _ in procs:
    if comm in ("smart-support", "nats-server", "postgres") and in_stack(pid):
        total[comm] = total.get(comm, 0) + t
for comm in sorted(total):
    print(comm, total[comm])
PY
}
( cd "$dir" && "$bench" -c 100 --rate "$rate" --in-flight 4 --warmup 3s -d 20s --drain 5s "${content[@]}" > $out.bench 2>&1 ) &
bp=$!
until pgrep -f "target/release/loadgen" >/dev/null; do sleep 0.2; kill -0 $bp 2>/dev/null || { echo "$name FAILED: $(cat $out.bench)"; exit 1; }; done
sleep 4
snap > $out.1
sleep 18
snap > $out.2
wait $bp
got=$(tail -1 $out.bench | awk '{print $1}')
echo "$name $(tail -1 $out.bench)"
join $out.1 $out.2 | awk -v r=$got '{d=($3-$2)/100; printf "  %-14s %6.2f cpu-s  %6.1f us/msg\n", $1, d, d/(r*18)*1e6; t+=d} END {printf "  %-14s %6.2f cpu-s  %6.1f us/msg\n", "total", t, t/(r*18)*1e6}'
