# Does a JetStream atomic batch (ADR-50) make a turn's three events cheaper under
# `sync_interval: always`? Three single publishes per turn vs one atomic batch of three.
# Needs nats-py (pip install nats-py) and nats-server >= 2.12:
#   dir=$(mktemp -d); printf 'listen: 127.0.0.1:14333\njetstream { sync_interval: always }\n' > $dir/s.conf
#   nats-server -c $dir/s.conf -sd $dir/store & python3 scripts/experiments/atomic_batch.py; kill %1
import asyncio, json, time, uuid, nats
from nats.js.api import StreamConfig

N = 3000

async def main():
    nc = await nats.connect("nats://127.0.0.1:14333")
    js = nc.jetstream()
    cfg = {"name": "AB", "subjects": ["ab.>"], "storage": "file", "allow_atomic": True}
    await nc.request("$JS.API.STREAM.CREATE.AB", json.dumps(cfg).encode(), timeout=5)
    # 1. three single publishes per turn, pipelined per turn
    t = time.time()
    for i in range(N // 3):
        futs = [nc.request(f"ab.s.{i}", b"x" * 300, timeout=5) for _ in range(3)]
        await asyncio.gather(*futs)
    single = N / (time.time() - t)
    # 2. atomic batch of three
    t = time.time()
    ok = 0
    for i in range(N // 3):
        bid = uuid.uuid4().hex[:16]
        await nc.publish(f"ab.b.{i}", b"x" * 300, headers={"Nats-Batch-Id": bid, "Nats-Batch-Sequence": "1"})
        await nc.publish(f"ab.b.{i}", b"x" * 300, headers={"Nats-Batch-Id": bid, "Nats-Batch-Sequence": "2"})
        r = await nc.request(f"ab.b.{i}", b"x" * 300, headers={"Nats-Batch-Id": bid, "Nats-Batch-Sequence": "3", "Nats-Batch-Commit": "1"}, timeout=5)
        if b"error" not in r.data: ok += 1
        elif i == 0: print(r.data)
    batch = N / (time.time() - t)
    print(f"single: {single:.0f} msg/s  batch: {batch:.0f} msg/s  batches ok {ok}/{N//3}")
    await nc.close()

asyncio.run(main())
