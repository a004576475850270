"""One load-generator process: subscribers, or the sender.

``python -m bench.loadgen subscribe URL N`` opens N sockets, prints READY once
all are open (and, with --welcome, welcomed), counts every ``message`` frame
and its latency until a line arrives on stdin, then prints one JSON line.
``python -m bench.loadgen send URL --rate R --duration D`` posts R messages a
second for D seconds on one socket and prints how many it sent.

A message body is ``bench <sender> <n> <monotonic send time>``;
time.monotonic() is one clock for every process of the machine (Linux).
"""

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect

MARK = "bench "


async def subscriber(url, welcome, latencies, seen, ready, gate):
    async with gate:  # connects in flight, so the server's listen backlog holds
        # Offers permessage-deflate, as browsers do; the server decides.
        ws = await connect(url, max_size=None, open_timeout=60)
        if welcome:
            await ws.recv()
    ready()
    async with ws:
        async for text in ws:
            now = time.monotonic()
            at = text.find(MARK)
            if at < 0:
                continue
            end = text.find('"', at)
            _, sender, n, sent = text[at:end].split(" ")
            key = (sender, n)
            if key in seen:
                continue  # a client ignores a frame it has seen (resume protocol)
            seen.add(key)
            latencies.append(now - float(sent))


async def subscribe(args):
    latencies: list = []
    opened = 0
    done = asyncio.Event()
    sets = [set() for _ in range(args.n)]

    def ready():
        nonlocal opened
        opened += 1
        if opened == args.n:
            done.set()

    gate = asyncio.Semaphore(50)
    tasks = [
        asyncio.ensure_future(subscriber(args.url, args.welcome, latencies, sets[i], ready, gate))
        for i in range(args.n)
    ]
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
    except asyncio.TimeoutError:
        pass
    print(json.dumps({"ready": opened}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    errors = sum(1 for t in tasks if t.done() and t.exception() is not None)
    for task in tasks:
        task.cancel()
    print(json.dumps({"latencies": latencies, "opened": opened, "errors": errors}), flush=True)


async def send(args):
    sent = 0
    async with connect(args.url, max_size=None, open_timeout=60) as ws:
        if args.welcome:
            await ws.recv()

        async def drain():
            async for _ in ws:
                pass

        reader = asyncio.ensure_future(drain())
        interval = 1.0 / args.rate
        start = time.monotonic()
        total = int(args.rate * args.duration)
        for n in range(total):
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = f"{MARK}{args.name} {n} {time.monotonic():.6f}"
            await ws.send(json.dumps({"type": "message", "body": body, "client_id": f"c{n}"}))
            sent += 1
        reader.cancel()
    print(json.dumps({"sent": sent}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subscribe")
    s.add_argument("url")
    s.add_argument("n", type=int)
    s.add_argument("--welcome", action="store_true")
    p = sub.add_parser("send")
    p.add_argument("url")
    p.add_argument("--rate", type=float, default=10)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--name", default="s0")
    p.add_argument("--welcome", action="store_true")
    args = parser.parse_args()
    asyncio.run(subscribe(args) if args.command == "subscribe" else send(args))


if __name__ == "__main__":
    main()
