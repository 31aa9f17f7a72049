#!/usr/bin/env bash
# `make demo`: installs what is missing, starts NATS (JetStream) and PostgreSQL of its own
# under .data/ (unless NATS_URL / DATABASE_URL point at running ones), applies the
# migrations, runs every service on http://127.0.0.1:8080, and stays in the foreground.
# Ctrl-C or SIGTERM stops everything it started; a second run reuses the data.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DATA_DIR=${SMART_SUPPORT_DATA:-$PWD/.data}
NATS_PORT=${NATS_PORT:-4222}
PG_PORT=${PG_PORT:-54329}
LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8080}
SHOP_BIND=${SHOP_BIND:-127.0.0.1:8090}
# SMART_SUPPORT_PROFILE=debug runs debug binaries instead, built like `cargo nextest run
# --workspace` builds them (the browser tests of `make test` use it): the same targets give the
# same features, so after nextest nothing is compiled again (measured: 7 s, against 60 s for
# `-p cli -p shop` alone, whose features differ from the test build's).
PROFILE=${SMART_SUPPORT_PROFILE:-release}
case "$PROFILE" in
  release) build_flags=(--release -p cli -p shop) ;;
  debug) build_flags=(--workspace --tests --bins) ;;
  *) die "SMART_SUPPORT_PROFILE must be release or debug, not '$PROFILE'" ;;
esac
BIN=target/$PROFILE
# NATS_CONFIG picks the nats-server config (default nats/nats-server.conf: sync always).
export LISTEN_ADDR SHOP_BIND
# The agents' tools call the demo shop API, which runs on loopback: allow it past the
# SSRF guard (nothing else on a private address is reachable).
export TOOLS_BASE_URL=${TOOLS_BASE_URL:-http://$SHOP_BIND}
export TOOLS_ALLOW_HOSTS=${TOOLS_ALLOW_HOSTS:-$SHOP_BIND}

mkdir -p "$DATA_DIR"
pids=()
app_pid=""
pg_data=""

stop_all() {
  trap - EXIT INT TERM
  say "stopping"
  # The services first (they drain while NATS and PostgreSQL are still up), then
  # PostgreSQL (pg_ctl: its runuser wrapper does not pass signals on), then NATS.
  if [ -n "$app_pid" ]; then kill -TERM "$app_pid" 2>/dev/null || true; wait "$app_pid" 2>/dev/null || true; fi
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    run_pg "$(pg_bin_dir)/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # what, seconds, command... (gives up early if the last process started died)
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    if [ ${#pids[@]} -gt 0 ] && ! kill -0 "${pids[-1]}" 2>/dev/null; then
      die "$what exited during start-up; see the output above and $DATA_DIR/*.log"
    fi
    sleep 0.1
  done
  die "$what did not come up within ${seconds}s"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ -n "${NATS_URL:-}" ] || ensure_nats_server
[ -n "${DATABASE_URL:-}" ] || ensure_postgres
ensure_web_built

say "building the services (cargo build, $PROFILE profile)"
cargo build "${build_flags[@]}" --locked --quiet

# Secrets are made once per data folder, so conversations and the operator token
# survive a restart.
if [ ! -f "$DATA_DIR/secrets.env" ]; then
  umask 077
  {
    echo "THREAD_TOKEN_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
    echo "API_TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')"
  } > "$DATA_DIR/secrets.env"
  umask 022
fi
# The demo's two operators (docs/operators.md); added to a data folder made before them.
if ! grep -q '^DEMO_ADMIN_PASSWORD=' "$DATA_DIR/secrets.env"; then
  {
    echo "DEMO_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')"
    echo "DEMO_AGENT_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')"
  } >> "$DATA_DIR/secrets.env"
fi
# The NATS users' passwords (nats/users.conf: one user per service, and the admin that sets the
# streams up and runs the operators' commands); added to a data folder made before them.
if ! grep -q '^ADMIN_NATS_PASSWORD=' "$DATA_DIR/secrets.env"; then
  for user in ADMIN INGRESS WORKER PROJECTOR API; do
    echo "${user}_NATS_PASSWORD=$(new_nats_password)"
  done >> "$DATA_DIR/secrets.env"
fi
# Exported: nats-server reads every password, `smart-support up` connects each service as its
# own user, and the commands below (seed-demo, …) as the admin.
set -a; . "$DATA_DIR/secrets.env"; set +a
export NATS_USER=${NATS_USER:-admin} NATS_PASSWORD=${NATS_PASSWORD:-$ADMIN_NATS_PASSWORD}

if [ -z "${NATS_URL:-}" ]; then
  port_free "$NATS_PORT" || die "port $NATS_PORT is taken: stop what uses it, set NATS_PORT, or point NATS_URL at a running server"
  mkdir -p "$DATA_DIR/nats"
  say "starting nats-server (JetStream, store in $DATA_DIR/nats)"
  nats-server -c "${NATS_CONFIG:-nats/nats-server.conf}" -a 127.0.0.1 -p "$NATS_PORT" -sd "$DATA_DIR/nats" \
    -l "$DATA_DIR/nats.log" &
  pids+=($!)
  export NATS_URL="nats://127.0.0.1:$NATS_PORT"
  wait_for "nats-server" 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT"
fi

if [ -z "${DATABASE_URL:-}" ]; then
  # PostgreSQL refuses to run as root: it runs as the postgres system user, on a data
  # folder that user owns. If that user cannot reach the checkout, use /var/tmp.
  pg_root="$DATA_DIR"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$DATA_DIR"; then
    pg_root="/var/tmp/smart-support-$(printf '%s' "$PWD" | md5sum | cut -c1-8)"
  fi
  pg_data="$pg_root/postgres"
  mkdir -p "$pg_root/pg-socket"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pg_root/pg-socket" && { [ -d "$pg_data" ] || { mkdir -p "$pg_data"; chown postgres:postgres "$pg_data"; }; }
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    say "initialising PostgreSQL in $pg_data"
    run_pg "$(pg_bin_dir)/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  port_free "$PG_PORT" || die "port $PG_PORT is taken: set PG_PORT, or point DATABASE_URL at a running server"
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  # POSTGRES_OPTIONS: extra server settings, e.g. "-c shared_preload_libraries=pg_stat_statements"
  # (scripts/bench_saturation.sh). Word-split on purpose: one "-c name=value" pair per word.
  # shellcheck disable=SC2086
  run_pg "$(pg_bin_dir)/postgres" -D "$pg_data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
    -k "$pg_root/pg-socket" ${POSTGRES_OPTIONS:-} >"$DATA_DIR/postgres.log" 2>&1 &
  pids+=($!)
  wait_for "PostgreSQL" 30 "$(pg_bin_dir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  psql_q() { "$(pg_bin_dir)/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAq "$@"; }
  [ "$(psql_q -c "select 1 from pg_database where datname = 'smart_support'")" = 1 ] \
    || psql_q -c "create database smart_support" >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/smart_support"
fi

say "applying migrations"
"$BIN/smart-support" migrate
say "the demo's operators (an admin and an agent), on a first start"
OPERATOR_PASSWORD="$DEMO_ADMIN_PASSWORD" "$BIN/smart-support" operators add --if-missing \
  --email admin@demo.example --name "Dana (admin)" --role admin
OPERATOR_PASSWORD="$DEMO_AGENT_PASSWORD" "$BIN/smart-support" operators add --if-missing \
  --email agent@demo.example --name "Alex" --role agent

say "starting the demo shop API on http://$SHOP_BIND"
port_free "${SHOP_BIND##*:}" || die "port ${SHOP_BIND##*:} is taken: stop what uses it or set SHOP_BIND"
"$BIN/shop-api" &
pids+=($!)
wait_for "shop-api" 15 bash -c "exec 3<>/dev/tcp/${SHOP_BIND%:*}/${SHOP_BIND##*:}"

say "starting ingress, workers, projections and the web UI"
"$BIN/smart-support" up --web-dir web/dist &
app_pid=$!
pids+=($!)
wait_for "smart-support" 30 bash -c "exec 3<>/dev/tcp/${LISTEN_ADDR%:*}/${LISTEN_ADDR##*:}"

# Demo data on a first start (an empty stream): a few hundred conversations over the last
# 30 days, their messages stored on the stream and answered by the running workers with the
# shop API's tools, and a few dead letters. SEED_DEMO=0 skips it.
if [ "${SEED_DEMO:-1}" != 0 ]; then
  say "demo data: smart-support seed-demo --if-empty (through the running stack)"
  "$BIN/smart-support" seed-demo --if-empty \
    || say "the demo seeding failed (see above); the stack runs without demo data"
fi

cat <<MSG

  smart-support is running:  http://$LISTEN_ADDR
  WebSocket:                 ws://$LISTEN_ADDR/ws
  REST API:                  http://$LISTEN_ADDR/api/health
  Metrics (loopback):        http://${METRICS_ADDR:-127.0.0.1:9464}/metrics
  Demo shop API (tools):     http://$SHOP_BIND/orders/ORD-1001
  Sign in (admin):           admin@demo.example / $DEMO_ADMIN_PASSWORD
  Sign in (agent):           agent@demo.example / $DEMO_AGENT_PASSWORD
  API token (scripts):       ${API_TOKEN%%,*}   (Authorization: Bearer …)
  Data:                      $DATA_DIR

  Ctrl-C stops everything.

MSG
# Stay in the foreground until Ctrl-C, SIGTERM, or one of the processes exits.
wait -n "${pids[@]}" || true
die "a service stopped unexpectedly; see the output above and $DATA_DIR/*.log"
