#!/usr/bin/env bash
# Fuzzes a running REST API from its own OpenAPI document (`/api/openapi.json`) with
# schemathesis (PyPI, installed into a venv under ~/.cache when missing): every operation gets
# the documented examples, the boundary and invalid values of its parameters and bodies, random
# ones, and stateful sequences, with the operator token. Runs every check: fails on any 5xx
# answer (a 5xx on input is a bug of the API, not of the input), on an operator endpoint that
# answers without the token, on a status or body the document does not list, on a request
# valid by the document that is refused, and on one the document forbids that is accepted.
# `scripts/e2e.sh` runs it against the stack of the browser tests, after them. Alone:
#   bash scripts/schemathesis.sh http://127.0.0.1:8080 "$(sed -n 's/^API_TOKEN=//p' .data/secrets.env)"
# SCHEMATHESIS_MAX_EXAMPLES (default 25) sets the cases per operation and phase;
# SCHEMATHESIS_SEED replays a run (every run prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

base=${1:?usage: scripts/schemathesis.sh BASE_URL [API_TOKEN]}
token=${2:-}

ensure_schemathesis

# Every check, positive_data_acceptance (what the document allows is accepted) and
# negative_data_rejection (what it forbids is refused) included; the few exceptions, each with
# its reason, are in scripts/schemathesis.toml.
checks=all
# Inputs are meant to be refused: many generated ones being answered 400 is no health problem.
quiet_health_checks=filter_too_much,too_slow
args=(
  --config-file "$PWD/scripts/schemathesis.toml"
  run "$base/api/openapi.json"
  --url "$base"
  --checks "$checks"
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}"
  # One worker: with two, hypothesis sometimes failed inside itself ("AST constructor
  # recursion depth mismatch", CPython's ast module used from two threads).
  --workers 1
  --request-timeout 20
  --wait-for-schema 30
  --suppress-health-check "$quiet_health_checks"
  # The desk's live feed is an endless text/event-stream: nothing a request-and-answer fuzzer
  # can read to its end. Its auth and framing are tested in api/tests/api and web/e2e/desk.
  --exclude-path /api/desk/events
)
[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
[ -n "${SCHEMATHESIS_SEED:-}" ] && args+=(--seed "$SCHEMATHESIS_SEED")

say "schemathesis: fuzzing $base/api from its OpenAPI document"
# The report folder is the run's own, not the work tree's.
report=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
trap 'rm -rf "$report"' EXIT
(cd "$report" && NO_COLOR=1 "$SCHEMATHESIS_VENV/bin/schemathesis" "${args[@]}")
