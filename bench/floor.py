"""The floor: a bare ``websockets`` server that speaks just enough of PROTOCOL.md.

welcome on connect, and each chat ``message`` stamped with a seq and sent to
every socket of its room with ``websockets.broadcast()`` (encoded once, no
layer, no DB). A room is the request path: the fan-out bench puts every
socket on ``/``; the write bench (``python -m bench writes``) opens one path
per room, and the sender's own copy (with its ``client_id``) is its ack.
"""

import argparse
import asyncio
import json

import websockets
from websockets.asyncio.server import broadcast, serve

rooms: dict[str, set] = {}  # request path -> its sockets
seqs: dict[str, int] = {}  # request path -> the room's last seq


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
    room = websocket.request.path
    clients = rooms.setdefault(room, set())
    clients.add(websocket)
    try:
        await websocket.send(welcome_text(seqs.get(room, 0)))
        async for text in websocket:
            frame = json.loads(text)
            if frame.get("type") != "message":
                continue
            seqs[room] = seq = seqs.get(room, 0) + 1
            broadcast(clients, message_text(seq, frame))
    except websockets.ConnectionClosed:
        pass
    finally:
        clients.discard(websocket)


async def main(port: int) -> None:
    # backlog: a reconnect storm (python -m bench storm) connects thousands at once.
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
