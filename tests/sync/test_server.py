"""The threaded server and the sync client over real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import threading
import time

import pytest

import wscodec
import wscodec.sync.nowait
from tests.helpers import (
    close_frames,
    echo,
    raw_handshake,
    read_response,
    recv_until_closed,
    running_server,
)
from wscodec import (
    CallbackClient,
    ConnectionClosedError,
    ConnectionClosedOK,
    FrameParser,
    InvalidStatus,
    InvalidURI,
    Opcode,
    broadcast,
    connect,
    encode_frame,
)
from wscodec.handshake import Headers, Response
from wscodec.sockets import unsent

SIZES = [0, 125, 126, 65535, 65536, 2**20]
KEY = b"\x11\x22\x33\x44"


@pytest.mark.parametrize("size", SIZES)
def test_echo_round_trip(size):
    payload = os.urandom(size)
    text = "\u20ac" * (size // 3)
    with running_server(echo) as server, connect(f"ws://127.0.0.1:{server.port}/") as client:
        client.send(payload)
        assert client.recv(timeout=10) == payload
        client.send(text)
        assert client.recv(timeout=10) == text
    assert client.close_code == 1000


def test_large_and_small_messages_alternate():
    # Large messages switch the readers to their large receive buffer, runs of
    # small ones switch them back; nothing may be lost or reordered either way.
    large = [os.urandom(3 * 2**20 + 17), os.urandom(2**20)]
    options = {"max_size": None, "compression": None}
    with running_server(echo, **options) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", **options) as client:
            for round_ in range(3):
                client.send(large[round_ % 2])
                assert client.recv(timeout=10) == large[round_ % 2]
                small = [os.urandom(n) for n in range(1, 60)]
                for message in small:
                    client.send(message)
                assert [client.recv(timeout=10) for _ in small] == small


def test_fragmented_messages_and_ping():
    with running_server(echo, fragment_size=1000) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", fragment_size=333) as client:
            client.send(["a" * 500, "b" * 500, "c"])
            assert client.recv(timeout=5) == "a" * 500 + "b" * 500 + "c"
            client.send(iter([b"x", b"y"]))
            assert client.recv(timeout=5) == b"xy"
            big = os.urandom(5000)
            client.send(big)
            assert client.recv(timeout=5) == big
            waiter = client.ping()
            assert waiter.wait(5) and waiter.latency is not None and waiter.latency >= 0
            waiter = client.ping("named")
            assert waiter.wait(5)


def test_request_attributes_and_subprotocol():
    seen = {}

    def handler(connection):
        seen.update(
            path=connection.request.path,
            sub=connection.subprotocol,
            agent=connection.request.headers.get("User-Agent"),
            remote=connection.remote_address,
        )
        connection.send("ok")

    with running_server(handler, subprotocols=["chat.v2", "chat.v1"]) as server:
        with connect(f"ws://127.0.0.1:{server.port}/room?id=7", subprotocols=["chat.v1"]) as client:
            assert client.recv(timeout=5) == "ok"
            assert client.subprotocol == "chat.v1"
    assert seen["path"] == "/room?id=7" and seen["sub"] == "chat.v1"
    assert seen["agent"] == "wscodec" and seen["remote"][0] == "127.0.0.1"


def test_process_request_can_reject_with_http():
    def auth(connection, request):
        if request.headers.get("Authorization") != "Bearer good":
            return Response(401, Headers([("WWW-Authenticate", "Bearer")]), b"no")
        return None

    with running_server(echo, process_request=auth) as server:
        with pytest.raises(InvalidStatus) as caught:
            connect(f"ws://127.0.0.1:{server.port}/")
        assert caught.value.response.status == 401
        assert caught.value.response.headers["WWW-Authenticate"] == "Bearer"
        with connect(
            f"ws://127.0.0.1:{server.port}/", additional_headers=[("Authorization", "Bearer good")]
        ) as client:
            client.send("in")
            assert client.recv(timeout=5) == "in"


def test_origin_refused():
    with running_server(echo, origins=["http://good.example"]) as server:
        with pytest.raises(InvalidStatus) as caught:
            connect(f"ws://127.0.0.1:{server.port}/", origin="http://evil.example")
        assert caught.value.response.status == 403
        connect(f"ws://127.0.0.1:{server.port}/", origin="http://good.example").close()


def test_bad_handshake_gets_http_error():
    with running_server(echo) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        response = read_response(sock)
        assert response.status == 426
        assert response.headers["Sec-WebSocket-Version"] == "13"
        assert recv_until_closed(sock) is not None
        sock.close()


def test_oversized_headers_get_431_without_unbounded_buffering():
    with running_server(echo) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        try:
            for _ in range(100):  # 800 KB of headers if the server kept reading
                sock.sendall(b"X-Junk: " + b"a" * 7000 + b"\r\n")
        except OSError:
            pass  # the server already answered and closed
        response = read_response(sock)
        assert response.status == 431
        sock.close()


def test_protocol_error_from_peer_gets_1002():
    with running_server(echo) as server:
        sock = raw_handshake(server.port)
        sock.sendall(b"\x83\x80" + KEY)  # reserved opcode
        (close,) = close_frames(recv_until_closed(sock))
        assert int.from_bytes(close.payload[:2], "big") == 1002
        sock.close()


def test_invalid_utf8_from_peer_gets_1007():
    with running_server(echo) as server:
        sock = raw_handshake(server.port)
        sock.sendall(encode_frame(Opcode.TEXT, b"\xff\xfe", mask=KEY))
        (close,) = close_frames(recv_until_closed(sock))
        assert int.from_bytes(close.payload[:2], "big") == 1007
        sock.close()


def test_message_too_big_gets_1009():
    with running_server(echo, max_size=1000) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as client:
            client.send(b"x" * 1001)
            with pytest.raises(ConnectionClosedError) as caught:
                client.recv(timeout=5)
            assert caught.value.code == 1009


def test_abrupt_tcp_close_is_1006_on_the_server():
    closed = threading.Event()
    codes = []

    def handler(connection):
        try:
            for _ in connection:
                pass
        except ConnectionClosedError as error:
            codes.append(error.code)
        closed.set()

    with running_server(handler) as server:
        sock = raw_handshake(server.port)
        sock.sendall(encode_frame(Opcode.TEXT, b"partial", fin=False, mask=KEY)[:5])
        sock.close()
        assert closed.wait(5)
    assert codes == [1006]


def test_abrupt_close_of_server_is_1006_on_the_client():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def fake_server():
        conn, _ = listener.accept()
        request = conn.recv(4096)
        key = next(
            line.split(b": ")[1]
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        ).decode()
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + wscodec.handshake.accept_key(key).encode()
            + b"\r\n\r\n"
            + encode_frame(Opcode.TEXT, b"hello")
        )
        conn.close()

    thread = threading.Thread(target=fake_server)
    thread.start()
    client = connect(f"ws://127.0.0.1:{port}/")
    assert client.recv(timeout=5) == "hello"  # delivered before the drop is reported
    with pytest.raises(ConnectionClosedError) as caught:
        client.recv(timeout=5)
    assert caught.value.code == 1006
    thread.join(5)
    listener.close()


def test_handler_exception_closes_with_1011(caplog):
    def broken(connection):
        connection.recv()
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="wscodec.server"):
        with running_server(broken) as server:
            with connect(f"ws://127.0.0.1:{server.port}/") as client:
                client.send("trigger")
                with pytest.raises(ConnectionClosedError) as caught:
                    client.recv(timeout=5)
                assert caught.value.code == 1011
            # The server keeps serving.
            with connect(f"ws://127.0.0.1:{server.port}/") as other:
                other.send("again")
    assert "handler failed" in caplog.text and "boom" in caplog.text


def test_shutdown_sends_1001_and_joins():
    started = threading.Event()

    def waiter(connection):
        started.set()
        for _ in connection:
            pass

    with running_server(waiter) as server:
        clients = [connect(f"ws://127.0.0.1:{server.port}/") for _ in range(5)]
        assert started.wait(5)
        deadline = time.monotonic() + 5
        while len(server.connections) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = time.monotonic()
        server.shutdown()
        assert time.monotonic() - before < 3
        assert server.connections == []
    for client in clients:
        with pytest.raises(ConnectionClosedOK) as caught:
            client.recv(timeout=5)
        assert caught.value.code == 1001


def test_shutdown_after_ctrl_c_in_serve_forever():
    """``with serve(...) as s: s.serve_forever()`` then Ctrl-C: a clean 1001, no OSError."""
    server = wscodec.serve(echo, "127.0.0.1", 0, close_timeout=2.0)
    real_accept = server._accept
    calls = []

    def accept_then_interrupt():
        calls.append(None)
        if len(calls) > 1:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        real_accept()

    server._accept = accept_then_interrupt
    clients = []

    def connect_then_poke():
        clients.append(connect(f"ws://127.0.0.1:{server.port}/"))
        deadline = time.monotonic() + 5
        while not server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()

    poker = threading.Thread(target=connect_then_poke)
    poker.start()
    with pytest.raises(KeyboardInterrupt):
        server.serve_forever()
    poker.join(10)
    server.shutdown()  # raised OSError (a closed wake-up socket) before the fix
    with pytest.raises(ConnectionClosedOK) as caught:
        clients[0].recv(timeout=5)
    assert caught.value.code == 1001


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop


def test_serve_forever_runs_a_signal_caught_by_another_thread():
    """SIGTERM or Ctrl-C land on any thread of the process, and Python runs the
    handler in the main thread only: serve_forever() there must not sleep through it."""
    server = wscodec.serve(echo, "127.0.0.1", 0)
    fire, stopped = threading.Event(), threading.Event()

    def signaller():
        fire.wait(5)
        os.kill(os.getpid(), signal.SIGUSR1)  # the main thread blocks it: this thread takes it
        if not stopped.wait(5):  # the handler did not run: wake the accept loop up
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()

    previous = signal.signal(signal.SIGUSR1, _raise_stop)
    thread = threading.Thread(target=signaller, daemon=True)
    thread.start()  # before the mask: threads inherit their creator's
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        started = time.monotonic()
        fire.set()
        with pytest.raises(_Stop):
            server.serve_forever()
        took = time.monotonic() - started
    finally:
        stopped.set()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR1, previous)
        server.shutdown()
        thread.join(10)
    assert took < 2.0, f"the signal handler ran after {took:.1f} s"


def test_handshake_ending_during_shutdown_still_gets_1001():
    """A connection that opens while shutdown() runs is closed with 1001 too."""
    entered, gate = threading.Event(), threading.Event()

    def slow_process_request(connection, request):
        entered.set()
        gate.wait(5)  # until shutdown() has begun
        return None

    server = wscodec.serve(
        echo, "127.0.0.1", 0, close_timeout=2.0, process_request=slow_process_request
    )
    accept_loop = threading.Thread(target=server.serve_forever, daemon=True)
    accept_loop.start()
    clients = []
    opener = threading.Thread(
        target=lambda: clients.append(connect(f"ws://127.0.0.1:{server.port}/"))
    )
    opener.start()
    assert entered.wait(5)
    stopper = threading.Thread(target=server.shutdown)
    stopper.start()
    deadline = time.monotonic() + 5
    while not server._shutting_down.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    opener.join(10)
    stopper.join(10)
    accept_loop.join(10)
    assert not stopper.is_alive() and not accept_loop.is_alive()
    with pytest.raises(ConnectionClosedOK) as caught:
        clients[0].recv(timeout=5)
    assert caught.value.code == 1001


def test_close_with_code_and_reason_reaches_the_handler():
    received = []

    def handler(connection):
        try:
            connection.recv()
        except ConnectionClosedError as error:
            received.append((error.code, error.reason))

    with running_server(handler) as server:
        client = connect(f"ws://127.0.0.1:{server.port}/")
        client.close(4000, "app says bye")
        assert client.close_code == 4000
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
    assert received == [(4000, "app says bye")]


def test_silent_client_times_out_without_stalling_others():
    with running_server(echo, open_timeout=0.5) as server:
        silent = socket.create_connection(("127.0.0.1", server.port))
        slowloris = socket.create_connection(("127.0.0.1", server.port))
        slowloris.sendall(b"GET / HTTP/1.1\r\n")
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("still served")
            assert client.recv(timeout=5) == "still served"
        for sock in (silent, slowloris):
            assert recv_until_closed(sock, 5) == b""  # closed by the server after 0.5 s
            sock.close()


def test_client_that_never_reads_is_dropped_by_write_timeout():
    result = {}

    def flood(connection):
        try:
            for _ in range(10000):
                connection.send(b"x" * 65536)
        except ConnectionClosedError as error:
            result["code"] = error.code

    with running_server(flood, write_timeout=0.5) as server:
        sock = raw_handshake(server.port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with connect(f"ws://127.0.0.1:{server.port}/") as other:  # not stalled
            deadline = time.monotonic() + 10
            while "code" not in result and time.monotonic() < deadline:
                time.sleep(0.05)
            assert other.state.value == "open"
        sock.close()
    assert result == {"code": 1006}


def test_broadcast_does_not_wait_for_a_slow_reader():
    connections = []
    registered = threading.Event()

    def keep(connection):
        connections.append(connection)
        if len(connections) == 3:
            registered.set()
        for _ in connection:
            pass

    with running_server(keep, write_limit=2**20, write_timeout=30) as server:
        slow = raw_handshake(server.port)  # never reads
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fast = [connect(f"ws://127.0.0.1:{server.port}/", max_size=None) for _ in range(2)]
        assert registered.wait(5)
        message = b"m" * 65536
        longest = 0.0
        for _ in range(200):  # 13 MB: more than the kernel buffers of the slow reader
            started = time.monotonic()
            broadcast(server.connections, message)
            longest = max(longest, time.monotonic() - started)
            for client in fast:  # the fast readers get every message, in time
                assert client.recv(timeout=10) == message
        # Waiting on the slow reader would take write_timeout (30 s); a loaded
        # machine can stall any call for a few seconds, so the bound is 5 s.
        assert longest < 5.0  # broadcast never waited on the slow reader
        deadline = time.monotonic() + 10
        while len(server.connections) > 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.connections) == 2  # the slow reader was dropped by policy
        assert all(client.state.value == "open" for client in fast)
        for client in fast:
            client.close()
        slow.close()


def _writer_threads() -> int:
    return sum(
        1
        for thread in threading.enumerate()
        if thread.name.startswith(("wscodec-drain-", "wscodec-write-"))
    )


class HeldConnection:
    """A handler that keeps the server side of its connection for the test to use."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.connection = None

    def __call__(self, connection):
        self.connection = connection
        self.ready.set()
        for _ in connection:
            pass

    def get(self):
        assert self.ready.wait(5)
        return self.connection


def test_send_nowait_to_a_peer_that_keeps_up_starts_no_thread():
    """A frame the socket takes at once is written in the caller's thread: no drain or
    writer thread per message (fan-out to many members stayed CPU-bound on them)."""
    held = HeldConnection()

    with running_server(held) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            connection = held.get()
            most = 0
            for index in range(500):
                assert connection.send_nowait(f"m{index}")
                most = max(most, _writer_threads())
            assert [client.recv(timeout=10) for _ in range(500)] == [
                f"m{index}" for index in range(500)
            ]
    assert most == 0


def test_send_nowait_finishes_a_frame_the_socket_took_in_part(monkeypatch):
    """When the socket takes only part of a frame, the rest goes out before any other
    frame, a blocking send()'s included: a slow reader gets every message whole, and
    those of send_nowait() in order."""
    held = HeldConnection()

    real = wscodec.sync.nowait.send_without_waiting
    tails = []

    def take_only_part(sock, buffers):
        # As a socket with little room: it takes 1000 bytes at most.
        head = memoryview(b"".join(buffers))[:1000]
        taken = head.nbytes - sum(view.nbytes for view in real(sock, [head]))
        tail = unsent(buffers, taken)
        tails.append(len(tail))
        return tail

    monkeypatch.setattr(wscodec.sync.nowait, "send_without_waiting", take_only_part)
    with running_server(held, write_limit=2**26) as server:
        sock = raw_handshake(server.port)
        connection = held.get()
        messages = [bytes([index % 251]) * (50_000 + index) for index in range(60)]
        refused = []

        def send_all():
            for index, message in enumerate(messages):
                if not connection.send_nowait(message):
                    refused.append(index)
                if index % 10 == 0:
                    connection.send(b"in between %d" % index)  # a blocking send interleaves

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        between = [b"in between %d" % index for index in range(0, len(messages), 10)]
        total = len(messages) + len(between)
        parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0)
        received = []
        deadline = time.monotonic() + 30
        sock.settimeout(1)
        while len(received) < total and time.monotonic() < deadline:
            time.sleep(0.001)  # a slow reader
            try:
                data = sock.recv(8192)
            except socket.timeout:
                continue
            assert data, "the server closed the connection"
            # A frame cut by another frame's bytes would not parse (or not match).
            received += [bytes(frame.payload) for frame in parser.feed(data)]
        sender.join(10)
        sock.close()
    assert refused == []
    assert any(tails), "no frame was taken in part"
    # send() may overtake messages still queued, never a frame's unsent tail.
    assert [m for m in received if m.startswith(b"in between")] == between
    assert [m for m in received if not m.startswith(b"in between")] == messages


def test_max_connections_answers_503():
    hold = threading.Event()

    def blocker(connection):
        hold.wait(10)

    with running_server(blocker, max_connections=2) as server:
        first = connect(f"ws://127.0.0.1:{server.port}/")
        second = connect(f"ws://127.0.0.1:{server.port}/")
        with pytest.raises(InvalidStatus) as caught:
            connect(f"ws://127.0.0.1:{server.port}/")
        assert caught.value.response.status == 503
        hold.set()
        first.close()
        second.close()


def test_many_clients_exchange_messages_in_order():
    clients_count, messages = 200, 100
    errors = []

    def client_job(index):
        try:
            with connect(f"ws://127.0.0.1:{port}/", open_timeout=30) as client:
                for number in range(messages):
                    client.send(f"{index}:{number}")
                for number in range(messages):
                    assert client.recv(timeout=30) == f"{index}:{number}"
        except Exception as error:  # collected and asserted below
            errors.append(repr(error))

    with running_server(echo, max_queue=messages) as server:
        port = server.port
        threads = [threading.Thread(target=client_job, args=(i,)) for i in range(clients_count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(t.is_alive() for t in threads), "clients hung"
        elapsed = time.monotonic() - started
    assert errors == []
    assert elapsed < 60


def test_keepalive_closes_an_unresponsive_peer():
    done = threading.Event()
    closes = []

    def handler(connection):
        try:
            connection.recv()
        except ConnectionClosedError as error:
            closes.append((error.code, error.sent))
        done.set()

    with running_server(handler, ping_interval=0.2, ping_timeout=0.3) as server:
        sock = raw_handshake(server.port)  # a peer that never answers pings
        assert done.wait(5)
        frames = FrameParser(mask_expected=False).feed(recv_until_closed(sock))
        assert frames[0].opcode is Opcode.PING
        assert frames[-1].opcode is Opcode.CLOSE
        assert frames[-1].payload == (1011).to_bytes(2, "big") + b"keepalive ping timeout"
        sock.close()
    # No close frame came back: 1006 received, 1011 sent.
    assert closes == [(1006, (1011, "keepalive ping timeout"))]


def test_callback_client():
    events = []
    done = threading.Event()

    def on_message(client, message):
        events.append(("message", message))
        client.close()

    def on_close(client, code, reason):
        events.append(("close", code))
        done.set()

    with running_server(echo) as server:
        client = CallbackClient(
            f"ws://127.0.0.1:{server.port}/",
            on_open=lambda c: (events.append(("open",)), c.send("hi")),
            on_message=on_message,
            on_close=on_close,
        )
        client.start()
        assert done.wait(5)
    assert events == [("open",), ("message", "hi"), ("close", 1000)]


def test_callback_client_refused_connection():
    events = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    CallbackClient(
        f"ws://127.0.0.1:{port}/",
        on_error=lambda c, e: events.append(type(e)),
        on_close=lambda c, code, reason: events.append(code),
    ).run_forever()
    assert events == [ConnectionRefusedError, 1006]


@pytest.mark.parametrize("uri", ["http://x/", "ws://", "ws://h:notaport/", "ws://h/#frag"])
def test_bad_uris(uri):
    with pytest.raises(InvalidURI):
        connect(uri)


def test_wss_with_a_local_certificate():
    trustme = pytest.importorskip("trustme", reason="trustme is a test dependency")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    with running_server(echo, ssl=server_context) as server:
        with connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context) as client:
            payload = os.urandom(100000)
            client.send(payload)
            assert client.recv(timeout=5) == payload


def test_echo_before_failing_on_a_later_bad_frame():
    with running_server(echo) as server:
        sock = raw_handshake(server.port)
        sock.sendall(encode_frame(Opcode.TEXT, b"first", mask=KEY) + b"\x85\x80" + KEY)
        frames = FrameParser(mask_expected=False).feed(recv_until_closed(sock))
        assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CLOSE]
        assert frames[0].payload == b"first"
        assert frames[1].payload[:2] == (1002).to_bytes(2, "big")
        sock.close()


needs_batch = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only")


def _policy_reporter(connection):
    connection.send(str(os.sched_getscheduler(0)))
    for message in connection:
        connection.send(message)


def _handler_policy(**options):
    """The scheduling policy of a connection's thread, which still echoes."""
    with running_server(_policy_reporter, **options) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            policy = int(client.recv(timeout=10))
            client.send(b"still echoed")
            assert client.recv(timeout=10) == b"still echoed"
    return policy


@needs_batch
def test_connection_threads_run_under_sched_batch_by_default():
    before = os.sched_getscheduler(0)
    assert before != os.SCHED_BATCH
    assert _handler_policy() == os.SCHED_BATCH
    assert _handler_policy(batch_scheduling=False) == before
    assert os.sched_getscheduler(0) == before  # the serving thread keeps its own


@needs_batch
def test_refused_sched_batch_still_serves(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.DEBUG, logger="wscodec.server"):
        assert _handler_policy() != os.SCHED_BATCH
    assert "SCHED_BATCH refused" in caplog.text


def test_refused_option_closes_the_listening_socket(monkeypatch):
    opened = []
    real_listen = wscodec.sync.server.listen

    def listen(*args, **kwargs):
        opened.append(real_listen(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(wscodec.sync.server, "listen", listen)
    with pytest.raises(TypeError, match="no_such_option"):
        wscodec.serve(echo, "127.0.0.1", 0, no_such_option=True)
    assert opened and opened[0].fileno() == -1


# Thread-start failures (a pids limit, TasksMax): each refuses one connection.

REFUSED_CONNECTIONS = 2  # thread starts made to fail in a row
_UPGRADE_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SERVED_WITHIN = 5.0  # seconds for the connection served after them


def _fail_thread_starts(monkeypatch, prefix: str, count: int) -> list:
    """Make the next ``count`` starts of threads named ``prefix...`` raise RuntimeError."""
    failed: list = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith(prefix) and len(failed) < count:
            failed.append(thread.name)
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    return failed


def test_connection_thread_that_cannot_start_gets_503_and_serving_goes_on(monkeypatch, caplog):
    caplog.set_level(logging.ERROR, logger="wscodec.server")
    with running_server(echo) as server:
        failed = _fail_thread_starts(monkeypatch, "wscodec-conn", REFUSED_CONNECTIONS)
        for _ in range(REFUSED_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=SERVED_WITHIN)
            try:
                sock.sendall(_UPGRADE_REQUEST)
                assert read_response(sock).status == 503
            finally:
                sock.close()
        assert len(failed) == REFUSED_CONNECTIONS
        with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=SERVED_WITHIN) as client:
            client.send("still serving")
            assert client.recv(timeout=SERVED_WITHIN) == "still serving"
    assert sum("cannot start a thread" in r.getMessage() for r in caplog.records) == (
        REFUSED_CONNECTIONS
    )


@pytest.mark.parametrize("thread", ["wscodec-reader", "wscodec-ping"])
def test_connection_whose_threads_cannot_start_gets_1013_and_is_released(
    monkeypatch, caplog, thread
):
    caplog.set_level(logging.ERROR, logger="wscodec.server")
    with running_server(echo) as server:
        failed = _fail_thread_starts(monkeypatch, thread, 1)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=SERVED_WITHIN)
        try:
            sock.sendall(_UPGRADE_REQUEST)
            # Read to the end: the close frame may come in the response's segment.
            head, _, rest = recv_until_closed(sock, limit=SERVED_WITHIN).partition(b"\r\n\r\n")
        finally:
            sock.close()
        assert head.startswith(b"HTTP/1.1 101"), head
        closes = close_frames(rest)
        assert failed, "no thread start was made to fail"
        assert [int.from_bytes(f.payload[:2], "big") for f in closes] == [1013]
        deadline = time.monotonic() + SERVED_WITHIN
        while server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.connections == [], "the refused connection is still registered"
        with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=SERVED_WITHIN) as client:
            client.send("still serving")
            assert client.recv(timeout=SERVED_WITHIN) == "still serving"
    assert any("1013" in r.getMessage() for r in caplog.records)
