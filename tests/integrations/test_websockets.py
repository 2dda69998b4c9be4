"""websockets with wscodec installed: its own client and server over 127.0.0.1."""

from __future__ import annotations

import threading

import pytest

from tests.peers import (
    BAD_OPCODE,
    INVALID_UTF8,
    SERVER_BAD_OPCODE,
    SERVER_INVALID_UTF8,
    SIZES,
    RawServer,
    installed,
    payload,
    raw_client_close_code,
    require,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("websockets", "websockets.sync.server", "websockets.sync.client")


def echo(ws):
    for message in ws:
        ws.send(message)


def run_server():
    from websockets.sync.server import serve

    server = serve(echo, "127.0.0.1", 0, max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_binary_fragmented(compression):
    from websockets.sync.client import connect

    with installed("websockets") as ad:
        server, thread = run_server()
        try:
            port = server.socket.getsockname()[1]
            with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=compression) as ws:
                for size in SIZES:
                    for text in (True, False):
                        message = payload(size, text)
                        ws.send(message)
                        assert ws.recv(timeout=10) == message
                ws.send(["frag", "mented ", "tëxt"])
                assert ws.recv(timeout=10) == "fragmented tëxt"
                ws.send([b"\x00" * 70000, b"\x01" * 3])
                assert ws.recv(timeout=10) == b"\x00" * 70000 + b"\x01" * 3
        finally:
            server.shutdown()
            thread.join(10)
        assert ad.calls["Frame.parse"] >= 2 * (2 * len(SIZES) + 2)
        assert ad.calls["Frame.serialize"] >= 2 * (2 * len(SIZES) + 2)


def server_close(wire):
    server, thread = run_server()
    try:
        return raw_client_close_code(server.socket.getsockname()[1], wire)
    finally:
        server.shutdown()
        thread.join(10)


@pytest.mark.parametrize("wire", [INVALID_UTF8, BAD_OPCODE], ids=["utf8", "opcode"])
def test_server_errors_unchanged(wire):
    without = server_close(wire)
    with installed("websockets") as ad:
        with_adapter = server_close(wire)
        assert ad.calls["Frame.parse"] >= 1
    assert with_adapter == without
    assert with_adapter[0] == (1007 if wire is INVALID_UTF8 else 1002)


def client_error(wire):
    from websockets.exceptions import ConnectionClosedError
    from websockets.sync.client import connect

    raw = RawServer(wire)
    with connect(f"ws://127.0.0.1:{raw.port}/", compression=None) as ws:
        with pytest.raises(ConnectionClosedError) as caught:
            ws.recv(timeout=10)
    return type(caught.value), caught.value.sent.code, caught.value.sent.reason, raw.join()


@pytest.mark.parametrize("wire", [SERVER_INVALID_UTF8, SERVER_BAD_OPCODE], ids=["utf8", "opcode"])
def test_client_errors_unchanged(wire):
    without = client_error(wire)
    with installed("websockets"):
        with_adapter = client_error(wire)
    assert with_adapter == without
    assert with_adapter[1] == (1007 if wire is SERVER_INVALID_UTF8 else 1002)


def test_frame_errors_are_websockets_own():
    from websockets.exceptions import PayloadTooBig, ProtocolError
    from websockets.frames import Frame
    from websockets.streams import StreamReader

    def parse(data, **kwargs):
        reader = StreamReader()
        reader.feed_data(data)
        gen = Frame.parse(reader.read_exact, **kwargs)
        try:
            next(gen)
        except StopIteration as done:
            return done.value
        except Exception as error:
            return type(error), str(error)
        return "incomplete"

    cases = [
        (bytes([0x83, 0x80]) + b"\0" * 4, {"mask": True}),
        (bytes([0x81, 0x05]) + b"hello", {"mask": True}),
        (bytes([0x82, 0xFE, 0x01, 0x00]) + b"\0" * 4 + b"x" * 256, {"mask": True, "max_size": 100}),
        (bytes([0xC1, 0x80]) + b"\0" * 4, {"mask": True}),
        (bytes([0x09, 0x80]) + b"\0" * 4, {"mask": True}),
        (bytes([0x89, 0x80 | 126, 0, 200]) + b"\0" * 204, {"mask": True}),
        (bytes([0x82, 0x83]) + b"\1\2\3\4abc", {"mask": True}),
        (bytes([0x82, 0x03]) + b"abc", {"mask": False}),
        (bytes([0x82, 0x83]) + b"\1\2", {"mask": True}),
    ]
    without = [parse(data, **kwargs) for data, kwargs in cases]
    with installed("websockets") as ad:
        with_adapter = [parse(data, **kwargs) for data, kwargs in cases]
        assert ad.calls["Frame.parse"] == len(cases)
    assert with_adapter == without
    assert without[0][0] is ProtocolError and without[2][0] is PayloadTooBig
    assert without[6].data == bytes(a ^ b for a, b in zip(b"abc", b"\1\2\3"))
    assert type(without[7].data) is type(with_adapter[7].data)


def test_serialize_same_bytes():
    from websockets.frames import Frame, Opcode

    frames = [Frame(Opcode.TEXT, b"x" * n, fin=n % 2 == 0) for n in (0, 1, 125, 126, 65535, 65536)]
    frames.append(Frame(Opcode.PING, b"p"))
    without = [f.serialize(mask=False) for f in frames]
    with installed("websockets"):
        assert [f.serialize(mask=False) for f in frames] == without
        masked = Frame(Opcode.BINARY, b"abcdef").serialize(mask=True)
        key = masked[2:6]
        assert bytes(a ^ key[i % 4] for i, a in enumerate(masked[6:])) == b"abcdef"
