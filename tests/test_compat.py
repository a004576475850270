"""The pins of _compat.py: each test fails when the behaviour a pin relies on
changes, so an upgrade of channels, channels-redis, uvicorn or daphne is
re-checked instead of silently turning a bound off."""

import asyncio
import functools
import inspect
from importlib.metadata import version

import pytest

from django_liverooms import _compat


@pytest.mark.parametrize("package", sorted(_compat.TESTED))
def test_the_installed_versions_are_ones_the_pins_were_checked_against(package):
    installed = version(package.replace("_", "-"))
    assert installed.startswith(_compat.TESTED[package]), (
        f"{package} {installed} is not among {_compat.TESTED[package]}: re-check the pins "
        "in django_liverooms/_compat.py, then add the version to TESTED"
    )


def source(obj):
    return inspect.getsource(obj)


def test_channels_call_still_makes_a_layer_channel_and_assigns_base_send():
    # consumers.StreamConsumer.__call__ is this minus the channel.
    from channels.consumer import AsyncConsumer

    call = source(AsyncConsumer.__call__)
    assert "new_channel()" in call and "self.base_send = send" in call
    assert "await_many_dispatch" in call


def test_channels_dispatch_still_closes_old_connections_in_the_database_thread():
    # consumers.StreamConsumer.dispatch skips that hop.
    from channels.consumer import AsyncConsumer

    assert "aclose_old_connections" in source(AsyncConsumer.dispatch)


def test_websocket_accept_send_and_close_all_write_through_base_send():
    # The outbox keeps a socket's frames in order only if they all pass through it.
    from channels.consumer import AsyncConsumer
    from channels.generic.websocket import AsyncWebsocketConsumer

    assert "self.base_send(message)" in source(AsyncConsumer.send)
    for method in ("accept", "send", "close"):
        assert "await super().send(" in source(getattr(AsyncWebsocketConsumer, method))


def test_uvicorns_websocket_send_waits_on_its_transport_and_is_a_protocol_method():
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    assert "self.writable.wait()" in source(WebSocketsSansIOProtocol.send)
    assert "self.transport" in source(WebSocketsSansIOProtocol.connection_made)

    class Transport(asyncio.Transport):
        aborted = False

        def get_write_buffer_size(self):
            return 7

        def abort(self):
            self.aborted = True

    class Protocol:
        transport = Transport()

        async def send(self, message):
            pass

    found = _compat.server_transport(Protocol().send)
    assert found.buffered() == 7
    found.abort()
    assert Protocol.transport.aborted


def test_daphnes_send_is_a_partial_over_the_protocol_with_a_twisted_transport():
    from daphne.server import Server
    from twisted.internet.abstract import FileDescriptor

    assert "send=partial(self.handle_reply, protocol)" in source(Server.create_application)
    assert {"dataBuffer", "offset", "_tempDataLen"} <= set(dir(FileDescriptor()))

    class TwistedTransport:
        dataBuffer, offset, _tempDataLen = b"x" * 10, 4, 3
        aborted = False

        def abortConnection(self):
            self.aborted = True

    class Protocol:
        transport = TwistedTransport()

    async def handle_reply(protocol, message):
        pass

    found = _compat.server_transport(functools.partial(handle_reply, Protocol()))
    assert found.buffered() == 10 - 4 + 3
    found.abort()
    assert Protocol.transport.aborted


def test_an_unknown_server_has_no_transport_to_read():
    async def send(message):
        pass

    assert _compat.server_transport(send) is None


async def test_private_channel_names_on_the_redis_layers():
    from channels.layers import InMemoryChannelLayer
    from channels_redis.core import RedisChannelLayer

    one = RedisChannelLayer(hosts=["redis://127.0.0.1:6379/0"])
    assert hasattr(one, "receive_buffer")  # what tells a core layer
    name = await _compat.private_channel_name(one)
    assert name.startswith("liverooms.fanout.") and "!" not in name  # its own BZPOPMIN
    sharded = RedisChannelLayer(hosts=["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1"])
    assert "!" in await _compat.private_channel_name(sharded)  # read from its own shard
    assert (_compat.redis_hosts(one), _compat.redis_hosts(sharded)) == (1, 2)
    assert _compat.redis_hosts(InMemoryChannelLayer()) == 0
