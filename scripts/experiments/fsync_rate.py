#!/usr/bin/env python3
"""How many small appends, each followed by fsync, the disk under a folder takes per second.

With `sync_interval: always`, nats-server appends every stored message to its stream's
block file and fsyncs it before the next one (one `pwrite64` and one `fsync` per message,
counted with `perf stat -e syscalls:sys_enter_fsync` in docs/benchmarks.md, run B5). So one
file's serial rate bounds the messages a stream stores per second; several files side by
side show what several streams would get from the same disk.

    python3 scripts/experiments/fsync_rate.py [folder] [--files 1,2,4] [--count 3000]

Only the standard library. The folder defaults to the system's temporary folder; run it on
the disk that holds the JetStream store.
"""

import argparse
import os
import tempfile
import threading
import time

RECORD = b"x" * 400  # about one stored event with its headers


def append_and_sync(path: str, count: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            os.write(fd, RECORD)
            os.fsync(fd)
    finally:
        os.close(fd)
        os.remove(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=tempfile.gettempdir())
    parser.add_argument("--files", default="1,2,4", help="files written side by side, per run")
    parser.add_argument("--count", type=int, default=3000, help="appends per file")
    args = parser.parse_args()
    for files in (int(n) for n in args.files.split(",")):
        paths = [os.path.join(args.folder, f"fsync-rate-{os.getpid()}-{i}") for i in range(files)]
        threads = [threading.Thread(target=append_and_sync, args=(p, args.count)) for p in paths]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        total = files * args.count
        print(f"{files} file(s): {total / elapsed:,.0f} appends+fsync/s in all "
              f"({elapsed / args.count * 1e6:,.0f} µs each per file)")


if __name__ == "__main__":
    main()
