"""The demo chat over real sockets: protocol, history, limits, static files, origins."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

import wscodec
from tests import helpers
from tests.helpers import read_response, running_demo
from wscodec import ConnectionClosed, InvalidStatus, connect
from wscodec.demo import ChatLimits, LocalBroker, Room
from wscodec.demo.chat import RateMeter, TokenBucket, validate_name
from wscodec.demo.limits import ActiveSenders, SendShare
from wscodec.demo.static import FILES, StaticFiles

FAST = ChatLimits(rate=1000.0, burst=1000)


@pytest.fixture(autouse=True, params=["asyncio", "threaded"])
def demo_server(request: Any, monkeypatch: Any) -> str:
    """Every test here on both of the demo's servers (the unit tests too: they are quick)."""
    monkeypatch.setattr(helpers, "DEMO_SERVER", request.param)
    return request.param


def recv_event(client: Any, kind: str, timeout: float = 5.0) -> Dict[str, Any]:
    """The next event of type ``kind`` (stats and other events in between are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(client.recv(timeout=max(0.01, deadline - time.monotonic())))
        if event["type"] == kind:
            return event


@contextlib.contextmanager
def member(server: Any, name: str, **options: Any) -> Iterator[Any]:
    """A client that joined as ``name`` (and read its welcome)."""
    with connect(f"ws://127.0.0.1:{server.port}/ws", **options) as client:
        client.send(json.dumps({"type": "join", "name": name}))
        client.welcome = recv_event(client, "welcome")
        yield client


def closed_with(client: Any, timeout: float = 5.0) -> tuple:
    """Read until the server closes the connection; its (code, reason)."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed):
        while time.monotonic() < deadline:
            client.recv(timeout=max(0.01, deadline - time.monotonic()))
    return client.close_code, client.close_reason


def http_get(port: int, path: str, method: str = "GET"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        response = read_response(sock)
        body = response.body
        sock.settimeout(5)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        response.body = body
        return response


# The chat over WebSocket ---------------------------------------------------------------


def test_join_message_leave_between_two_members():
    with running_demo() as server, member(server, "alice") as alice:
        welcome = alice.welcome
        assert welcome["name"] == "alice"
        assert welcome["users"] == ["alice"]
        assert welcome["history"] == []
        assert welcome["backend"] == wscodec.BACKEND
        assert recv_event(alice, "join")["name"] == "alice"  # her own notice
        with member(server, "bob") as bob:
            assert bob.welcome["users"] == ["alice", "bob"]
            joined = recv_event(alice, "join")
            assert joined["name"] == "bob" and joined["online"] == 2
            assert "users" not in joined  # a count: a list would cost n * n names
            bob.send(json.dumps({"type": "message", "text": "  hello <b>alice</b>  "}))
            for client in (alice, bob):
                said = recv_event(client, "message")
                assert said["name"] == "bob"
                assert said["text"] == "hello <b>alice</b>"  # stripped, never altered
                assert isinstance(said["time"], int)
        left = recv_event(alice, "leave")
        assert left["name"] == "bob" and left["online"] == 1


def test_names_are_made_unique_and_normalised():
    with running_demo() as server, member(server, "  al   ice ") as first:
        assert first.welcome["name"] == "al ice"
        with member(server, "al ice") as second, member(server, "al ice") as third:
            assert second.welcome["name"] == "al ice (2)"
            assert third.welcome["name"] == "al ice (3)"
            assert third.welcome["users"] == ["al ice", "al ice (2)", "al ice (3)"]


def test_newcomer_gets_the_last_50_messages():
    with running_demo(limits=FAST) as server, member(server, "talker") as talker:
        for number in range(60):
            talker.send(json.dumps({"type": "message", "text": f"message {number}"}))
        for number in range(60):  # all said, in order
            assert recv_event(talker, "message")["text"] == f"message {number}"
        with member(server, "late") as late:
            history = late.welcome["history"]
            assert [m["text"] for m in history] == [f"message {n}" for n in range(10, 60)]
            assert {m["name"] for m in history} == {"talker"}


def test_stats_reach_the_clients():
    with running_demo(limits=FAST, stats_interval=0.1) as server, member(server, "a") as a:
        a.send(json.dumps({"type": "message", "text": "one"}))
        recv_event(a, "message")
        stats = recv_event(a, "stats")
        assert stats["backend"] == wscodec.BACKEND
        assert stats["online"] == 1
        assert stats["messages"] == 1
        assert stats["in_rate"] > 0 and stats["out_rate"] > 0


# Abuse: a close code for the abuser, service as usual for everyone else ------------------

LIMITS = ChatLimits(max_message_bytes=2048, max_text=100, max_name=10, rate=2.0, burst=3)


def _join_then(server: Any, messages: List[Any]) -> tuple:
    with member(server, "abuser") as client:
        for message in messages:
            try:
                client.send(message)
            except ConnectionClosed:
                break
        return closed_with(client)


@pytest.mark.parametrize(
    "messages, code, reason",
    [
        (["x" * 3000], 1009, None),  # larger than max_size: the codec refuses it
        ([json.dumps({"type": "message", "text": "y" * 101})], 1009, "message too long"),
        (["{not json"], 1008, "invalid JSON"),
        (["[1, 2]"], 1008, "expected a JSON object"),
        ([b"\x00\x01"], 1003, "text messages only"),
        ([json.dumps({"type": "shout", "text": "hi"})], 1008, "unknown message type"),
        ([json.dumps({"type": "message", "text": 42})], 1008, "text must be a string"),
        ([json.dumps({"type": "join", "name": "again"})], 1008, "unknown message type"),
        (
            [json.dumps({"type": "message", "text": f"{n}"}) for n in range(20)],
            1008,
            "rate limit exceeded",
        ),
    ],
    ids=[
        "oversize",
        "long-text",
        "bad-json",
        "not-object",
        "binary",
        "unknown",
        "bad-text",
        "rejoin",
        "rate",
    ],
)
def test_abuse_closes_the_abuser_only(messages, code, reason):
    with running_demo(limits=LIMITS) as server, member(server, "bystander") as bystander:
        got_code, got_reason = _join_then(server, messages)
        assert got_code == code
        if reason is not None:
            assert got_reason == reason
        # The server goes on serving: the bystander saw the abuser leave and can talk.
        assert recv_event(bystander, "leave")["name"] == "abuser"
        bystander.send(json.dumps({"type": "message", "text": "still here"}))
        assert recv_event(bystander, "message")["text"] == "still here"
        with member(server, "newcomer") as newcomer:
            assert newcomer.welcome["users"] == ["bystander", "newcomer"]


def test_rate_limit_allows_the_burst_then_refills():
    limits = ChatLimits(rate=20.0, burst=3)
    with running_demo(limits=limits) as server, member(server, "steady") as client:
        for round_ in range(3):
            for n in range(3):
                client.send(json.dumps({"type": "message", "text": f"{round_}.{n}"}))
            for n in range(3):
                assert recv_event(client, "message")["text"] == f"{round_}.{n}"
            time.sleep(0.2)  # 4 tokens back, capped at the burst of 3
        assert client.state is wscodec.connection.State.OPEN


@pytest.mark.parametrize(
    "join, reason",
    [
        ({"type": "join", "name": "x" * 11}, "invalid nickname"),
        ({"type": "join", "name": "   "}, "invalid nickname"),
        ({"type": "join", "name": "bell\x07"}, "invalid nickname"),
        ({"type": "join", "name": 7}, "invalid nickname"),
        ({"type": "message", "text": "hi"}, "join expected"),
    ],
)
def test_bad_join_is_a_policy_violation(join, reason):
    with running_demo(limits=LIMITS) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as client:
            client.send(json.dumps(join))
            assert closed_with(client) == (1008, reason)
        with member(server, "x" * 10) as ok:  # the longest name allowed
            assert ok.welcome["name"] == "x" * 10


def test_silent_connection_is_closed_after_the_join_timeout():
    with running_demo(limits=ChatLimits(join_timeout=0.3)) as server:
        with connect(f"ws://127.0.0.1:{server.port}/ws") as client:
            assert closed_with(client) == (1008, "join expected")


def test_shutdown_closes_members_with_1001():
    with running_demo() as server, member(server, "a") as a:
        server.shutdown()
        assert closed_with(a)[0] == 1001


# The page over plain HTTP -----------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FILES))
def test_static_files_are_served_with_their_type(path):
    _name, content_type = FILES[path]
    with running_demo() as server:
        response = http_get(server.port, path)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
    assert int(response.headers["Content-Length"]) == len(response.body) > 0
    assert response.body == StaticFiles().get(path)


def test_index_links_its_assets():
    page = StaticFiles().get("/").decode()
    assert 'src="app.js"' in page and 'href="style.css"' in page
    script = StaticFiles().get("/app.js").decode()
    # User data only ever goes through textContent: no HTML parsing sinks at all.
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert '"/ws"' in script and "location.host" in script


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/static/app.js",
        "/../pyproject.toml",
        "/..%2f..%2fpyproject.toml",
        "/%2e%2e/wscodec/__init__.py",
        "/app.js/../index.html",
        "//etc/passwd",
        "/chat.py",
        "/__init__.py",
        "/APP.JS",
    ],
)
def test_other_paths_are_404(path):
    with running_demo() as server:
        response = http_get(server.port, path)
    assert response.status == 404
    assert response.body == b"not found\n"


def test_query_string_is_ignored_and_other_methods_refused():
    with running_demo() as server:
        assert http_get(server.port, "/?v=2").status == 200
        refused = http_get(server.port, "/", method="POST")
        assert refused.status == 405 and refused.headers["Allow"] == "GET"
        # /ws without the upgrade headers: the WebSocket endpoint asks for an upgrade.
        assert http_get(server.port, "/ws").status == 426


def test_websocket_on_other_paths_is_refused():
    with running_demo() as server:
        with pytest.raises(InvalidStatus) as caught:
            connect(f"ws://127.0.0.1:{server.port}/chat")
        assert caught.value.response.status == 404


def test_cross_origin_websocket_is_refused():
    with running_demo() as server:
        uri = f"ws://127.0.0.1:{server.port}/ws"
        with pytest.raises(InvalidStatus) as caught:
            connect(uri, origin="http://evil.example")
        assert caught.value.response.status == 403
        with connect(uri, origin=f"http://127.0.0.1:{server.port}") as same:
            same.send(json.dumps({"type": "join", "name": "local"}))
            assert recv_event(same, "welcome")["name"] == "local"


# The pieces ----------------------------------------------------------------------------------


class FakeConnection:
    """Records what the room sends (a stand-in for a SyncConnection).

    The room's outbox threads call ``send``; ``settled`` waits until they
    have sent ``count`` messages in all.
    """

    remote_address = ("fake", 0)

    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []

    def send(self, message: str) -> None:
        self.sent.append(json.loads(message))

    def send_now(self, message: str) -> bool:
        return False  # as a socket that never takes a message at once: the outbox path

    def settled(self, count: int, timeout: float = 5.0) -> FakeConnection:
        deadline = time.monotonic() + timeout
        while len(self.sent) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)  # and no more arrive
        return self

    def kinds(self) -> List[str]:
        return [m["type"] for m in self.sent]


def test_two_rooms_on_one_broker_share_everything():
    """Two processes' rooms on a shared broker behave as one room (the Redis case)."""
    broker = LocalBroker()
    first, second = Room(broker), Room(broker)
    ann, ben = FakeConnection(), FakeConnection()
    assert first.join(ann, "ann", ChatLimits()) == "ann"
    assert second.join(ben, "ann", ChatLimits()) == "ann (2)"
    second.say("ann (2)", "hi from the other worker")
    assert ann.settled(4).sent[-1]["text"] == "hi from the other worker"
    assert first.users == second.users == ["ann", "ann (2)"]
    assert first.history == second.history
    first.leave(ann)
    assert ben.settled(4).sent[-1] == {
        **ben.sent[-1],
        "type": "leave",
        "name": "ann",
        "online": 1,
    }
    assert ann.kinds() == ["welcome", "join", "join", "message"]
    first.close()
    second.say("ann (2)", "after close")
    assert len(first.history) == 1 and len(second.history) == 2


def test_room_ignores_malformed_broker_events():
    broker = LocalBroker()
    room = Room(broker, history=2)
    listener = FakeConnection()
    room.join(listener, "l", ChatLimits())
    broker.publish("chat", "not json")
    broker.publish("chat", json.dumps({"no": "type"}))
    for n in range(3):
        room.say("l", str(n))
    assert [m["text"] for m in room.history] == ["1", "2"]
    assert listener.settled(5).kinds() == ["welcome", "join", "message", "message", "message"]


def test_token_bucket():
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_active_senders_forget_those_quiet_for_the_window():
    now = [0.0]
    senders = ActiveSenders(window=5.0, clock=lambda: now[0])
    for name in ("a", "b", "a"):
        senders.saw(name)
    assert senders.count() == 2
    now[0] = 3.0
    senders.saw("b")
    now[0] = 6.0  # "a" last spoke at 0, "b" at 3
    assert senders.count() == 1
    now[0] = 9.0
    assert senders.count() == 0


def test_send_share_divides_the_room_deliveries_among_senders():
    now = [0.0]
    limits = ChatLimits(rate=5.0, burst=10, max_deliveries=1000)
    share = SendShare(limits, clock=lambda: now[0])
    # 100 members, 50 senders: 1000 / 100 / 50 = 0.2 messages a second each.
    assert share.take(members=100, senders=50)  # the burst: 1 message (under 2 s of share)
    assert not share.take(members=100, senders=50)
    now[0] = 4.9
    assert not share.take(members=100, senders=50)
    now[0] = 5.1
    assert share.take(members=100, senders=50)
    # A quiet room: the member's own rate applies, not more.
    now[0] = 100.0
    taken = sum(share.take(members=2, senders=1) for _ in range(20))
    assert taken == 10  # the member's burst


def test_rate_meter():
    now = [1000.0]
    meter = RateMeter(window=5.0, clock=lambda: now[0])
    assert meter.rate() == 0
    meter.add(10)
    now[0] += 4.0
    meter.add(10)
    assert meter.rate() == pytest.approx(20 / 4.0)
    now[0] += 3.0  # the first 10 are out of the window
    assert meter.rate() == pytest.approx(10 / 5.0)
    assert meter.total == 20


@pytest.mark.parametrize(
    "name, expected",
    [
        ("alice", "alice"),
        ("  a  b\tc ", "a b c"),
        ("é" * 24, "é" * 24),
        ("é" * 25, None),
        ("", None),
        ("\u200b", None),  # a format character, invisible
        ("a\nb", "a b"),
        ("a\x00b", None),
        (None, None),
        (["alice"], None),
    ],
)
def test_validate_name(name, expected):
    assert validate_name(name, 24) == expected


class StuckConnection(FakeConnection):
    """A member whose peer does not read: ``send`` blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.closed_with: List[int] = []

    def send(self, message: str) -> None:
        self.release.wait(10)
        super().send(message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with.append(code)


def test_a_member_too_far_behind_is_closed_with_1013_and_its_backlog_dropped():
    """Issue 21, item 9: what waits for one member is bounded (messages and bytes, and
    an equal share of a total); beyond it the member is closed with 1013 and the
    others keep getting every message."""
    limits = ChatLimits(max_backlog_messages=20, max_backlog_bytes=8192, history=0)
    room = Room(LocalBroker(), limits=limits)
    stuck, fine = StuckConnection(), FakeConnection()
    room.join(stuck, "stuck", limits)
    room.join(fine, "fine", limits)
    try:
        for n in range(200):
            room.say("fine", f"message {n}")
            assert room.budget.total <= 2 * 8192 + 4096  # the welcomes aside
            # "fine" keeps up: its outbox thread gets to run before the next
            # message (on a slow machine, under ASan, it could fall 20 behind
            # too, and be closed as well). The stuck one never does.
            fine_deadline = time.monotonic() + 5
            while len(fine.sent) < n + 3 and time.monotonic() < fine_deadline:
                time.sleep(0.001)
        deadline = time.monotonic() + 5
        while not stuck.closed_with and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stuck.closed_with == [1013]
        assert room.budget.dropped == 1
        texts = [m["text"] for m in fine.settled(202).sent if m["type"] == "message"]
        assert texts == [f"message {n}" for n in range(200)]
    finally:
        stuck.release.set()
    room.leave(stuck)
    room.leave(fine)
    assert room.budget.total == 0 and room.budget.members == 0


def test_the_total_backlog_is_shared_between_members():
    limits = ChatLimits(max_backlog_bytes=64 * 1024, max_total_backlog_bytes=64 * 1024, history=0)
    room = Room(LocalBroker(), limits=limits)
    stuck = [StuckConnection() for _ in range(8)]
    try:
        for n, member_ in enumerate(stuck):
            room.join(member_, f"m{n}", limits)
        for _ in range(400):
            room.say("m0", "x" * 200)
            assert room.budget.total <= 64 * 1024 + 8 * 1024
        assert room.budget.dropped == 8  # each past its 8 KiB share, long before 64 KiB
    finally:
        for member_ in stuck:
            member_.release.set()


def test_json_nested_too_deeply_is_a_policy_violation():
    """Issue 21, item 9: not RecursionError (1011, and a traceback in the log)."""
    with running_demo() as server, member(server, "deep") as client:
        client.send('{"type": "message", "text": ' + "[" * 3000)
        assert closed_with(client) == (1008, "JSON nested too deeply")


class FakeTransport:
    """What LoopOutbox reads of a transport: the bytes it holds, and whether it closes."""

    def __init__(self) -> None:
        self.buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False


class FakeLoopConnection:
    """A stand-in for an asyncio ServerConnection; ``reads`` False: its peer reads nothing,
    so everything sent stays in the transport's buffer."""

    remote_address = ("fake", 0)

    def __init__(self, reads: bool = True) -> None:
        self.transport = FakeTransport()
        self.reads = reads
        self.sent: List[Dict[str, Any]] = []
        self.closed_with: List[int] = []

    def send_nowait(self, message: str) -> None:
        self.sent.append(json.loads(message))
        if not self.reads:
            self.transport.buffered += len(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with.append(code)


def test_on_asyncio_a_member_too_far_behind_is_closed_with_1013_and_its_backlog_dropped():
    """The asyncio demo's outbox is the transport's buffer: what waits there for one
    member is bounded by its share, and past it the member is closed with 1013 while
    the others get every message."""
    from wscodec.demo.on_asyncio import LoopOutbox

    async def main() -> None:
        limits = ChatLimits(max_backlog_bytes=8192, history=0)
        room = Room(LocalBroker(), limits=limits, outbox=LoopOutbox)
        stuck, fine = FakeLoopConnection(reads=False), FakeLoopConnection()
        room.join(stuck, "stuck", limits)
        room.join(fine, "fine", limits)
        for n in range(200):
            room.say("fine", f"message {n}")
            assert stuck.transport.buffered <= 8192
        await asyncio.sleep(0)  # the close task runs
        assert stuck.closed_with == [1013]
        assert room.budget.dropped == 1
        texts = [m["text"] for m in fine.sent if m["type"] == "message"]
        assert texts == [f"message {n}" for n in range(200)]
        room.leave(stuck)
        room.leave(fine)
        assert room.budget.members == 0

    asyncio.run(main())


def test_a_member_that_never_reads_is_dropped_and_the_room_goes_on():
    """Over real sockets, on both servers: a member whose socket is never read is
    closed with 1013 once its backlog passes its share; the sender gets all of its
    own messages back, in order."""
    big = ChatLimits(
        rate=1e6, burst=1_000_000, max_message_bytes=2**17, max_text=100_000, history=0
    )
    text = "x" * 60_000
    with running_demo(limits=big, stats_interval=60, write_timeout=1.0) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as stuck:
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            stuck.sendall(
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            join = json.dumps({"type": "join", "name": "stuck"}).encode()
            stuck.sendall(bytes([0x81, 0x80 | len(join)]) + b"\0\0\0\0" + join)
            with member(server, "talker", max_size=2**17) as talker:
                room = server.app.room
                deadline = time.monotonic() + 10
                while len(room.users) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                sent = 0
                while not room.budget.dropped and sent < 400 and time.monotonic() < deadline:
                    talker.send(json.dumps({"type": "message", "text": f"{sent} {text}"}))
                    sent += 1
                    echoed = recv_event(talker, "message")
                    assert echoed["text"] == f"{sent - 1} {text}"
                assert room.budget.dropped == 1, f"not dropped after {sent} messages of 60 KB"
                # It cannot read our close frame: it leaves the room when the
                # closing handshake times out (asyncio: close_timeout, 2 s here)
                # or a write does (threaded: write_timeout, 1 s here).
                deadline = time.monotonic() + 8
                while room.users != ["talker"] and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert room.users == ["talker"]
                assert room.budget.members == 1


def test_members_who_all_speak_at_once_get_the_rooms_budget_not_n_times_it():
    """Each sender's share follows who spoke lately, so n members starting together
    each hold a token: without the room's own cap, n messages to n members went out
    at once (1,000,000 deliveries at 1,000 members, 25 s of the asyncio loop's time,
    during which a newcomer's handshake waited)."""
    from wscodec.demo.on_asyncio import LoopOutbox

    limits = ChatLimits(max_deliveries=1000, history=0)
    room = Room(LocalBroker(), limits=limits, outbox=LoopOutbox)
    members = [FakeLoopConnection() for _ in range(100)]
    for n, connection in enumerate(members):
        room.join(connection, f"m{n}", limits)
    admitted = [room.admit(connection) for connection in members]
    # Half a second's budget at once: 500 deliveries, 5 messages to 100 members.
    assert 1 <= sum(admitted) <= 6, sum(admitted)
    refused = members[admitted.index(False)]
    assert refused.sent[-1]["type"] == "busy"
