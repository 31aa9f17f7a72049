#!/usr/bin/env bash
# What one replay_step row costs PostgreSQL, and which part of it is each index's: COPYs the replay steps of
# N tool-call messages (4 rows each, shaped like version 2's message.received, turn.started, tool.succeeded and
# agent.replied) into read_model.replay_step in batches of 400 rows, the way the projector writes them, once with
# every index, once without the search index, once with the primary key alone; ROUNDS times, alternately.
# Prints the wall time per row of each variant and its median. The schema is the real one (smart-support
# migrate); the PostgreSQL is a throwaway one on a free port, started and removed by this script.
#
#   scripts/bench_replay_copy.sh [N=50000] [ROUNDS=3]
#
# Run it with nothing else on the machine. The times include psql reading the rows, the same in every variant,
# so the differences between variants are the indexes' own cost.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50000}
ROUNDS=${2:-3}

. scripts/lib.sh
ensure_postgres
pg_bin=$(pg_bin_dir)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work"
stop() {
  run_pg "$pg_bin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT
run_pg "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
run_pg "$pg_bin/pg_ctl" -D "$work/data" -o "-p $port -c listen_addresses=127.0.0.1 -k $work" -l "$work/log" -w start >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
cargo run --quiet --locked -p cli --bin smart-support -- migrate >/dev/null
q() { PGOPTIONS="-c client_min_messages=warning" "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }

python3 - "$N" "$work" <<'EOF'
import json, random, sys, uuid
n, work = int(sys.argv[1]), sys.argv[2]
rows, seq = [], 0
def row(thread, turn, kind, fields):
    global seq
    seq += 1
    text = json.dumps(fields).replace("\\", "\\\\")
    rows.append(f"{seq}\t{uuid.uuid4()}\t{thread}\t{turn}\t{kind}\t2026-12-07T10:00:00.123456Z\t{text}\n")
for _ in range(n):
    thread, turn = uuid.uuid4().hex, uuid.uuid4()
    order = f"ORD-{random.randint(0, 9999):06d}"
    row(thread, turn, "message.received", {"content": f"Where is my order {order}?"})
    row(thread, turn, "turn.started", {"agent": "orders", "reason": "matched 'order'", "message_seq": seq})
    row(thread, turn, "tool.succeeded", {"call_id": str(uuid.uuid4()), "tool": "get_order",
        "params": {"order_id": order}, "permission": "read", "attempts": 1, "duration_ms": 3,
        "result": {"order_id": order, "status": "shipped", "total_cents": 4599}})
    row(thread, turn, "agent.replied", {"text": f"Order {order} was charged $45.99; it is shipped.",
        "outcome": "replied", "latency_ms": 12, "message_seq": seq - 3})
for i in range(0, len(rows), 400):
    with open(f"{work}/batch_{i // 400:06d}.tsv", "w") as f:
        f.writelines(rows[i:i + 400])
EOF
chmod -R a+r "$work"/batch_*.tsv
for f in "$work"/batch_*.tsv; do echo "\\copy read_model.replay_step (seq, event_id, thread_id, turn_id, kind, occurred_at, fields) from '$f'"; done > "$work/copy.sql"

# Each variant creates the indexes it keeps (the primary key always stays) from their definitions in the schema.
q -c "select indexname || ' ' || indexdef || ';' from pg_indexes where schemaname = 'read_model'
      and tablename = 'replay_step' and indexname not like '%pkey' order by 1" > "$work/indexes"
echo "replay_step's indexes besides its primary key: $(cut -d' ' -f1 "$work/indexes" | tr '\n' ' ')"
while read -r name _; do q -c "drop index read_model.$name"; done < "$work/indexes"
declare -A keeps=([every_index]='.' [without_search]='^replay_step_thread_idx ' [primary_key_only]='^$')
declare -A times
for round in $(seq "$ROUNDS"); do
  for variant in every_index without_search primary_key_only; do
    q -c "truncate read_model.replay_step"
    { grep -E "${keeps[$variant]}" "$work/indexes" || true; } | cut -d' ' -f2- | q -f -
    q -c "vacuum read_model.replay_step" -c checkpoint
    start=$(date +%s%N)
    q -f "$work/copy.sql"
    us=$(( ($(date +%s%N) - start) / 1000 ))
    per_row=$(python3 -c "print(f'{$us / ($N * 4):.1f}')")
    times[$variant]="${times[$variant]:-} $per_row"
    echo "round $round, $variant: $per_row µs a row"
    while read -r name _; do q -c "drop index if exists read_model.$name"; done < "$work/indexes"
  done
done
for variant in every_index without_search primary_key_only; do
  echo "$variant: median $(printf '%s\n' ${times[$variant]} | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') µs a row (${times[$variant]# })"
done
