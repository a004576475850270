"""The Channels tutorial's chat consumer, as shipped (docs: Tutorial part 3),
with frames shaped like PROTOCOL.md's ``message`` so one load generator
drives every server: group_add per socket, group_send per message, and the
frame decoded and re-encoded by every recipient.

``StoringChatConsumer`` is the same consumer with what a stock app adds to
keep its messages: one raw ``INSERT`` per message (autocommit, through
``database_sync_to_async``) before the ``group_send``. The write bench
(``python -m bench writes``) compares django-liverooms with it.
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import connection

TABLE = "bench_tutorial_message"


def create_table() -> None:
    """The stock app's message table (run once before the server starts)."""
    key = "BIGSERIAL PRIMARY KEY" if connection.vendor == "postgresql" else "INTEGER PRIMARY KEY"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, room VARCHAR(100) NOT NULL,"
            " body TEXT NOT NULL, client_id VARCHAR(64) NOT NULL, created TIMESTAMP NOT NULL)"
        )


def stored_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")
        return cursor.fetchone()[0]


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data):
        frame = json.loads(text_data)
        await self.channel_layer.group_send(
            self.room_group_name,
            {"type": "chat.message", "message": frame["body"], "client_id": frame["client_id"]},
        )

    async def chat_message(self, event):
        await self.send(
            text_data=json.dumps(
                {"type": "message", "body": event["message"], "client_id": event["client_id"]}
            )
        )


class StoringChatConsumer(ChatConsumer):
    async def receive(self, text_data):
        frame = json.loads(text_data)
        await self.store(frame["body"], frame["client_id"])
        await self.channel_layer.group_send(
            self.room_group_name,
            {"type": "chat.message", "message": frame["body"], "client_id": frame["client_id"]},
        )

    @database_sync_to_async
    def store(self, body, client_id):
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (room, body, client_id, created)"
                " VALUES (%s, %s, %s, CURRENT_TIMESTAMP)",
                [self.room_name, body, client_id],
            )
