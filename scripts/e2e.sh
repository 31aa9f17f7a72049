#!/usr/bin/env bash
# The browser tests (web/e2e/, `npm run e2e`) against the real stack: `scripts/demo.sh` (nats-server
# with JetStream, PostgreSQL, the services, the demo shop API) on free ports in a temp data folder,
# driven in headless Debian Chromium by playwright-core; then the REST API is fuzzed from its own
# OpenAPI document on the same stack (scripts/schemathesis.sh). The stack is stopped and the folder
# removed whether the tests pass or not. `make test` runs this after the web unit tests; alone:
#   bash scripts/e2e.sh            (SMART_SUPPORT_PROFILE=release to test release binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_chromium
ensure_schemathesis

# Debug binaries share their build with `cargo nextest`; a release build would add minutes.
export SMART_SUPPORT_PROFILE=${SMART_SUPPORT_PROFILE:-debug}
# The stack is the test's own: never a server named in the caller's environment.
unset NATS_URL DATABASE_URL TOOLS_BASE_URL TOOLS_ALLOW_HOSTS

# Free ports picked by the kernel, all held at once so they differ, so a `make demo` on the
# default ports (or another test run) does not get in the way.
read -r NATS_PORT PG_PORT WEB_PORT SHOP_PORT METRICS_PORT < <(python3 -c '
import socket
held = [socket.socket() for _ in range(5)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))
')
export NATS_PORT PG_PORT
export LISTEN_ADDR=127.0.0.1:$WEB_PORT SHOP_BIND=127.0.0.1:$SHOP_PORT
# /metrics has a listener of its own (METRICS_ADDR); the docs check reaches it there.
export METRICS_ADDR=127.0.0.1:$METRICS_PORT

data=$(mktemp -d "${TMPDIR:-/tmp}/smart-support-e2e.XXXXXX")
# demo.sh runs PostgreSQL as the postgres user, in this folder when that user can enter it.
chmod 711 "$data"
export SMART_SUPPORT_DATA=$data
# The demo's config less its fixed monitoring port (8222), which a running `make demo` holds.
sed '/^http:/d' nats/nats-server.conf > "$data/nats-server.conf"
cp nats/users.conf "$data/users.conf"  # included by it, beside it
export NATS_CONFIG=$data/nats-server.conf

demo_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    # demo.sh stops the services, PostgreSQL and NATS itself on TERM.
    kill -TERM "$demo_pid" 2>/dev/null || true
    for _ in $(seq 600); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$demo_pid" 2>/dev/null; then
      say "scripts/demo.sh did not stop within 60s; killing it"
      kill -KILL "$demo_pid" 2>/dev/null || true
    fi
    wait "$demo_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    say "browser tests or REST fuzzing failed; the stack's output (last lines of $data/demo.log):"
    tail -n 40 "$data/demo.log" >&2 || true
  fi
  rm -rf "$data"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the stack for the browser tests (scripts/demo.sh, $SMART_SUPPORT_PROFILE build, http://$LISTEN_ADDR)"
bash scripts/demo.sh > "$data/demo.log" 2>&1 &
demo_pid=$!

health_ok() {
  python3 - "http://$LISTEN_ADDR/api/health" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.exit(0 if json.load(response).get("status") == "ok" else 1)
PY
}
# demo.sh builds first (a no-op after `cargo nextest`, minutes on a fresh checkout).
deadline=$((SECONDS + 900))
until health_ok 2>/dev/null; do
  kill -0 "$demo_pid" 2>/dev/null || die "scripts/demo.sh exited before /api/health answered"
  [ "$SECONDS" -lt "$deadline" ] || die "/api/health did not answer within 900s"
  sleep 0.5
done
say "stack up after ${SECONDS}s"

say "docs check: the commands of README.md and docs/demo-script.md against this stack"
E2E_ADDR=$LISTEN_ADDR E2E_METRICS_ADDR=$METRICS_ADDR python3 scripts/docs_check.py README.md docs/demo-script.md

api_token=$(sed -n 's/^API_TOKEN=//p' "$data/secrets.env")
# The demo agent's password, for the desk's test (web/e2e/desk.e2e.ts) to sign in with.
agent_password=$(sed -n 's/^DEMO_AGENT_PASSWORD=//p' "$data/secrets.env")
# The NATS admin's password, for the tests that put messages on the stream directly.
nats_password=$(sed -n 's/^ADMIN_NATS_PASSWORD=//p' "$data/secrets.env")
say "browser tests (cd web && npm run e2e)"
(
  cd web
  E2E_BASE_URL="http://$LISTEN_ADDR" E2E_API_TOKEN="$api_token" E2E_NATS_URL="nats://127.0.0.1:$NATS_PORT" \
    E2E_NATS_USER=admin E2E_NATS_PASSWORD="$nats_password" E2E_AGENT_PASSWORD="$agent_password" npm run --silent e2e
)

# After the browser tests, whose data it would otherwise change under them.
say "REST API fuzzing (scripts/schemathesis.sh against the same stack)"
bash scripts/schemathesis.sh "http://$LISTEN_ADDR" "$api_token"
