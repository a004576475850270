"""One load-generator process: subscribers, the sender, room members, or a storm.

``python -m bench.loadgen subscribe URL N`` opens N sockets, prints READY once
all are open (and, with --welcome, welcomed), counts every ``message`` frame
and its latency until a line arrives on stdin, then prints one JSON line.
``python -m bench.loadgen send URL --rate R --duration D`` posts R messages a
second for D seconds on one socket and prints how many it sent.
``python -m bench.loadgen members TEMPLATE --rooms a,b --members K`` opens K
sockets in each room (TEMPLATE.format(room=slug) is its URL), prints READY,
waits for a line on stdin, then every socket posts --rate messages a second
for --duration seconds and reads its room: its own copy back is the ack,
the others' are deliveries. It prints {"sent": n} when done sending, and its
report after the next line on stdin (see ``members``).
``python -m bench.loadgen storm URL N`` prints ARMED, waits for a line on
stdin, then opens N sockets at once (--in-flight connects at a time) and
reports when each one was ready (open; with --welcome, welcomed; with
--history, its history frame read too).

A message body is ``bench <sender> <n> <monotonic send time>``;
time.monotonic() is one clock for every process of the machine (Linux).
"""

import argparse
import asyncio
import json
import random
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


class Member:
    """One socket of the write bench: posts to its room and reads it."""

    def __init__(self, name: str):
        self.name = name
        self.acked: set = set()  # n of its own messages that came back
        self.received: set = set()  # (sender, n) of the others' messages
        self.sent = 0
        self.ws = None
        self.failed = False


async def member_open(member, url, welcome, gate):
    async with gate:
        member.ws = await connect(url, max_size=None, open_timeout=60)
        if welcome:
            await member.ws.recv()


async def member_read(member, stats):
    try:
        async for text in member.ws:
            now = time.monotonic()
            if '"error"' in text and (frame := json.loads(text)).get("type") == "error":
                # A refusal (rate_limited, forbidden ...): counted by code.
                code = frame.get("code", "?")
                stats["refused"][code] = stats["refused"].get(code, 0) + 1
                continue
            if MARK not in text:
                continue
            frame = json.loads(text)
            if frame.get("type") != "message":
                continue  # a history frame, presence ...
            _, sender, n, sent = frame["body"].split(" ")
            latency = now - float(sent)
            if sender == member.name:
                if frame.get("client_id") == f"{sender}-{n}" and n not in member.acked:
                    member.acked.add(n)
                    stats["acks"].append(latency)
                    if now <= stats["send_end"]:
                        stats["acked_in_run"] += 1
            elif (sender, n) not in member.received:
                member.received.add((sender, n))
                stats["deliveries"].append(latency)
    except Exception:  # closed by the server: counted below
        member.failed = True


async def member_send(member, rate, duration):
    interval = 1.0 / rate
    start = time.monotonic() + random.uniform(0, interval)  # spread the members' phases
    for n in range(int(rate * duration)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        body = f"{MARK}{member.name} {n} {time.monotonic():.6f}"
        frame = {"type": "message", "body": body, "client_id": f"{member.name}-{n}"}
        try:
            await member.ws.send(json.dumps(frame))
        except Exception:
            member.failed = True
            return
        member.sent += 1


def acked_not_delivered(room_members) -> int:
    """Messages whose sender got its ack, times members of the room that never got them."""
    missing = 0
    for sender in room_members:
        for n in sender.acked:
            key = (sender.name, n)
            missing += sum(
                1 for other in room_members if other is not sender and key not in other.received
            )
    return missing


async def members(args):
    rooms = {
        slug: [Member(f"{args.name}.{slug}.{k}") for k in range(args.members)]
        for slug in args.rooms.split(",")
    }
    everyone = [m for room in rooms.values() for m in room]
    gate = asyncio.Semaphore(50)
    opening = [
        asyncio.ensure_future(member_open(m, args.template.format(room=slug), args.welcome, gate))
        for slug, room in rooms.items()
        for m in room
    ]
    await asyncio.wait(opening, timeout=120)
    opened = [m for m in everyone if m.ws is not None]
    print(json.dumps({"ready": len(opened)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    stats = {"acks": [], "deliveries": [], "acked_in_run": 0, "refused": {}}
    stats["send_end"] = time.monotonic() + args.duration + 1.0 / args.rate
    readers = [asyncio.ensure_future(member_read(m, stats)) for m in opened]
    await asyncio.gather(*(member_send(m, args.rate, args.duration) for m in opened))
    sent = sum(m.sent for m in everyone)
    print(json.dumps({"sent": sent}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the runner's drain is over
    for task in readers:
        task.cancel()
    report = {
        "opened": len(opened),
        "sent": sent,
        "acks": stats["acks"],
        "acked_in_run": stats["acked_in_run"],
        "deliveries": stats["deliveries"],
        "expected_deliveries": sum(
            m.sent * (len(room) - 1) for room in rooms.values() for m in room
        ),
        "acked_not_delivered": sum(acked_not_delivered(room) for room in rooms.values()),
        "errors": sum(1 for m in everyone if m.failed or m.ws is None),
        "refused": stats["refused"],
    }
    print(json.dumps(report), flush=True)


async def storm_reader(url, welcome, history, gate, go):
    async with gate:
        ws = await connect(url, max_size=None, open_timeout=120)
        items = 0
        if welcome:
            await ws.recv()
        if history:
            while (frame := json.loads(await ws.recv()))["type"] != "history":
                pass  # a presence frame may come first
            items = len(frame["items"])
    return ws, time.monotonic() - go, items


async def storm(args):
    print(json.dumps({"armed": True}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    go = time.monotonic()
    gate = asyncio.Semaphore(args.in_flight)
    tasks = [
        asyncio.ensure_future(storm_reader(args.url, args.welcome, args.history, gate, go))
        for _ in range(args.n)
    ]
    await asyncio.wait(tasks, timeout=120)
    done = [t.result() for t in tasks if t.done() and t.exception() is None]
    report = {
        "go": go,
        "ready": len(done),
        "times": sorted(t for _, t, _ in done),
        "history_items": sum(items for _, _, items in done),
        "errors": sum(1 for t in tasks if t.done() and t.exception() is not None),
    }
    print(json.dumps(report), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for t in tasks:
        t.cancel()
    for ws, _, _ in done:
        ws.transport.abort()


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
    m = sub.add_parser("members")
    m.add_argument("template", help="a room's URL, with {room} for its slug")
    m.add_argument("--rooms", required=True, help="slugs, comma-separated")
    m.add_argument("--members", type=int, default=5)
    m.add_argument("--rate", type=float, default=1)
    m.add_argument("--duration", type=float, default=10)
    m.add_argument("--name", default="g0")
    m.add_argument("--welcome", action="store_true")
    t = sub.add_parser("storm")
    t.add_argument("url")
    t.add_argument("n", type=int)
    t.add_argument("--in-flight", type=int, default=200)
    t.add_argument("--welcome", action="store_true")
    t.add_argument("--history", action="store_true")
    args = parser.parse_args()
    commands = {"subscribe": subscribe, "send": send, "members": members, "storm": storm}
    asyncio.run(commands[args.command](args))


if __name__ == "__main__":
    main()
