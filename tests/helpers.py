"""Helpers for tests that use real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any, Callable, Iterator, NoReturn

import pytest

from wscodec import FrameParser, Opcode, serve
from wscodec.demo import DemoServer, serve_demo
from wscodec.handshake import HTTPReader, Response, accept_key


@contextlib.contextmanager
def running_server(
    handler: Callable[..., Any], serve_with: Callable[..., Any] = serve, **options: Any
) -> Iterator[Any]:
    """A wscodec server on a free port, serving in a thread, shut down on exit.

    ``serve_with`` is :func:`wscodec.serve` (threads) or
    :func:`wscodec.serve_events` (``handler`` is then a handler factory).
    """
    options.setdefault("close_timeout", 2.0)
    server = serve_with(handler, "127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive(), "the accept loop did not stop"


#: The server running_demo() uses by default: "asyncio" or "threaded".
DEMO_SERVER = "asyncio"


@contextlib.contextmanager
def running_demo(port: int = 0, **options: Any) -> Iterator[DemoServer]:
    """The demo server on a free port, serving in a thread, shut down on exit.

    On the asyncio server unless ``server`` says otherwise, or ``DEMO_SERVER``
    (which tests/demo's fixture sets, to run each test on both servers).
    """
    options.setdefault("close_timeout", 2.0)
    options.setdefault("server", DEMO_SERVER)
    server = serve_demo("127.0.0.1", port, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive()


def echo(connection: Any) -> None:
    for message in connection:
        connection.send(message)


def raw_handshake(port: int, path: str = "/", extra: bytes = b"") -> socket.socket:
    """A TCP socket that completed a WebSocket handshake by hand."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n".encode()
        + extra
        + b"\r\n"
    )
    response = read_response(sock)
    assert response.status == 101, response
    assert response.headers["Sec-WebSocket-Accept"] == accept_key(key)
    return sock


def read_response(sock: socket.socket) -> Response:
    reader = HTTPReader("response")
    while True:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed before the response")
        response = reader.feed(data)
        if response is not None:
            assert isinstance(response, Response)
            response.body = reader.leftover
            return response


def recv_until_closed(sock: socket.socket, limit: float = 5.0) -> bytes:
    """Everything the peer sends until it closes TCP (bounded in time)."""
    sock.settimeout(limit)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def close_frames(data: bytes) -> list:
    """The close frames among the server frames in ``data``."""
    frames = FrameParser(mask_expected=False, max_frame_size=None).feed(data)
    return [f for f in frames if f.opcode is Opcode.CLOSE]


def close_codes(data: bytes) -> list:
    """The codes of the close frames among the server frames in ``data``."""
    return [int.from_bytes(frame.payload[:2], "big") for frame in close_frames(data)]


def system_program_missing(reason: str) -> NoReturn:
    """Skip for a missing system program, or fail where .ci/run installed it.

    ``reason`` names the program and its Debian package. With
    WSCODEC_REQUIRE_SYSTEM_DEPS set (.ci/run, after installing them) a missing
    program fails the test instead of hiding it behind a skip.
    """
    if os.environ.get("WSCODEC_REQUIRE_SYSTEM_DEPS"):
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(f"{reason}; .ci/run installs it and sets WSCODEC_REQUIRE_SYSTEM_DEPS=1")


def decompression_bomb(inflated: int = 200 * 2**20, window_bits: int = 15) -> bytes:
    """One masked, compressed binary frame (under 1 MiB) that inflates to ``inflated`` bytes."""
    import zlib

    from wscodec import encode_frame

    bomb = zlib.compressobj(wbits=-window_bits)
    payload = bomb.compress(b"\0" * inflated) + bomb.flush(zlib.Z_SYNC_FLUSH)
    return encode_frame(Opcode.BINARY, payload[:-4], mask=b"\x11\x22\x33\x44", rsv1=True)


async def bomb_server(port: int, path: str = "/") -> tuple[bytes, int]:
    """Send :func:`decompression_bomb` to a server on ``port`` (offering permessage-deflate).

    Returns what the server sent back until it closed TCP, and the peak of
    the memory this process traced meanwhile (the server runs in it).
    """
    import asyncio
    import gc
    import tracemalloc

    frame = decompression_bomb()

    def attack() -> bytes:
        sock = raw_handshake(port, path, extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
        sock.sendall(frame)
        data = recv_until_closed(sock)
        sock.close()
        return data

    gc.collect()
    tracemalloc.start()
    try:
        data = await asyncio.get_running_loop().run_in_executor(None, attack)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return data, peak
