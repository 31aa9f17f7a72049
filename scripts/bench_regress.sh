#!/usr/bin/env bash
# `smart-support regress` over many recorded turns (docs/benchmarks.md#regress): a nats-server of its own on a
# tmpfs, TURNS demo-like turns recorded by the workers' own turn (cli/examples/seed_turns.rs), then regress timed
# with the demo's config (nothing changes) and with a changed reply template (many turns change).
# Usage: scripts/bench_regress.sh [TURNS]   (default 100000; release builds)
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
turns=${1:-100000}
ensure_nats_server
export_throwaway_nats_users
cargo build --release --locked -p cli --bin smart-support --example seed_turns
dir=$(mktemp -d /dev/shm/regress-bench.XXXXXX)
port=$((20000 + RANDOM % 20000))
nats-server -c nats/nats-server.conf -a 127.0.0.1 -p "$port" -m "$((port + 1))" -sd "$dir/nats" -l "$dir/nats.log" &
nats=$!
trap 'kill $nats; wait $nats 2>/dev/null; rm -rf "$dir"' EXIT
export NATS_URL=nats://127.0.0.1:$port RUST_LOG=warn
until (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.2; done
target/release/examples/seed_turns --turns "$turns"
# The demo's config beside its OpenAPI document, with the order status reply changed.
sed 's/Order {result.order_id} is {result.status} (total/Your order {result.order_id} is {result.status} (total/' \
  fixtures/agents.yaml > fixtures/.bench-regress.yaml
trap 'kill $nats; wait $nats 2>/dev/null; rm -rf "$dir" fixtures/.bench-regress.yaml' EXIT
for config in fixtures/agents.yaml fixtures/.bench-regress.yaml; do
  for format in text json; do
    say "regress --config $config --format $format"
    /usr/bin/time -f "%e s, %M KiB peak RSS" target/release/smart-support regress --config "$config" \
      --format "$format" --quiet > "$dir/report" || true
    if [ "$format" = text ]; then sed -n 1,7p "$dir/report"; fi
  done
done
