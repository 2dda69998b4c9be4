"""Interoperability with real peer libraries over 127.0.0.1.

The peers are test dependencies (installed by ``.ci/run``): the ``websockets``
sync client and server, and ``websocket-client``.
"""

from __future__ import annotations

import os
import threading

import pytest

from tests.helpers import echo, running_server
from wscodec import ConnectionClosedError, ConnectionClosedOK, connect

websockets_sync_client = pytest.importorskip("websockets.sync.client", reason="peer: websockets")
websockets_sync_server = pytest.importorskip("websockets.sync.server", reason="peer: websockets")
websocket = pytest.importorskip("websocket", reason="peer: websocket-client")
from websockets.exceptions import ConnectionClosedError as PeerClosedError  # noqa: E402

SIZES = [0, 125, 126, 65535, 65536, 2**20]


@pytest.fixture(scope="module")
def echo_server():
    with running_server(echo, max_size=2**21) as server:
        yield server


@pytest.mark.parametrize("size", SIZES)
def test_websockets_client_to_wscodec_server(echo_server, size):
    payload = os.urandom(size)
    text = ("\u00e9" * size)[: size // 2]
    with websockets_sync_client.connect(
        f"ws://127.0.0.1:{echo_server.port}/", max_size=2**21
    ) as client:
        client.send(payload)
        assert client.recv(timeout=10) == payload
        client.send(text)
        assert client.recv(timeout=10) == text
        client.send([b"frag", b"mented"])
        assert client.recv(timeout=10) == b"fragmented"
        latency = client.ping().wait(5)
        assert latency
    assert client.close_code == 1000


@pytest.mark.parametrize("size", SIZES)
def test_websocket_client_to_wscodec_server(echo_server, size):
    payload = os.urandom(size)
    client = websocket.create_connection(f"ws://127.0.0.1:{echo_server.port}/", timeout=10)
    try:
        client.send_binary(payload)
        assert client.recv() == payload
        client.send("x" * size)
        assert client.recv() == "x" * size
        client.ping(b"hello")
        opcode, frame = client.recv_data_frame(True)
        assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hello"
        # A fragmented message sent by websocket-client.
        client.send_frame(websocket.ABNF.create_frame("ab", websocket.ABNF.OPCODE_TEXT, 0))
        client.send_frame(websocket.ABNF.create_frame("cd", websocket.ABNF.OPCODE_CONT, 1))
        assert client.recv() == "abcd"
    finally:
        client.close()
    assert client.connected is False


@pytest.fixture(scope="module")
def websockets_server():
    def handler(connection):
        for message in connection:
            if message == "close-with-error":
                connection.close(4001, "custom")
                return
            connection.send(message)

    server = websockets_sync_server.serve(handler, "127.0.0.1", 0, max_size=2**21)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(10)


@pytest.mark.parametrize("size", SIZES)
def test_wscodec_client_to_websockets_server(websockets_server, size):
    port = websockets_server.socket.getsockname()[1]
    payload = os.urandom(size)
    with connect(f"ws://127.0.0.1:{port}/", max_size=2**21) as client:
        client.send(payload)
        assert client.recv(timeout=10) == payload
        client.send("\u4e2d" * (size // 3))
        assert client.recv(timeout=10) == "\u4e2d" * (size // 3)
        client.send(["frag", "mented"])
        assert client.recv(timeout=10) == "fragmented"
        assert client.ping().wait(5)
    assert client.close_code == 1000


def test_wscodec_client_sees_peer_close_code(websockets_server):
    port = websockets_server.socket.getsockname()[1]
    with connect(f"ws://127.0.0.1:{port}/") as client:
        client.send("close-with-error")
        with pytest.raises(ConnectionClosedError) as caught:
            client.recv(timeout=5)
    assert (caught.value.code, caught.value.reason) == (4001, "custom")


def test_server_close_reaches_websockets_client():
    def handler(connection):
        connection.recv()
        connection.close(1001, "going away")

    with running_server(handler) as server:
        with websockets_sync_client.connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("hi")
            with pytest.raises(Exception) as caught:
                client.recv(timeout=5)
            assert caught.value.rcvd.code == 1001 and caught.value.rcvd.reason == "going away"


def test_protocol_error_from_wscodec_reported_to_websockets_client():
    with running_server(echo, max_size=100) as server:
        with websockets_sync_client.connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send(b"x" * 101)
            with pytest.raises(PeerClosedError) as caught:
                client.recv(timeout=5)
            assert caught.value.rcvd.code == 1009


def test_wscodec_client_messages_before_close_are_delivered(websockets_server):
    port = websockets_server.socket.getsockname()[1]
    client = connect(f"ws://127.0.0.1:{port}/")
    for number in range(50):
        client.send(str(number))
    received = [client.recv(timeout=5) for _ in range(50)]
    client.close()
    assert received == [str(n) for n in range(50)]
    with pytest.raises(ConnectionClosedOK):
        client.recv(timeout=1)
