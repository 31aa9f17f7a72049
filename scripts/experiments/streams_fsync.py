# Under `sync_interval: always`, does nats-server store more messages per second over several
# streams than over one? It fsyncs each stored message before the next one of the same
# stream (docs/benchmarks.md, run B5); different streams have different files.
# Needs nats-py (pip install nats-py) and a server with sync always:
#   dir=$(mktemp -d); printf 'listen: 127.0.0.1:14334\njetstream { sync_interval: always }\n' > $dir/s.conf
#   nats-server -c $dir/s.conf -sd $dir/store & python3 scripts/experiments/streams_fsync.py; kill %1
import asyncio, json, time, nats

PER_RUN = 12000     # messages per run, spread over the streams
IN_FLIGHT = 256     # unacknowledged publishes per stream


async def publish_all(js, subject: str, count: int) -> None:
    pending = set()
    for i in range(count):
        pending.add(asyncio.ensure_future(js.publish(subject, b"x" * 300)))
        if len(pending) >= IN_FLIGHT:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                future.result()
    await asyncio.gather(*pending)


async def main():
    nc = await nats.connect("nats://127.0.0.1:14334")
    js = nc.jetstream()
    for streams in (1, 2, 4):
        names = [f"S{streams}_{i}" for i in range(streams)]
        for name in names:
            cfg = {"name": name, "subjects": [f"{name.lower()}.>"], "storage": "file"}
            await nc.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(cfg).encode(), timeout=5)
        start = time.time()
        await asyncio.gather(*(publish_all(js, f"{n.lower()}.m", PER_RUN // streams) for n in names))
        rate = PER_RUN / (time.time() - start)
        print(f"{streams} stream(s): {rate:,.0f} stored msg/s in all")
    await nc.close()

asyncio.run(main())
