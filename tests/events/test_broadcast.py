"""wscodec.events.broadcast: one encoded frame for every connection that can share it."""

from __future__ import annotations

import queue
import time
from typing import Any, List

import pytest

from tests.helpers import raw_handshake, running_server
from wscodec import EventHandler, connect, serve_events
from wscodec._backend import codec
from wscodec.events import broadcast


def running(factory: Any, **options: Any) -> Any:
    return running_server(factory, serve_with=serve_events, **options)


class Member(EventHandler):
    opened: queue.Queue[Any]

    def on_open(self, connection: Any) -> None:
        self.opened.put(connection)


def members_of(server: Any, clients: List[Any], opened: queue.Queue[Any]) -> List[Any]:
    return [opened.get(timeout=5) for _ in clients]


@pytest.fixture
def opened() -> queue.Queue[Any]:
    return queue.Queue()


def test_every_member_gets_every_message_in_order_compressed_or_not(opened):
    Member.opened = opened
    with running(Member, threads=2) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        clients = [connect(url, compression=None) for _ in range(8)]
        clients += [connect(url) for _ in range(4)]  # permessage-deflate: encoded each
        members = members_of(server, clients, opened)
        assert sum(m.protocol.deflate is not None for m in members) == 4
        for i in range(30):  # from this thread, not a loop's
            assert broadcast(members, f"m{i}" if i % 2 else f"m{i}".encode()) == 12
        for client in clients:
            expected = [f"m{i}" if i % 2 else f"m{i}".encode() for i in range(30)]
            assert [client.recv(timeout=5) for _ in range(30)] == expected
            client.close()


def test_the_frame_is_encoded_once_for_uncompressed_members(opened, monkeypatch):
    Member.opened = opened
    with running(Member) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        clients = [connect(url, compression=None) for _ in range(20)]
        members = members_of(server, clients, opened)
        calls: List[int] = []
        original = codec.encode_frame

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return original(*args, **kwargs)

        monkeypatch.setattr(codec, "encode_frame", counting)
        assert broadcast(members, "hello everyone") == 20
        monkeypatch.undo()
        assert len(calls) == 1
        assert all(client.recv(timeout=5) == "hello everyone" for client in clients)
        for client in clients:
            client.close()


def test_a_broadcast_from_a_handler_follows_what_it_sent_first(opened):
    class Relay(EventHandler):
        everyone: List[Any] = []

        def on_open(self, connection: Any) -> None:
            self.everyone.append(connection)
            opened.put(connection)

        def on_message(self, connection: Any, message: Any) -> None:
            connection.send("ack")  # queued in the protocol while dispatching
            broadcast(self.everyone, message)

    with running(Relay) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        clients = [connect(url, compression=None) for _ in range(5)]
        members_of(server, clients, opened)
        clients[0].send("hi")
        assert [clients[0].recv(timeout=5) for _ in range(2)] == ["ack", "hi"]
        assert all(client.recv(timeout=5) == "hi" for client in clients[1:])
        for client in clients:
            client.close()


def test_a_member_that_does_not_read_is_dropped_and_the_rest_keep_up(opened):
    Member.opened = opened
    with running(Member, write_limit=2**18, write_timeout=None) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        reader = connect(url, compression=None)
        stalled = raw_handshake(server.port)
        members = members_of(server, [reader, stalled], opened)
        payload = b"x" * 2**14
        counts = []
        for _ in range(1000):  # 16 MiB: far past what the kernel and write_limit hold
            counts.append(broadcast(members, payload))
            assert reader.recv(timeout=5) == payload
        assert counts[0] == 2 and counts[-1] == 1
        deadline = time.monotonic() + 5
        while members[1].close_code != 1006:
            assert time.monotonic() < deadline, "the member that does not read was kept"
            time.sleep(0.01)
        stalled.close()
        reader.close()


def test_closed_members_are_skipped_and_bad_types_refused(opened):
    Member.opened = opened
    with running(Member) as server:
        client = connect(f"ws://127.0.0.1:{server.port}/")
        (member,) = members_of(server, [client], opened)
        with pytest.raises(TypeError):
            broadcast([member], 3)  # type: ignore[arg-type]
        client.close()
        deadline = time.monotonic() + 5
        while broadcast([member], "late"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
