"""The floor: a bare ``websockets`` server that speaks just enough of PROTOCOL.md.

welcome on connect, and each chat ``message`` stamped with a seq and sent to
every socket with ``websockets.broadcast()`` (encoded once, no layer, no DB).
"""

import argparse
import asyncio
import json

import websockets
from websockets.asyncio.server import broadcast, serve

clients: set = set()
seq = 0


def welcome_text(seq: int) -> str:
    return json.dumps(
        {
            "type": "welcome",
            "stream": "chat",
            "slug": "bench",
            "seq": seq,
            "user": {"id": None, "name": "guest"},
            "can_post": True,
        }
    )


def message_text(seq: int, frame: dict) -> str:
    """The ``message`` frame for a client's chat ``message``, stamped with ``seq``."""
    return json.dumps(
        {
            "type": "message",
            "seq": seq,
            "id": seq,
            "slug": "bench",
            "body": frame["body"],
            "author": {"id": None, "name": "guest"},
            "created": "",
            "client_id": frame.get("client_id"),
        }
    )


async def handler(websocket):
    global seq
    clients.add(websocket)
    try:
        await websocket.send(welcome_text(seq))
        async for text in websocket:
            frame = json.loads(text)
            if frame.get("type") != "message":
                continue
            seq += 1
            broadcast(clients, message_text(seq, frame))
    except websockets.ConnectionClosed:
        pass
    finally:
        clients.discard(websocket)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
