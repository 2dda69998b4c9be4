"""Vectored writes (wscodec/sockets.py) over real socket pairs."""

from __future__ import annotations

import socket
import threading

import pytest

from wscodec import sockets

BUFFERS = [b"head", bytes(range(256)) * 4096, b"", b"tail" * 1000]  # 1 MiB in the middle
EXPECTED = b"".join(BUFFERS)


def read_all(sock: socket.socket, size: int, into: list) -> None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    into.append(bytes(data))


@pytest.fixture(params=["sendmsg", "joined"])
def vectored(request, monkeypatch):
    if request.param == "sendmsg" and not sockets._HAS_SENDMSG:
        pytest.skip("no sendmsg() on this platform")
    if request.param == "joined":
        monkeypatch.setattr(sockets, "_HAS_SENDMSG", False)
    return request.param


def test_send_all_writes_every_buffer_in_order(vectored):
    left, right = socket.socketpair()
    received: list = []
    reader = threading.Thread(target=read_all, args=(right, len(EXPECTED), received))
    reader.start()
    try:
        sockets.send_all(left, BUFFERS)
    finally:
        reader.join(30)
        left.close()
        right.close()
    assert received == [EXPECTED]


def test_partial_non_blocking_writes_resume_where_they_stopped(vectored):
    left, right = socket.socketpair()
    left.setblocking(False)
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    received: list = []
    pending: list = list(BUFFERS)
    partial = 0
    try:
        while pending:
            try:
                sent = sockets.send_some(left, pending)
            except BlockingIOError:
                sent = 0
            if sent < sum(len(buffer) for buffer in pending):
                partial += 1
                chunk = right.recv(1 << 20)  # make room
                received.append(chunk)
            pending = sockets.unsent(pending, sent)
        left.close()
        read_all(right, len(EXPECTED) - sum(map(len, received)), received)
    finally:
        left.close()
        right.close()
    assert partial > 0  # the socket buffer was smaller than the buffers
    assert b"".join(received) == EXPECTED


def test_unsent_counts_across_buffer_boundaries():
    buffers = [b"abc", b"", memoryview(b"defgh"), bytearray(b"ij")]
    assert [bytes(v) for v in sockets.unsent(buffers, 0)] == [
        b"abc",
        b"defgh",
        b"ij",
    ]  # empties dropped
    assert [bytes(v) for v in sockets.unsent(buffers, 2)] == [b"c", b"defgh", b"ij"]
    assert [bytes(v) for v in sockets.unsent(buffers, 3)] == [b"defgh", b"ij"]
    assert [bytes(v) for v in sockets.unsent(buffers, 9)] == [b"j"]
    assert sockets.unsent(buffers, 10) == []


def test_more_buffers_than_one_call_takes(vectored):
    buffers = [bytes([i % 256]) * (100 + i % 100) for i in range(1500)]  # past IOV_MAX too
    expected = b"".join(buffers)
    left, right = socket.socketpair()
    received: list = []
    reader = threading.Thread(target=read_all, args=(right, 2 * len(expected), received))
    reader.start()
    try:
        sockets.send_all(left, buffers)
        sent = sockets.send_some(left, buffers)
        assert 0 < sent <= len(expected)
        sockets.send_all(left, sockets.unsent(buffers, sent))
    finally:
        reader.join(30)
        left.close()
        right.close()
    assert received == [expected * 2]
