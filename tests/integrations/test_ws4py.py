"""ws4py with wscodec installed: its own threaded client and wsgiref server over 127.0.0.1."""

from __future__ import annotations

import queue
import threading
import time

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
    require("ws4py", "ws4py.server.wsgirefserver", "ws4py.client.threadedclient")


class Ws4pyServer:
    """ws4py's echo server on wsgiref, serving in a thread."""

    def __enter__(self):
        from wsgiref.simple_server import make_server

        from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
        from ws4py.server.wsgiutils import WebSocketWSGIApplication
        from ws4py.websocket import EchoWebSocket

        self.server = make_server(
            "127.0.0.1",
            0,
            server_class=WSGIServer,
            handler_class=WebSocketWSGIRequestHandler,
            app=WebSocketWSGIApplication(handler_cls=EchoWebSocket),
        )
        self.server.initialize_websockets_manager()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_port
        return self

    def __exit__(self, *exc):
        # ws4py's manager thread takes a finished connection off its epoll
        # after the close; stopping the manager first races with that (a
        # ValueError on the closed epoll, raised in ws4py's thread). So wait,
        # briefly, until it has let go of every connection.
        manager = self.server.manager
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with manager.lock:
                if not manager.websockets:
                    break
            time.sleep(0.01)
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def test_echo_text_binary_fragmented():
    from ws4py.client.threadedclient import WebSocketClient

    received: queue.Queue = queue.Queue()

    class Client(WebSocketClient):
        def received_message(self, message):
            received.put(message.data if message.is_binary else message.data.decode())

        def closed(self, code, reason=None):
            received.put(("closed", code))

    with installed("ws4py") as ad, Ws4pyServer() as server:
        client = Client(f"ws://127.0.0.1:{server.port}/")
        client.connect()
        try:
            for size in SIZES:
                for text in (True, False):
                    message = payload(size, text)
                    client.send(message, binary=not text)
                    assert received.get(timeout=20) == message
            client.send((part for part in [b"frag", "mënted".encode()]), binary=False)
            assert received.get(timeout=20) == "fragmënted"
        finally:
            client.close()
        assert received.get(timeout=10) == ("closed", 1000)
        # Client frames are masked, and unmasked by the server, through Frame.mask/unmask.
        assert ad.calls["Frame.mask"] + ad.calls["Frame.unmask"] >= 2 * (len(SIZES) - 1)
        assert ad.calls["Utf8Validator"] >= len(SIZES)


def server_close(wire):
    with Ws4pyServer() as server:
        return raw_client_close_code(server.port, wire)


@pytest.mark.parametrize("wire", [INVALID_UTF8, BAD_OPCODE], ids=["utf8", "opcode"])
def test_server_errors_unchanged(wire):
    without = server_close(wire)
    with installed("ws4py") as ad:
        with_adapter = server_close(wire)
        if wire is INVALID_UTF8:
            assert ad.calls["Utf8Validator"] >= 1
    assert with_adapter == without
    assert with_adapter[0] == (1007 if wire is INVALID_UTF8 else 1002)


def test_mask_uses_the_first_four_bytes_of_a_longer_key():
    """ws4py's parser can leave payload bytes after the key; ws4py XORs with the first four."""
    require("ws4py", "ws4py.framing")
    from ws4py.framing import Frame

    def unmask(key):
        frame = Frame(masking_key=key)
        return bytes(frame.unmask(b"\x01\x02\x03\x04\x05\x06"))

    long_key = b"\x10\x20\x30\x40\xff\xee"
    without = unmask(long_key)
    with installed("ws4py"):
        assert unmask(long_key) == without == unmask(long_key[:4])
        with pytest.raises(IndexError):  # ws4py's own error for a short key
            unmask(b"\x10\x20")
