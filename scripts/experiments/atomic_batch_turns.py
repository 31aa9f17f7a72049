# Could a turn's events be one JetStream atomic batch (ADR-50, nats-server >= 2.12) on the hot path?
# Stores turns of 5 events, each event with its own Nats-Msg-Id, as 5 pipelined publishes per turn or
# as one atomic batch per turn, C turns at a time, on one file-storage stream with the default sync
# (docs/reliability.md, "Found by the suite, not fixed yet"). Needs nats-py (pip install nats-py):
#   dir=$(mktemp -d); printf 'listen: 127.0.0.1:14333\njetstream {}\n' > $dir/s.conf
#   nats-server -c $dir/s.conf -sd $dir/store & sleep 1
#   C=1 N=1000 python3 scripts/experiments/atomic_batch_turns.py s b s b
#   C=200 N=3000 python3 scripts/experiments/atomic_batch_turns.py s b s b; kill %1
# Arguments: s (pipelined publishes) and b (atomic batches), run in that order on one stream.
import asyncio, json, os, sys, time, uuid

import nats

TURNS = int(os.environ.get("N", "3000"))
AT_ONCE = int(os.environ.get("C", "200"))
EVENTS = 5


async def main():
    nc = await nats.connect("nats://127.0.0.1:14333")
    config = {"name": "AB", "subjects": ["ab.>"], "storage": "file", "allow_atomic": True}
    await nc.request("$JS.API.STREAM.CREATE.AB", json.dumps(config).encode(), timeout=5)
    slots = asyncio.Semaphore(AT_ONCE)

    async def pipelined(i):
        async with slots:
            acks = [
                nc.request(f"ab.s.{i % 1000}", b"x" * 400, headers={"Nats-Msg-Id": uuid.uuid4().hex}, timeout=10)
                for _ in range(EVENTS)
            ]
            await asyncio.gather(*acks)

    async def batch(i):
        async with slots:
            batch_id = uuid.uuid4().hex
            for n in range(1, EVENTS):
                headers = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(n), "Nats-Msg-Id": uuid.uuid4().hex}
                await nc.publish(f"ab.b.{i % 1000}", b"x" * 400, headers=headers)
            headers = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(EVENTS), "Nats-Batch-Commit": "1",
                       "Nats-Msg-Id": uuid.uuid4().hex}
            answer = await nc.request(f"ab.b.{i % 1000}", b"x" * 400, headers=headers, timeout=10)
            if b"error" in answer.data:
                print(answer.data)

    for mode in sys.argv[1:]:
        turn = pipelined if mode == "s" else batch
        started = time.time()
        await asyncio.gather(*[turn(i) for i in range(TURNS)])
        name = "pipelined publishes" if mode == "s" else "atomic batches"
        print(f"{name}: {TURNS * EVENTS / (time.time() - started):.0f} events/s")
    await nc.close()


asyncio.run(main())
