"""The ASGI floor: the floor's broadcast as a bare ASGI app, served by uvicorn.

What any ASGI application pays on uvicorn before it does anything of its
own: welcome on connect, and each chat ``message`` stamped with a seq and
handed to every socket's ``send`` (encoded once, no Channels, no layer, no
database). ``python -m bench --servers asgi-floor`` runs it with the same
uvicorn flags as django-liverooms.
"""

import json

from bench.floor import message_text, welcome_text

sends: set = set()
seq = 0


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": welcome_text(seq)})
    sends.add(send)
    try:
        while (event := await receive())["type"] == "websocket.receive":
            await broadcast(json.loads(event.get("text") or "{}"))
    finally:
        sends.discard(send)


async def broadcast(frame: dict) -> None:
    global seq
    if frame.get("type") != "message":
        return
    seq += 1
    message = {"type": "websocket.send", "text": message_text(seq, frame)}
    for other in tuple(sends):
        try:
            await other(message)
        except Exception:  # closed under us
            sends.discard(other)
