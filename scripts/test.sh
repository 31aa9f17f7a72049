#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every test: Rust (unit, integration,
# end-to-end against real nats-server and PostgreSQL), lints, and the web app's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_nats_server
ensure_postgres
ensure_cargo_nextest
ensure_web_built

say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy"
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
say "Rust tests (cargo nextest)"
cargo nextest run --locked --workspace --no-fail-fast
say "web tests (vitest)"
(cd web && npm run --silent typecheck && npm test --silent)
