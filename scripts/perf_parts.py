#!/usr/bin/env python3
"""Splits a `perf` profile of the `smart-support` process into its parts (docs/benchmarks.md).

Record it at a load (for example while scripts/bench_saturation.sh runs), then read it:

    perf record -p "$(pgrep -x smart-support)" -F 299 --call-graph dwarf,16384 -o perf.data -- sleep 6
    perf script -i perf.data | scripts/perf_parts.py

Prints, for each part, the share of samples whose stack passes through it (a sample can be in
several parts: "allocator" inside "projector"), and the functions most samples end in.
"""

import collections
import re
import sys

# Part -> pattern of a stack frame's symbol.
PARTS = [
    ("workers (a turn, from its message to its ack)", r"workers::consumer::step_with"),
    ("  storing a turn's events", r"JetStreamSink"),
    ("the tools' HTTP client (reqwest, its hyper connection tasks)", r"reqwest::|hyper::client::|hyper_util::client::"),
    ("ingress", r"^ingress::"),
    ("  WebSocket sessions", r"ingress::ws::session::run"),
    ("  live tail", r"ingress::live::"),
    ("  storing user messages", r"ingress::publish"),
    ("projector", r"^projections::projector"),
    ("  decoding events", r"projections::projector::decode"),
    ("NATS client connection task", r"async_nats::connection::|ConnectionHandler::process"),
    ("allocator (mimalloc)", r"^_?mi_"),
    ("NATS header maps", r"async_nats::header::(HeaderValue|HeaderMap|HeaderName)"),
    ("serde_json", r"serde_json::"),
    ("tracing spans", r"^tracing_subscriber::|^sharded_slab::|^tracing::span::"),
]


def stacks(lines):
    frames = []
    for line in lines:
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line[0] not in " \t":
            continue  # the sample's header line
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            symbol = parts[1].rsplit(" (", 1)[0]
            frames.append(re.sub(r"\+0x[0-9a-f]+$", "", symbol))
    if frames:
        yield frames


def main():
    samples = list(stacks(sys.stdin))
    if not samples:
        sys.exit("no samples on stdin: pipe `perf script` into this")
    total = len(samples)
    print(f"{total} samples")
    for name, pattern in PARTS:
        regex = re.compile(pattern)
        hits = sum(1 for frames in samples if any(regex.search(f) for f in frames))
        print(f"  {100 * hits / total:5.1f} %  {name}")
    leaves = collections.Counter(frames[0] for frames in samples)
    print("functions most samples end in:")
    for symbol, count in leaves.most_common(10):
        print(f"  {100 * count / total:5.1f} %  {symbol[:110]}")


if __name__ == "__main__":
    main()
