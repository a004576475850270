"""The Channels tutorial's chat consumer, as shipped (docs: Tutorial part 3),
with frames shaped like PROTOCOL.md's ``message`` so one load generator
drives every server: group_add per socket, group_send per message, and the
frame decoded and re-encoded by every recipient."""

import json

from channels.generic.websocket import AsyncWebsocketConsumer


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
