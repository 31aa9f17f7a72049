#!/usr/bin/env python3
"""The demo script check: runs the shell commands of README.md and docs/demo-script.md against a
running stack, so a walkthrough that no longer works fails `make test` (scripts/e2e.sh runs this
while its stack is up). Every other command in docs/ is checked, without running, by
`cli/tests/honesty/docs.rs`.

The commands run as written, in order, one bash session per document (`set -euo pipefail`), but
for what points at the stack of `make demo`, which is rewritten to the stack under test:

  http://127.0.0.1:8080, ws://…      -> the stack's address (E2E_ADDR)
  http://127.0.0.1:9464 (/metrics)   -> its metrics listener (E2E_METRICS_ADDR)
  .data/                             -> its data folder (SMART_SUPPORT_DATA)
  nats://127.0.0.1:4222, :54329      -> its NATS and PostgreSQL ports (NATS_PORT, PG_PORT)
  target/release/                    -> target/$SMART_SUPPORT_PROFILE/
  cargo run --release                -> cargo run (the debug build of the tests)
  curl                               -> curl --fail-with-body (an HTTP error fails)
  <thread_id>, <id>                  -> a conversation and a dead letter of the stack

and but for the commands that start or stop the stack itself (`make demo`, `docker compose`, the
`.env` copy for compose), which are skipped. A block with `$ ` prompts (a transcript) runs only its
prompted lines.

Usage: E2E_ADDR=127.0.0.1:PORT [E2E_METRICS_ADDR=127.0.0.1:PORT] SMART_SUPPORT_DATA=DIR NATS_PORT=N PG_PORT=N \
       python3 scripts/docs_check.py README.md docs/demo-script.md
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

SKIPPED = ("make demo", "docker compose", "cp .env.example .env")
BLOCK = re.compile(r"^( *)```(?:sh|bash)\n(.*?)^\1```", re.S | re.M)


def commands(markdown):
    """The command lines of the document's sh blocks, continuations joined, comments dropped."""
    for match in BLOCK.finditer(markdown):
        indent = len(match.group(1))
        lines = [line[indent:] for line in match.group(2).splitlines()]
        prompted = any(line.startswith("$ ") for line in lines)
        joined, current = [], ""
        for line in lines:
            if prompted:
                if not line.startswith("$ ") and not current:
                    continue
                line = line[2:] if line.startswith("$ ") else line
            current += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                joined.append(current)
                current = ""
        for line in joined:
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                yield line


def get_json(addr, path, token):
    request = urllib.request.Request(
        f"http://{addr}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main(paths):
    addr = os.environ["E2E_ADDR"]
    data = os.environ["SMART_SUPPORT_DATA"]
    profile = os.environ.get("SMART_SUPPORT_PROFILE", "debug")
    token = ""
    with open(os.path.join(data, "secrets.env")) as secrets:
        for line in secrets:
            if line.startswith("API_TOKEN="):
                token = line.strip().split("=", 1)[1]
    # The demo data is seeded once the stack answers: wait for it (a few seconds).
    deadline = time.monotonic() + 180
    while True:
        conversations = get_json(addr, "/api/conversations?limit=1", token)["items"]
        letters = get_json(addr, "/api/dead-letters?limit=1", token)["items"]
        if conversations and letters:
            break
        if time.monotonic() > deadline:
            sys.exit("docs check: no conversation or no dead letter to run the docs on in 180 s")
        time.sleep(1)
    rewrites = [
        ("127.0.0.1:8080", addr),
        ("127.0.0.1:9464", os.environ.get("E2E_METRICS_ADDR", "127.0.0.1:9464")),
        ("localhost:8080", addr),
        (".data/", data.rstrip("/") + "/"),
        ("nats://127.0.0.1:4222", f"nats://127.0.0.1:{os.environ['NATS_PORT']}"),
        ("@127.0.0.1:54329/", f"@127.0.0.1:{os.environ['PG_PORT']}/"),
        ("target/release/", f"target/{profile}/"),
        ("cargo run --release", "cargo run --quiet --locked"),
        # An HTTP error fails the check (the docs' `curl -s` would print it and exit 0).
        ("curl ", "curl --fail-with-body "),
        ("<thread_id>", conversations[0]["thread_id"]),
        ("<id>", str(letters[0]["id"])),
    ]
    # What the commands' defaults would reach on `make demo`'s ports.
    env = dict(
        os.environ,
        NATS_URL=f"nats://127.0.0.1:{os.environ['NATS_PORT']}",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{os.environ['PG_PORT']}/smart_support",
    )
    failed = 0
    for path in paths:
        with open(path) as document:
            lines = list(commands(document.read()))
        script = ["set -euo pipefail", 'out=$(mktemp)', 'trap \'rm -f "$out"\' EXIT']
        ran = 0
        for line in lines:
            if line.startswith(SKIPPED):
                continue
            for old, new in rewrites:
                line = line.replace(old, new)
            # Each command is echoed, and its output kept short.
            script.append(f"printf '%s\\n' {shell_quote('+ ' + line)} >&2")
            script.append(f'{{ {line}; }} > "$out"; head -c 600 "$out"; echo')
            ran += 1
        result = subprocess.run(["bash", "-c", "\n".join(script)], text=True, env=env)
        verdict = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"docs check: {path}: {ran} commands, {verdict}", file=sys.stderr)
        failed += result.returncode != 0
    sys.exit(1 if failed else 0)


def shell_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    main(sys.argv[1:])
