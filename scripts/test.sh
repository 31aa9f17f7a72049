#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every test: Rust (unit, integration,
# end-to-end against real nats-server and PostgreSQL), lints, the web app's tests, the
# browser tests (headless Chromium against the whole stack that `make demo` runs) and the
# REST API fuzzing (schemathesis, on that stack).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_nats_server
ensure_postgres
ensure_cargo_nextest
ensure_web_built
ensure_chromium

say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy"
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
# The reliability suite (chaos/) runs the real binaries, so they are built first.
say "cargo build --workspace --bins"
cargo build --locked --workspace --bins
say "Rust tests (cargo nextest)"
cargo nextest run --locked --workspace --no-fail-fast
say "docs/scaling.md's table is what scripts/scaling.py computes"
python3 scripts/scaling.py --check docs/scaling.md
say "web REST types (web/src/api/schema.ts) against the OpenAPI document"
bash scripts/web_api_types.sh --check
say "web tests (vitest)"
(cd web && npm run --silent typecheck && npm test --silent)
say "browser tests and REST fuzzing (scripts/e2e.sh: headless Chromium, then schemathesis, against the stack of scripts/demo.sh)"
bash scripts/e2e.sh
