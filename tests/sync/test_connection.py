"""Who reads the socket: the application's thread in recv(), else the background reader.

The connection reads in the thread that waits in ``recv()``, so a message
needs no hand-off between threads; the background reader takes over while
the application is away (answering pings and closes) and hands reading back.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers import running_server
from wscodec import ConnectionClosedOK, connect


class RecordingBuffer:
    """A receive buffer that records the thread of every read from the socket."""

    def __init__(self, buffer, threads):
        self._buffer = buffer
        self._threads = threads

    def read(self, sock):
        self._threads.append(threading.current_thread().name)
        return self._buffer.read(sock)


def record_reading_threads(connection, threads):
    """Wrap the connection's receive buffer so that every thread reading the socket is recorded."""
    connection._buffer = RecordingBuffer(connection._buffer, threads)


def test_messages_are_read_in_the_thread_that_waits_in_recv():
    threads = []

    def handler(connection):
        record_reading_threads(connection, threads)
        for message in connection:
            connection.send(message)

    with running_server(handler, compression=None) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as client:
            for n in range(200):
                client.send(f"message {n}")
                assert client.recv(timeout=5) == f"message {n}"
    readers = [name for name in threads if name.startswith("wscodec-reader")]
    # The handler waited in recv() for each message: its own thread read them
    # (the background reader may only have read the final close).
    assert len(threads) >= 200
    assert len(readers) <= 2, readers


def test_pings_are_answered_while_the_application_is_busy():
    release = threading.Event()

    def handler(connection):
        release.wait(10)  # busy: not in recv()
        assert connection.recv(timeout=5) == "after the pings"
        connection.send("done")

    with running_server(handler) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None) as client:
            waiters = [client.ping(f"ping {n}") for n in range(3)]
            answered = [waiter.wait(5) for waiter in waiters]
            client.send("after the pings")
            release.set()
            assert answered == [True, True, True]
            assert client.recv(timeout=5) == "done"


def test_reading_is_handed_back_after_a_busy_spell():
    threads = []
    busy, sent = threading.Event(), threading.Event()

    def handler(connection):
        record_reading_threads(connection, threads)
        assert connection.recv(timeout=5) == "first"
        busy.set()
        assert sent.wait(5)
        time.sleep(0.5)  # away from recv(): the background reader reads meanwhile
        for message in connection:
            connection.send(message)

    with running_server(handler) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("first")
            assert busy.wait(5)
            client.send("while busy")
            sent.set()
            assert client.recv(timeout=5) == "while busy"
            for n in range(50):
                client.send(f"message {n}")
                assert client.recv(timeout=5) == f"message {n}"
    handler_thread = [name for name in threads if not name.startswith("wscodec-reader")]
    background = [name for name in threads if name.startswith("wscodec-reader")]
    assert background, "the background reader never read while the handler was busy"
    # Once the handler waited again, it read the rest itself.
    assert len(handler_thread) >= 40, threads


def test_recv_with_timeout_zero_reads_what_already_arrived():
    def handler(connection):
        # Polling without ever leaving recv() for long: nothing but recv()
        # itself can read, so timeout=0 must look at the socket.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                message = connection.recv(timeout=0)
            except TimeoutError:
                continue
            connection.send(f"got {message}")
            return

    with running_server(handler) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("hello")
            assert client.recv(timeout=5) == "got hello"


def test_recv_times_out_and_keeps_the_connection_usable():
    def handler(connection):
        with pytest.raises(TimeoutError):
            connection.recv(timeout=0.2)
        connection.send("timed out")
        connection.send(connection.recv(timeout=5))

    with running_server(handler) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            assert client.recv(timeout=5) == "timed out"
            client.send("still open")
            assert client.recv(timeout=5) == "still open"


def test_a_close_arriving_while_the_application_is_busy_completes():
    closed = threading.Event()
    received = []

    def handler(connection):
        time.sleep(0.3)  # the client's messages and close arrive meanwhile
        try:
            while True:
                received.append(connection.recv(timeout=5))
        except ConnectionClosedOK:
            closed.set()

    with running_server(handler) as server:
        client = connect(f"ws://127.0.0.1:{server.port}/")
        for n in range(5):
            client.send(f"message {n}")
        client.close()
        assert client.close_code == 1000
        assert closed.wait(5)
    assert received == [f"message {n}" for n in range(5)]


def test_two_threads_in_recv_share_the_messages_in_order():
    count = 400

    def handler(connection):
        for n in range(count):
            connection.send(f"{n}")
        connection.recv(timeout=10)

    got = {0: [], 1: []}
    with running_server(handler) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", max_queue=4) as client:

            def consume(index):
                try:
                    while True:
                        got[index].append(int(client.recv(timeout=2)))
                except TimeoutError:
                    pass

            consumers = [threading.Thread(target=consume, args=(i,)) for i in (0, 1)]
            for thread in consumers:
                thread.start()
            for thread in consumers:
                thread.join(20)
            client.send("bye")
    assert sorted(got[0] + got[1]) == list(range(count))
    assert got[0] == sorted(got[0]) and got[1] == sorted(got[1])
