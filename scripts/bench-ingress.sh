#!/usr/bin/env bash
# Ingress alone, acks only: nats-server (JetStream, the server's default sync) and the
# `ingress` binary, no workers or projections; then loadgen with the given flags.
#   scripts/bench-ingress.sh -c 200 --in-flight 16 --warmup 3s -d 20s --drain 1s
# The rate limit stays on (every publish still carries its arrivals header and checks
# the thread's last sequence) but is set too high to refuse anything.
# Prints loadgen's report and the ingress process's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_nats_server
export_throwaway_nats_users
cargo build --release --locked --quiet -p ingress -p loadgen -p cli
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
nats-server -c "${NATS_CONFIG:-nats/nats-server-default-sync.conf}" -a 127.0.0.1 -p 14222 -m 18222 \
  -sd "$dir/nats" -l "$dir/nats.log" &
sleep 1
# The stream, as the NATS admin; the ingress then runs as its own user.
NATS_URL=nats://127.0.0.1:14222 RUST_LOG=warn target/release/smart-support nats-setup
NATS_URL=nats://127.0.0.1:14222 NATS_USER=ingress NATS_PASSWORD=$INGRESS_NATS_PASSWORD LISTEN_ADDR=127.0.0.1:18080 THREAD_TOKEN_SECRET=bench \
  RATE_LIMIT_MESSAGES=1000000000 RATE_LIMIT_WINDOW=1s RUST_LOG=warn target/release/ingress &
ingress_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
target/release/loadgen --url ws://127.0.0.1:18080/ws "$@"
echo "ingress peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$ingress_pid/status), current: $(awk '/VmRSS/ {print $2, $3}' /proc/$ingress_pid/status)"
