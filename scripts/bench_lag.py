#!/usr/bin/env python3
"""Projection lag during a load run, in events and in seconds.

Samples `GET /api/health` (`projection.checkpoint`, `projection.stream_last_seq`) every
`--every` seconds for `--duration` seconds, then prints the lag in events (stream head minus
checkpoint) and in seconds: for each sample, how long until the checkpoint reached the
stream head of that moment (to within one sampling interval). Run it beside the load
generator, e.g.

    python3 scripts/bench_lag.py --duration 45 & target/release/loadgen -c 1000 --rate 2500 -d 30s; wait

Only the standard library; exit code 1 if the endpoint never answered.
"""

import argparse
import json
import sys
import time
import urllib.request


def sample(url: str) -> tuple[int, int] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            projection = json.load(answer)["projection"]
            return projection["checkpoint"], projection["stream_last_seq"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/api/health")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds to sample")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between samples")
    args = parser.parse_args()

    samples: list[tuple[float, int, int]] = []
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        at = time.monotonic()
        answer = sample(args.url)
        if answer is not None:
            samples.append((at, *answer))
        time.sleep(max(0.0, args.every - (time.monotonic() - at)))
    if not samples:
        print(f"no answer from {args.url}", file=sys.stderr)
        return 1

    # Only the samples taken while events were arriving (the head moved since the last one).
    busy = [i for i in range(1, len(samples)) if samples[i][2] > samples[i - 1][2]]
    events = [samples[i][2] - samples[i][1] for i in busy]
    seconds = []
    for i in busy:
        at, _, head = samples[i]
        caught_up = next((t for t, checkpoint, _ in samples[i:] if checkpoint >= head), None)
        if caught_up is not None:
            seconds.append(caught_up - at)
    if not events:
        print("the stream did not grow while sampling: no load?", file=sys.stderr)
        return 1
    print(
        f"lag events   samples {len(events)}  median {percentile(events, 0.5):.0f}  "
        f"p95 {percentile(events, 0.95):.0f}  max {max(events)}"
    )
    if seconds:
        print(
            f"lag seconds  median {percentile(seconds, 0.5):.2f}  p95 {percentile(seconds, 0.95):.2f}  "
            f"max {max(seconds):.2f}  (to within {args.every} s; {len(busy) - len(seconds)} never caught up)"
        )
    else:
        print("lag seconds  the projection never caught up while sampling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
