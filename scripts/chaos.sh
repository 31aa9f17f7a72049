#!/usr/bin/env bash
# `make chaos`: the long runs of the reliability suite (docs/reliability.md). Builds the release
# binaries, then `chaos` runs every fault (or those of CHAOS_FAULTS, comma-separated) on a fresh
# system each, under load for CHAOS_WARM_UP before and CHAOS_AFTER after the fault, and prints a
# Markdown table of the results; exit 1 if any promise broke. Extra arguments go to `chaos`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_nats_server
ensure_postgres

say "cargo build --release --workspace --bins"
cargo build --release --locked --workspace --bins
args=(--warm-up "${CHAOS_WARM_UP:-30s}" --after "${CHAOS_AFTER:-30s}"
      --conversations "${CHAOS_CONVERSATIONS:-50}")
if [ -n "${CHAOS_FAULTS:-}" ]; then
  args+=(--fault "$CHAOS_FAULTS")
fi
say "target/release/chaos ${args[*]} $*"
target/release/chaos "${args[@]}" "$@"
