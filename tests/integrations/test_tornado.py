"""tornado with wscodec installed: its own client and server over 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading

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

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("tornado", "tornado.websocket", "tornado.web")


class TornadoServer:
    """A tornado echo server on its own event loop thread."""

    def __enter__(self):
        started = threading.Event()

        def run():
            asyncio.run(self._main(started))

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)
        return self

    async def _main(self, started):
        import tornado.web
        import tornado.websocket

        class Echo(tornado.websocket.WebSocketHandler):
            def on_message(self, message):
                self.write_message(message, binary=isinstance(message, bytes))

        app = tornado.web.Application([("/", Echo)], websocket_max_message_size=2**21)
        server = app.listen(0, "127.0.0.1")
        self.port = next(iter(server._sockets.values())).getsockname()[1]
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        started.set()
        await self.stop.wait()
        server.stop()

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


def test_echo_text_binary_fragmented():
    from tornado.websocket import websocket_connect

    async def client(port):
        conn = await websocket_connect(f"ws://127.0.0.1:{port}/", max_message_size=2**21)
        for size in SIZES:
            for text in (True, False):
                message = payload(size, text)
                await conn.write_message(message, binary=not text)
                assert await conn.read_message() == message
        conn.close()

    with installed("tornado") as ad, TornadoServer() as server:
        asyncio.run(client(server.port))
        # Both ends write every message in one encode (the client masking as it
        # encodes); the server unmasks every non-empty client frame.
        assert ad.calls["WebSocketProtocol13._write_frame"] >= 4 * len(SIZES)
        assert ad.calls["_websocket_mask"] >= 2 * (len(SIZES) - 1)


def server_close(wire):
    with TornadoServer() as server:
        return raw_client_close_code(server.port, wire)


@pytest.mark.parametrize("wire", [INVALID_UTF8, BAD_OPCODE], ids=["utf8", "opcode"])
def test_server_errors_unchanged(wire):
    without = server_close(wire)
    with installed("tornado") as ad:
        with_adapter = server_close(wire)
        assert ad.calls["_websocket_mask"] >= (1 if wire is INVALID_UTF8 else 0)
    assert with_adapter == without


def test_fragmented_from_raw_client():
    from tests.peers import MASK
    from wscodec import Opcode, encode_frame

    wire = (
        encode_frame(Opcode.TEXT, "frä".encode()[:3], fin=False, mask=MASK)
        + encode_frame(Opcode.CONTINUATION, "frä".encode()[3:] + b"g", mask=MASK)
        + encode_frame(Opcode.CLOSE, b"\x03\xe8", mask=MASK)
    )
    with installed("tornado") as ad:
        assert server_close(wire)[0] == 1000
        assert ad.calls["_websocket_mask"] >= 2
