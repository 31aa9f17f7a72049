#!/usr/bin/env python3
"""Sizes a deployment for a target message rate from the measured per-message costs
(docs/scaling.md). The inputs are the figures of docs/benchmarks.md, each named with the run it
comes from; when a figure there changes, change it here and run

    python3 scripts/scaling.py > /tmp/table.md          # the table
    python3 scripts/scaling.py --write docs/scaling.md  # put it into the document
    python3 scripts/scaling.py --check docs/scaling.md  # make test: the document matches

Only the standard library; every figure is computed, none is typed into the document.
"""

import math
import sys

# ---- Measured (docs/benchmarks.md), 2-core reference machine, release builds ----
# CPU time per answered message (µs) by process, `scripts/bench_cpu.sh` below saturation, event
# catalogue v2 (`b76be6e`, 2026-12-07, "Event catalogue v2 (issue 19)"): the means of two runs.
MEASURED = {
    # A message answered without a tool call (3 stored events), at 3,000 msg/s.
    "no_tool": {"events": 3, "services": 185, "nats": 188, "postgres": 85},
    # The demo's default messages (a tool call each, 3.75 stored events), `TOOL_CALLS=1` at 2,500 msg/s.
    "tool": {"events": 3.75, "services": 256, "nats": 193, "postgres": 133},
    # One stream on one server stores this many messages a second while the ingress runs beside
    # it on the same 2 cores (target 4, run C6, default sync): a floor for one stream's leader.
    "stream_msgs_per_s": 31_143,
    # One stream under `sync_interval: always` (run D2: one serial fsync per stored message).
    "stream_msgs_per_s_sync_always": 5_551,
}

# ---- Assumptions (docs/scaling.md says why) ----
ASSUMED = {
    "target_msgs_per_s": 100_000,
    "cpu_headroom": 0.7,  # plan cores to be 70 % busy at the target
    "stream_headroom": 0.5,  # plan a stream's leader to be half as busy as its measured ceiling
    "replicas": 3,  # R3 streams on a NATS cluster
    "replica_cost": 1.0,  # a follower's CPU per stored message, as a share of the leader's (upper bound)
    "postgres_cores_per_primary": 16,
}


def sizing(workload, fsync_bound=False):
    m, a = MEASURED, ASSUMED
    cost = m[workload]
    events_per_msg = cost["events"]
    target = a["target_msgs_per_s"]
    # CPU a message, as measured for this workload (services: ingress, workers, projector, API).
    services = target * cost["services"] / 1e6 / a["cpu_headroom"]
    nats_leader = target * cost["nats"] / 1e6
    nats = nats_leader * (1 + (a["replicas"] - 1) * a["replica_cost"]) / a["cpu_headroom"]
    postgres = target * cost["postgres"] / 1e6 / a["cpu_headroom"]
    ceiling = m["stream_msgs_per_s_sync_always"] if fsync_bound else m["stream_msgs_per_s"]
    events = target * events_per_msg
    partitions = 2 ** math.ceil(math.log2(events / (ceiling * a["stream_headroom"])))
    primaries = math.ceil(postgres / a["postgres_cores_per_primary"])
    return {
        "events/s stored": f"{events:,.0f}",
        "stream partitions (by thread)": f"{partitions}",
        "events/s per partition": f"{events / partitions:,.0f}",
        "cores: ingress, workers, projectors, API": f"{math.ceil(services)}",
        f"cores: NATS (R{a['replicas']}, whole cluster)": f"{math.ceil(nats)}",
        "cores: PostgreSQL primaries": f"{math.ceil(postgres)}",
        f"PostgreSQL primaries of {a['postgres_cores_per_primary']} cores (read models sharded by thread)": f"{primaries}",
    }


def table():
    columns = {
        f"no tool call ({MEASURED['no_tool']['events']} events)": sizing("no_tool"),
        f"a tool call each ({MEASURED['tool']['events']} events)": sizing("tool"),
        "a tool call each, `sync_interval: always`": sizing("tool", fsync_bound=True),
    }
    rows = next(iter(columns.values())).keys()
    out = [
        f"At {ASSUMED['target_msgs_per_s']:,} messages a second:",
        "",
        "| | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for row in rows:
        out.append(f"| {row} | " + " | ".join(c[row] for c in columns.values()) + " |")
    return "\n".join(out) + "\n"


BEGIN = "<!-- scaling.py: begin -->\n"
END = "<!-- scaling.py: end -->\n"


def replaced(document):
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    return document[:start] + table() + document[end:]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--check", "--write"):
        path = sys.argv[2]
        with open(path, encoding="utf-8") as f:
            document = f.read()
        wanted = replaced(document)
        if sys.argv[1] == "--write":
            with open(path, "w", encoding="utf-8") as f:
                f.write(wanted)
        elif wanted != document:
            sys.exit(f"{path}: its table is not what scripts/scaling.py computes; run --write")
    elif len(sys.argv) == 1:
        sys.stdout.write(table())
    else:
        sys.exit(__doc__)
