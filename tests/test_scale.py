"""Scaling out (issue 11): brokers, a real redis-server, worker processes.

Tests marked ``redis`` start and stop their own ``redis-server`` (Debian's
package) on a free 127.0.0.1 port, without persistence. Without the binary
they skip, except in CI (``CI`` set) on Linux where they fail: ``.ci/run``
installs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from tests.helpers import system_program_missing
from wscodec import ConnectionClosed, connect
from wscodec.brokers import LocalBroker, broker_from_url
from wscodec.workers import can_reuse_port

REDIS_SERVER = os.environ.get("WSCODEC_REDIS_SERVER") or shutil.which("redis-server") or ""
COMMAND = [sys.executable, "-m", "wscodec"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check}")
        time.sleep(interval)


def running_pid(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as gone where /proc tells)."""
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    try:  # pragma: no cover - no /proc
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


#: The worker tests send POSIX signals to processes.
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


# A real redis-server ------------------------------------------------------------------


class RedisServer:
    """``redis-server`` on a free port; :meth:`kill` and :meth:`start` again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(self.ping, timeout=10)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> Any:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if not REDIS_SERVER:
        system_program_missing("redis-server not found (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Inbox:
    """A subscriber that records what it gets."""

    def __init__(self) -> None:
        self.messages: List[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


# Brokers -----------------------------------------------------------------------------------


def test_broker_from_url():
    for url in (None, "", "local", "local://"):
        assert type(broker_from_url(url)) is LocalBroker
    for url in ("amqp://host/", "127.0.0.1:6379", "http://x"):
        with pytest.raises(ValueError, match="unsupported broker URL"):
            broker_from_url(url)


def test_local_broker_delivers_in_order_and_unsubscribes():
    broker = LocalBroker()
    first, second = Inbox(), Inbox()
    stop_first = broker.subscribe("room", first)
    broker.subscribe("room", second)
    broker.subscribe("other", lambda message: 1 / 0)  # a broken subscriber elsewhere
    for n in range(5):
        broker.publish("room", str(n), keep=3)
    stop_first()
    broker.publish("room", "late")
    broker.publish("other", "ignored")  # logged, not raised
    assert first.messages == ["0", "1", "2", "3", "4"]
    assert second.messages == ["0", "1", "2", "3", "4", "late"]
    assert broker.history("room", 50) is None  # the room keeps its own
    assert sorted(broker.channels()) == ["other", "room"]


def test_redis_broker_without_redis_delivers_locally(caplog):
    """Redis unreachable from the start: no crash, no wait, local delivery, one warning."""
    caplog.set_level(logging.WARNING, logger="wscodec.brokers.redis")
    started = time.monotonic()
    broker = broker_from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        inbox = Inbox()
        broker.subscribe("room", inbox)
        for n in range(20):
            broker.publish("room", str(n), keep=5)
        assert time.monotonic() - started < 3
        assert inbox.messages == [str(n) for n in range(20)]
        assert broker.history("room", 5) is None
        assert not broker.connected  # type: ignore[attr-defined]
        time.sleep(0.5)  # reconnection attempts go on, quietly
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "unreachable" in warnings[0].getMessage()
    finally:
        broker.close()


@pytest.mark.redis
def test_redis_broker_fans_out_across_brokers_with_a_capped_history(redis_server):
    from wscodec.brokers.redis import RedisBroker

    one, two = RedisBroker(redis_server.url), RedisBroker(redis_server.url)
    try:
        assert one.connected and two.connected
        inbox_one, inbox_two = Inbox(), Inbox()
        one.subscribe("room", inbox_one)
        two.subscribe("room", inbox_two)
        other = Inbox()
        two.subscribe("elsewhere", other)
        sent = [f"m{n}" for n in range(30)]
        for message in sent:
            one.publish("room", message, keep=10)
        two.publish("room", "from two")
        # The publisher's own subscribers get each message once, at once.
        assert inbox_one.messages[:30] == sent
        eventually(lambda: len(inbox_two.messages) == 31)
        # Each publisher's messages arrive in order, its own subscribers' first
        # (two's "from two" may come before one's last messages reach two).
        assert [m for m in inbox_two.messages if m != "from two"] == sent
        assert inbox_two.messages.count("from two") == 1
        eventually(lambda: len(inbox_one.messages) == 31)
        time.sleep(0.3)
        assert inbox_one.messages == [*sent, "from two"]  # no echo from Redis
        assert other.messages == []
        # The history: a list capped at 10 in Redis, the same for every node.
        assert one.history("room", 50) == sent[-10:] == two.history("room", 50)
        assert one.history("room", 3) == sent[-3:]
        assert redis_server.command("LLEN", "wscodec:history:room") == 10
    finally:
        one.close()
        two.close()


@pytest.mark.redis
def test_redis_outage_keeps_local_delivery_and_fan_out_resumes(redis_server, caplog):
    from wscodec.brokers.redis import RedisBroker

    caplog.set_level(logging.INFO, logger="wscodec.brokers.redis")
    one, two = RedisBroker(redis_server.url), RedisBroker(redis_server.url)
    try:
        inbox_one, inbox_two = Inbox(), Inbox()
        one.subscribe("room", inbox_one)
        two.subscribe("room", inbox_two)
        one.publish("room", "before")
        eventually(lambda: inbox_two.messages == ["before"])

        redis_server.kill()
        for n in range(20):
            started = time.monotonic()
            one.publish("room", f"during {n}", keep=5)
            assert time.monotonic() - started < 1.0  # never stalls on Redis
            assert inbox_one.messages[-1] == f"during {n}"  # delivered locally, at once
        assert one.history("room", 5) is None
        eventually(lambda: not one.connected and not two.connected, timeout=5)
        time.sleep(1.0)  # several reconnection attempts fail meanwhile
        down = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down) == 2, [r.getMessage() for r in down]  # one per broker, not per message
        assert inbox_two.messages == ["before"]

        redis_server.start()
        eventually(lambda: one.connected and two.connected, timeout=15)
        one.publish("room", "after")
        eventually(lambda: inbox_two.messages[-1:] == ["after"])
        two.publish("room", "back")
        eventually(lambda: inbox_one.messages[-1:] == ["back"])
        resumed = [r for r in caplog.records if "reachable again" in r.getMessage()]
        assert len(resumed) == 2
        assert "20 message(s)" in " ".join(r.getMessage() for r in resumed)
    finally:
        one.close()
        two.close()


# Commands in subprocesses --------------------------------------------------------------------


class Command:
    """A ``wscodec`` command in a subprocess, its stdout read line by line."""

    def __init__(self, *args: str, argv: Optional[List[str]] = None) -> None:
        self.process = subprocess.Popen(
            argv or [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        self.lines: List[str] = []
        self._buffer = b""

    def wait_for(self, pattern: str, timeout: float = 30, start: int = 0) -> re.Match[str]:
        """Read stdout until a line (from index ``start``) matches ``pattern``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                for line in self.lines[start:]:
                    match = re.search(pattern, line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise AssertionError(f"no line matching {pattern!r} in {self.lines}")
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise AssertionError(f"exited before {pattern!r}: {self.lines} {err}")
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                self.lines += [line.decode() for line in complete]

    def all_matches(self, pattern: str) -> List[re.Match[str]]:
        return [m for m in (re.search(pattern, line) for line in self.lines) if m]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def command(*args: str) -> Iterator[Command]:
    process = Command(*args)
    try:
        yield process
    finally:
        process.kill()


@contextlib.contextmanager
def workers(*args: str, count: int = 2) -> Iterator[tuple]:
    """``wscodec serve ... --workers count``: the command, its port and its worker pids."""
    with command("serve", "--port", "0", "--workers", str(count), *args) as process:
        port = int(process.wait_for(r"on port (\d+)").group(1))
        for n in range(count):
            process.wait_for(rf"worker {n} \(pid \d+\) ready")
        pids = {int(m.group(1)) for m in process.all_matches(r"worker \d \(pid (\d+)\) ready")}
        try:
            yield process, port, pids
        finally:
            for pid in pids:  # never leave a worker behind, whatever happened
                if running_pid(pid):
                    os.kill(pid, signal.SIGKILL)


def worker_of(port: int) -> int:
    """The pid of the worker that serves a new echo connection (and that it echoes)."""
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=5, close_timeout=2) as client:
        client.send("ping")
        assert client.recv(timeout=5) == "ping"
        return int(client.response.headers["X-Wscodec-Worker"])


class ChatClient:
    """A chat member over a real connection."""

    def __init__(self, port: int, name: str) -> None:
        self.connection = connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5, close_timeout=2)
        self.connection.send(json.dumps({"type": "join", "name": name}))
        self.welcome = self.next("welcome")

    def next(self, kind: str, timeout: float = 10.0, **fields: Any) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = json.loads(self.connection.recv(timeout=max(0.01, deadline - time.monotonic())))
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event

    def say(self, text: str) -> None:
        self.connection.send(json.dumps({"type": "message", "text": text}))

    def close(self) -> None:
        self.connection.close()


def chat_port(process: Command) -> int:
    return int(process.wait_for(r"http://127\.0\.0\.1:(\d+)/").group(1))


# Worker processes ------------------------------------------------------------------------------


@posix_only
def test_workers_spread_connections_and_a_killed_worker_is_replaced():
    with workers("--app", "echo") as (process, port, pids):
        assert len(pids) == 2
        seen = {worker_of(port) for _ in range(24)}
        if can_reuse_port():
            assert seen == pids  # SO_REUSEPORT spread the connections over both
        else:  # pragma: no cover - one shared socket: whoever accepts first
            assert seen <= pids

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        process.wait_for(rf"pid {victim}\) exited with signal 9; restarting")
        start = len(process.lines)
        replacement = int(process.wait_for(r"worker \d \(pid (\d+)\) ready", start=start)[1])
        assert replacement not in pids and running_pid(replacement)
        survivors = (pids - {victim}) | {replacement}
        seen = {worker_of(port) for _ in range(24)}
        assert seen == survivors if can_reuse_port() else seen <= survivors

        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(20) == 0
        process.wait_for("^stopping 2 worker\\(s\\)$")
        process.wait_for("^stopped$")
        for pid in survivors:
            assert not running_pid(pid)


@posix_only
def test_ctrl_c_stops_every_worker_and_closes_their_connections_with_1001():
    with workers("--app", "echo") as (process, port, pids):
        client = connect(f"ws://127.0.0.1:{port}/", open_timeout=5, close_timeout=2)
        process.process.send_signal(signal.SIGINT)
        assert process.process.wait(20) == 0
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert client.close_code == 1001
        assert not any(running_pid(pid) for pid in pids)


@posix_only
def test_a_killed_supervisor_leaves_no_orphan_workers():
    with workers("--app", "echo") as (process, port, pids):
        process.process.kill()
        process.process.wait(10)
        eventually(lambda: not any(running_pid(pid) for pid in pids), timeout=10)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


@posix_only
def test_workers_share_one_inherited_socket_without_so_reuseport():
    """The portable path: one listening socket, inherited by every worker."""
    script = (
        "import sys, functools\n"
        "from wscodec.apps import echo_app\n"
        "from wscodec.workers import run\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(run(functools.partial(echo_app), '127.0.0.1', 0, workers=2,\n"
        "                 reuse_port=False, stream=sys.stdout))\n"
    )
    process = Command(argv=[sys.executable, "-c", script])
    try:
        port = int(process.wait_for(r"on port (\d+) \(one shared listening socket\)")[1])
        process.wait_for(r"worker 0 \(pid \d+\) ready")
        process.wait_for(r"worker 1 \(pid \d+\) ready")
        pids = {int(m[1]) for m in process.all_matches(r"\(pid (\d+)\) ready")}
        seen = {worker_of(port) for _ in range(10)}
        assert seen and seen <= pids
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(20) == 0
        assert not any(running_pid(pid) for pid in pids)
    finally:
        process.kill()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "0"], "invalid count 0"),
        (["--broker", "amqp://x/"], "unsupported broker URL"),
    ],
)
def test_bad_scale_options_are_one_line(args, message):
    result = subprocess.run(
        [*COMMAND, "serve", *args], capture_output=True, text=True, timeout=30, env=ENV
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_serve_on_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*COMMAND, "serve", "--workers", "2", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env=ENV,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"wscodec: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )


# The chat across nodes ------------------------------------------------------------------------


@posix_only
@pytest.mark.redis
def test_two_demo_servers_sharing_redis_form_one_room_and_survive_an_outage(redis_server):
    with (
        command("demo", "--port", "0", "--broker", redis_server.url) as node1,
        command("demo", "--port", "0", "--broker", redis_server.url) as node2,
    ):
        port1, port2 = chat_port(node1), chat_port(node2)
        alice = ChatClient(port1, "alice")
        bob = ChatClient(port2, "bob")
        assert alice.welcome["worker"] != bob.welcome["worker"]  # two processes
        # Alice's join reaches node 2 through Redis: before bob came (he is told
        # in his welcome) or just after (he gets the join event).
        if bob.welcome["users"] != ["alice", "bob"]:
            assert bob.welcome["users"] == ["bob"]
            assert bob.next("join", name="alice")["online"] == 2
        assert alice.next("join", name="bob")["online"] == 2

        alice.say("hello from node 1")
        assert bob.next("message")["text"] == "hello from node 1"
        bob.say("hello from node 2")
        assert alice.next("message", text="hello from node 1")
        assert alice.next("message")["text"] == "hello from node 2"

        # History lives in Redis, capped at 50: a newcomer on either node gets it.
        for n in range(3):
            alice.say(f"filler {n}")
        assert bob.next("message", text="filler 2")  # so node 1 has written them to Redis
        carol = ChatClient(port2, "carol")
        texts = [m["text"] for m in carol.welcome["history"]]
        assert texts[:2] == ["hello from node 1", "hello from node 2"]
        assert texts[2:] == [f"filler {n}" for n in range(3)]
        assert redis_server.command("LLEN", "wscodec:history:chat") == 5

        # Redis dies: each node keeps delivering to its own members, nobody stalls.
        redis_server.kill()
        alice.say("during the outage")
        assert alice.next("message", text="during the outage", timeout=3)
        carol.say("node 2 alone")
        assert bob.next("message", text="node 2 alone", timeout=3)
        assert node1.process.poll() is None and node2.process.poll() is None

        # Redis is back: fan-out across the nodes resumes by itself.
        redis_server.start()
        deadline = time.monotonic() + 30
        n = 0
        while True:
            n += 1
            alice.say(f"after {n}")
            try:
                event = bob.next("message", timeout=0.5)
                if event["text"].startswith("after"):
                    break
            except TimeoutError:
                pass
            assert time.monotonic() < deadline, "fan-out did not resume"
        bob.say("welcome back")
        eventually(lambda: alice.next("message", timeout=5)["text"] == "welcome back")
        for client in (alice, bob, carol):
            client.close()
        warnings = node1.process.stderr
        assert warnings is not None
        node1.process.send_signal(signal.SIGTERM)
        assert node1.process.wait(20) == 0
        stderr = warnings.read().decode()
        assert "Traceback" not in stderr
        assert stderr.count("unreachable") == 1, stderr
        assert "reachable again" in stderr


@posix_only
@pytest.mark.redis
def test_demo_with_two_workers_and_redis_is_one_room(redis_server):
    with command("demo", "--port", "0", "--workers", "2", "--broker", redis_server.url) as process:
        port = chat_port(process)
        process.wait_for(r"worker 0 \(pid \d+\) ready")
        process.wait_for(r"worker 1 \(pid \d+\) ready")
        first = ChatClient(port, "first")
        others = []
        for n in range(30):  # until one lands on the other worker
            other = ChatClient(port, f"other{n}")
            others.append(other)
            if other.welcome["worker"] != first.welcome["worker"]:
                break
        else:
            raise AssertionError("every connection landed on one worker")
        first.say("across workers")
        assert other.next("message")["text"] == "across workers"
        other.say("and back")
        assert first.next("message", text="and back")
        for client in [first, *others]:
            client.close()
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(20) == 0
