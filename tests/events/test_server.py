"""The event-driven server (selector loops and handler callbacks) over real sockets."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, List, Tuple

import pytest

import wscodec
from tests.helpers import (
    close_frames,
    raw_handshake,
    read_response,
    recv_until_closed,
    running_server,
)
from wscodec import (
    ConnectionClosedError,
    EventHandler,
    FrameParser,
    InvalidStatus,
    Opcode,
    connect,
    encode_frame,
    serve_events,
)
from wscodec.handshake import Headers, Response

KEY = b"\x11\x22\x33\x44"


class Echo(EventHandler):
    def on_message(self, connection, message):
        connection.send(message)


class Recorder(Echo):
    """Echoes, and records every callback in a queue shared by the class."""

    events: queue.Queue[Tuple[Any, ...]]

    def on_open(self, connection):
        self.events.put(("open", connection.request.path, connection.subprotocol))

    def on_close(self, connection, code, reason):
        self.events.put(("close", code, reason))


def recorder() -> type:
    return type("Recorder", (Recorder,), {"events": queue.Queue()})


def running(factory: Any, **options: Any) -> Any:
    return running_server(factory, serve_with=serve_events, **options)


def close_code_after(sock: socket.socket, wire: bytes) -> int:
    sock.sendall(wire)
    (frame,) = close_frames(recv_until_closed(sock))
    return int.from_bytes(frame.payload[:2], "big")


@pytest.mark.parametrize("size", [0, 125, 126, 65536, 3 * 2**20 + 5])
def test_echo_text_and_binary(size):
    payload = os.urandom(size)
    text = "\u20ac" * (size // 3)
    options = {"max_size": None}
    with running(Echo, **options) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", **options) as client:
            client.send(payload)
            assert client.recv(timeout=10) == payload
            client.send(text)
            assert client.recv(timeout=10) == text
    assert client.close_code == 1000


def test_peer_libraries_echo_through_it():
    websockets_sync = pytest.importorskip("websockets.sync.client")
    with running(Echo) as server:
        with websockets_sync.connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send(["frag", "ments"])  # a fragmented text message
            assert client.recv(timeout=5) == "fragments"
            assert client.ping(b"hi").wait(5)  # pings are answered by the loop
            client.send(b"x" * 100000)  # compressed: permessage-deflate is on by default
            assert client.recv(timeout=5) == b"x" * 100000
            assert client.response.headers.get("Sec-WebSocket-Extensions")


def test_callbacks_in_order_with_close_code_and_reason():
    handler = recorder()
    with running(handler, subprotocols=["chat"]) as server:
        uri = f"ws://127.0.0.1:{server.port}/room"
        with connect(uri, subprotocols=["chat"]) as client:
            client.send("hello")
            assert client.recv(timeout=5) == "hello"
            client.close(4000, "bye")
        assert handler.events.get(timeout=5) == ("open", "/room", "chat")
        assert handler.events.get(timeout=5) == ("close", 4000, "bye")


def test_abrupt_disconnect_reports_1006():
    handler = recorder()
    with running(handler) as server:
        sock = raw_handshake(server.port)
        sock.close()
        assert handler.events.get(timeout=5)[0] == "open"
        assert handler.events.get(timeout=5) == ("close", 1006, "")


@pytest.mark.parametrize(
    "wire, code",
    [
        (encode_frame(Opcode.TEXT, b"unmasked"), 1002),
        (encode_frame(Opcode.TEXT, b"\xed\xa0\x80", mask=KEY), 1007),
        (encode_frame(Opcode.BINARY, b"x" * 2000, mask=KEY), 1009),
        (encode_frame(Opcode.CONTINUATION, b"x", mask=KEY), 1002),
    ],
)
def test_protocol_errors_get_their_close_code(wire, code):
    with running(Echo, max_size=1000) as server:
        sock = raw_handshake(server.port)
        assert close_code_after(sock, wire) == code


def test_messages_before_an_error_are_answered_first():
    with running(Echo) as server:
        sock = raw_handshake(server.port)
        wire = encode_frame(Opcode.TEXT, b"first", mask=KEY) + encode_frame(Opcode.TEXT, b"bad")
        sock.sendall(wire)
        frames = FrameParser(mask_expected=False).feed(recv_until_closed(sock))
        assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CLOSE]
        assert frames[0].payload == b"first"


def test_handler_error_closes_with_1011(caplog):
    class Broken(EventHandler):
        def on_message(self, connection, message):
            raise RuntimeError("boom")

    with running(Broken) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("x")
            with pytest.raises(ConnectionClosedError) as info:
                client.recv(timeout=5)
    assert info.value.code == 1011
    assert "handler failed in on_message" in caplog.text


def test_bad_requests_get_http_errors():
    with running(Echo) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).status == 426
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 9000 + b"\r\n\r\n")
            assert read_response(sock).status == 431


def test_process_request_answers_over_http():
    def health(connection, request):
        if request.path == "/health":
            return Response(200, Headers([("Content-Length", "3")]), b"ok\n")
        return None

    with running(Echo, process_request=health) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            response = read_response(sock)
            assert response.status == 200
            assert response.body + recv_until_closed(sock) == b"ok\n"
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("still serving")
            assert client.recv(timeout=5) == "still serving"


def test_max_connections_answers_503():
    with running(Echo, max_connections=1) as server:
        with connect(f"ws://127.0.0.1:{server.port}/"):
            with pytest.raises(InvalidStatus) as info:
                connect(f"ws://127.0.0.1:{server.port}/", open_timeout=5)
            assert info.value.response.status == 503
        deadline = time.monotonic() + 5  # the slot is given back once the first closes
        while server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("in")
            assert client.recv(timeout=5) == "in"


def test_silent_client_times_out_without_stalling_others():
    with running(Echo, open_timeout=0.3) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("served")
            assert client.recv(timeout=5) == "served"
        assert recv_until_closed(silent) == b""  # dropped after open_timeout
        silent.close()


def test_shutdown_closes_every_client_with_1001():
    handler = recorder()
    server = serve_events(handler, "127.0.0.1", 0, close_timeout=2.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clients = [connect(f"ws://127.0.0.1:{server.port}/") for _ in range(3)]
    for client in clients:
        client.send("x")
        assert client.recv(timeout=5) == "x"
    server.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    for client in clients:
        assert client.wait_closed(5)
        assert client.close_code == 1001
    codes = [handler.events.get(timeout=5) for _ in range(6)]
    assert sorted(event[1] for event in codes if event[0] == "close") == [1001] * 3


# A script that serves from its main thread until Ctrl-C, as users run one.
CTRL_C_SCRIPT = """
import signal
import sys
import wscodec
from wscodec.cli import EchoHandler

# Ctrl-C as a terminal delivers it, whatever this test process inherited
# (in some whole-suite runs on 3.9 SIGINT reached the script ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

server = wscodec.serve_events(EchoHandler, "127.0.0.1", 0, close_timeout=2.0)
print(server.port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(0)
sys.exit(3)  # serve_forever returned without the interrupt
"""


def test_ctrl_c_in_serve_forever_shuts_down_with_1001():
    # In a process of its own: a real SIGINT to a script's main thread, and
    # the process exits right after serve_forever raises (a 1006 instead of
    # 1001 half the time, until serve_forever stopped waiting with join()).
    process = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        sock = raw_handshake(port)
        with sock:
            sock.sendall(b"\x81\x81\x00\x00\x00\x00x")  # "x", masked with zeros
            assert sock.recv(3) == b"\x81\x01x"
            process.send_signal(signal.SIGINT)
            (close,) = close_frames(recv_until_closed(sock, 10))
        assert process.wait(10) == 0
        assert process.stdout.read().strip() == "KeyboardInterrupt"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert close.payload[:2] == (1001).to_bytes(2, "big")


def test_send_from_another_thread():
    opened: queue.Queue[Any] = queue.Queue()

    class Pusher(EventHandler):
        def on_open(self, connection):
            opened.put(connection)

    with running(Pusher) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            connection = opened.get(timeout=5)
            sender = threading.Thread(target=lambda: [connection.send(f"n{i}") for i in range(100)])
            sender.start()
            sender.join()
            assert [client.recv(timeout=5) for _ in range(100)] == [f"n{i}" for i in range(100)]
            connection.close(1000, "done")
            client.wait_closed(5)
        assert client.close_code == 1000 and client.close_reason == "done"


def test_peer_that_does_not_read_is_dropped_past_write_limit():
    # A publisher thread pushes messages one by one (each its own write) to a
    # peer that never reads: the backlog grows past write_limit, and the
    # connection is dropped instead of buffering without bound.
    handler = type("Flood", (Recorder,), {"events": queue.Queue()})
    pushed = []

    def publish(connection):
        for _ in range(200):  # 25 MiB if nothing stopped it
            if connection.state is not wscodec.connection.State.OPEN:
                return
            connection.send(b"x" * 2**17)
            pushed.append(1)
            time.sleep(0.002)

    def on_open(self, connection):
        self.events.put(("open", None, None))
        threading.Thread(target=publish, args=(connection,), daemon=True).start()

    handler.on_open = on_open
    with running(handler, write_limit=2**20) as server:
        sock = raw_handshake(server.port)  # and never reads
        assert handler.events.get(timeout=5)[0] == "open"
        assert handler.events.get(timeout=20) == ("close", 1006, "")
        assert len(pushed) < 200
        sock.close()


def test_one_message_larger_than_write_limit_goes_through():
    # write_limit bounds a backlog of writes the peer does not take, not the
    # size of one message (Autobahn 9.1.5 sends 8 MiB against the 4 MiB default).
    payload = os.urandom(3 * 2**20)
    with running(Echo, write_limit=2**20, max_size=None) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as client:
            for _ in range(2):
                client.send(payload)
                assert client.recv(timeout=10) == payload
    assert client.close_code == 1000


def test_broadcast_reaches_every_event_connection_in_order():
    opened: queue.Queue[Any] = queue.Queue()

    class Member(EventHandler):
        def on_open(self, connection):
            opened.put(connection)

    with running(Member, threads=2) as server:
        clients = [connect(f"ws://127.0.0.1:{server.port}/") for _ in range(20)]
        members = [opened.get(timeout=5) for _ in clients]
        for i in range(50):  # from this thread, not a loop's
            assert wscodec.broadcast(members, f"m{i}") == 20
        for client in clients:
            assert [client.recv(timeout=5) for _ in range(50)] == [f"m{i}" for i in range(50)]
            client.close()
        for member in members:
            deadline = time.monotonic() + 5
            while member.state is not wscodec.connection.State.CLOSED:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert not member.send_nowait("late")  # closed: not taken


def test_many_clients_on_two_loops_keep_order():
    results: List[bool] = []

    def client_run():
        with connect(f"ws://127.0.0.1:{port}/") as client:
            for i in range(50):
                client.send(f"{i}")
            results.append(
                [client.recv(timeout=10) for _ in range(50)] == [str(i) for i in range(50)]
            )

    with running(Echo, threads=2) as server:
        port = server.port
        threads = [threading.Thread(target=client_run) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == [True] * 40


def test_keepalive_pings_and_fails_without_pong():
    with running(Echo, ping_interval=0.2, ping_timeout=0.3) as server:
        sock = raw_handshake(server.port)  # reads, but never answers pings
        frames = FrameParser(mask_expected=False).feed(recv_until_closed(sock))
        assert [f.opcode for f in frames] == [Opcode.PING, Opcode.CLOSE]
        assert int.from_bytes(frames[1].payload[:2], "big") == 1011
        sock.close()


def test_keepalive_keeps_an_answering_client():
    handler = recorder()
    with running(handler, ping_interval=0.05, ping_timeout=0.2) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None) as client:
            for _ in range(10):  # 1 s: many pings, each answered by the client
                time.sleep(0.1)
                client.send("still here")
                assert client.recv(timeout=5) == "still here"
        assert handler.events.get(timeout=5)[0] == "open"
        assert handler.events.get(timeout=5) == ("close", 1000, "")


def test_portable_poller_serves_the_same(monkeypatch):
    # macOS and Windows have no epoll: the loop then polls through selectors.
    import types

    import wscodec.events.poller

    monkeypatch.setattr(wscodec.events.poller, "select", types.SimpleNamespace())
    assert wscodec.events.poller.Poller()._selector is not None
    payload = os.urandom(3 * 2**20)  # more than the socket takes at once: partial writes
    with running(Echo, max_size=None) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as client:
            client.send(payload)
            assert client.recv(timeout=10) == payload
            client.send("small")
            assert client.recv(timeout=5) == "small"
    assert client.close_code == 1000


def test_threads_must_be_positive():
    with pytest.raises(ValueError):
        serve_events(Echo, "127.0.0.1", 0, threads=0)
