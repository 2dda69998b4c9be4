"""autobahn with wscodec installed: its own asyncio client and server over 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from tests.peers import (
    BAD_OPCODE,
    INVALID_UTF8,
    SIZES,
    installed,
    payload,
    raw_client_close_code,
    require,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def _peer():
    require("autobahn", "autobahn.asyncio.websocket", "autobahn.websocket.protocol")


async def start_server(**options):
    from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

    class Echo(WebSocketServerProtocol):
        def onMessage(self, payload, isBinary):
            self.sendMessage(payload, isBinary)

    factory = WebSocketServerFactory("ws://127.0.0.1")
    factory.protocol = Echo
    # failByDrop=False: answer a protocol violation with a close frame (rather
    # than dropping TCP), so the close code autobahn chose is on the wire.
    factory.setProtocolOptions(**options)
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_echo_text_binary_fragmented():
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    async def main():
        server, port = await start_server()
        loop = asyncio.get_running_loop()
        opened, closed = loop.create_future(), loop.create_future()
        received: asyncio.Queue = asyncio.Queue()

        class Client(WebSocketClientProtocol):
            def onOpen(self):
                opened.set_result(self)

            def onMessage(self, payload, isBinary):
                received.put_nowait(payload if isBinary else payload.decode())

            def onClose(self, wasClean, code, reason):
                if not closed.done():
                    closed.set_result(code)

        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}")
        factory.protocol = Client
        await loop.create_connection(factory, "127.0.0.1", port)
        client = await asyncio.wait_for(opened, 10)
        for size in SIZES:
            for text in (True, False):
                message = payload(size, text)
                client.sendMessage(message.encode() if text else message, isBinary=not text)
                assert await asyncio.wait_for(received.get(), 20) == message
        client.sendMessage("fragmënted".encode() * 100, isBinary=False, fragmentSize=7)
        assert await asyncio.wait_for(received.get(), 20) == "fragmënted" * 100
        client.sendClose(1000)
        assert await asyncio.wait_for(closed, 10) == 1000
        server.close()
        await server.wait_closed()

    with installed("autobahn") as ad:
        asyncio.run(main())
        assert ad.calls["create_xor_masker"] >= 2 * (len(SIZES) - 1)
        assert ad.calls["Utf8Validator"] >= len(SIZES)


def server_close(wire):
    async def main():
        server, port = await start_server(failByDrop=False)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, raw_client_close_code, port, wire
            )
        finally:
            server.close()

    return asyncio.run(main())


@pytest.mark.parametrize("wire", [INVALID_UTF8, BAD_OPCODE], ids=["utf8", "opcode"])
def test_server_errors_unchanged(wire):
    without = server_close(wire)
    with installed("autobahn") as ad:
        with_adapter = server_close(wire)
        if wire is INVALID_UTF8:
            assert ad.calls["Utf8Validator"] >= 1
    assert with_adapter == without
    assert with_adapter[0] == (1007 if wire is INVALID_UTF8 else 1002)
