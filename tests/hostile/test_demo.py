"""Attacks on the chat demo (issue 21, item 9): idle sockets, Origin, deep JSON.

Every client here speaks the chat's protocol over a raw socket: a ``join``
first, then ``message`` events (see :mod:`wscodec.demo.chat`). Attackers
connect from other loopback addresses (127.0.1.x; Linux routes all of
127.0.0.0/8 to the loopback interface) so that the fresh client, from
127.0.0.1, is judged on its own address.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest

from wscodec import FrameParser, Opcode

from .harness import FULL_SCALE, close_code, frame, handshake_request, read_head, target

# Idle sockets one address opens (the demo's max_connections is 256).
IDLE_SOCKETS = 256
# How deep the hostile JSON nests (the message stays under the demo's 4 KiB).
DEEP = 3000


def open_socket(
    port: int, source: str = "127.0.0.1", rcvbuf: Optional[int] = None
) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # set before connecting, so the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5.0)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def member(
    port: int, name: str, source: str = "127.0.0.1", rcvbuf: Optional[int] = None
) -> socket.socket:
    """A raw socket that opened /ws and sent its join (its welcome is not read)."""
    sock = open_socket(port, source, rcvbuf)
    try:
        sock.sendall(handshake_request("/ws"))
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101"), head[:80]
        sock.sendall(frame(Opcode.TEXT, json.dumps({"type": "join", "name": name}).encode()))
    except BaseException:
        sock.close()
        raise
    return sock


def say(text: str) -> bytes:
    return frame(Opcode.TEXT, json.dumps({"type": "message", "text": text}).encode())


def test_idle_sockets_from_one_address_leave_room_for_others(backend: str) -> None:
    """256 sockets from one address that never send a byte do not take every slot:
    beyond the per-address limit they get 503 at once, and others get in."""
    with target("demo", backend) as server:
        idle: List[socket.socket] = []
        try:
            for _ in range(IDLE_SOCKETS):
                idle.append(open_socket(server.port, "127.0.1.1"))
            time.sleep(0.5)  # the server accepted them all
            server.assert_serves()
            with contextlib.closing(member(server.port, "fresh")) as sock:
                assert until_message_or_welcome(sock, time.monotonic() + 1.0)
            refused = 0
            for sock in idle:
                sock.settimeout(0.2)
                try:
                    refused += sock.recv(64).startswith(b"HTTP/1.1 503")
                except OSError:
                    pass
        finally:
            for sock in idle:
                sock.close()
    assert refused >= IDLE_SOCKETS - 32, f"only {refused} of {IDLE_SOCKETS} got 503"


def until_message_or_welcome(sock: socket.socket, deadline: float) -> bool:
    """Whether the welcome arrives before the deadline."""
    parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x70)
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except (socket.timeout, ConnectionError):
            return False
        if not data:
            return False
        for received in parser.feed(data):
            if received.opcode == Opcode.TEXT:
                if json.loads(bytes(received.payload)).get("type") == "welcome":
                    return True
    return False


def handshake_status(port: int, host: str, origin: Optional[str]) -> int:
    request = handshake_request("/ws").replace(b"Host: 127.0.0.1\r\n", f"Host: {host}\r\n".encode())
    if origin is not None:
        request = request[:-2] + f"Origin: {origin}\r\n\r\n".encode()
    with contextlib.closing(open_socket(port)) as sock:
        sock.sendall(request)
        head = read_head(sock)
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "host, origin, status",
    [
        # DNS rebinding: the attacker's name resolves to this server, and the browser
        # sends that name as both Host and Origin.
        ("evil.example:{port}", "http://evil.example:{port}", 403),
        ("127.0.0.1:{port}", "http://evil.example:{port}", 403),
        ("127.0.0.1:{port}", "http://127.0.0.1:{other}", 403),
        ("127.0.0.1:{port}", "null", 403),
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}", 101),
        ("localhost:{port}", "http://localhost:{port}", 101),
        ("127.0.0.1:{port}", None, 101),
    ],
)
def test_origin_allow_list_is_the_served_host_and_port(
    backend: str, host: str, origin: Optional[str], status: int
) -> None:
    with target("demo", backend) as server:
        port, other = server.port, server.port + 1
        got = handshake_status(
            port,
            host.format(port=port),
            None if origin is None else origin.format(port=port, other=other),
        )
        server.assert_serves()
    assert got == status


def test_deeply_nested_json_gets_1008(backend: str) -> None:
    """JSON nested thousands deep (within the 4 KiB message limit): 1008, as docs/cli.md
    says, not RecursionError answered with 1011."""
    with target("demo", backend) as server:
        for payload in ("[" * DEEP, '{"type": "message", "text": ' + "[" * DEEP):
            with contextlib.closing(member(server.port, "deep")) as sock:
                sock.sendall(frame(Opcode.TEXT, payload.encode()))
                code = close_code(sock, within=5)
            assert code == 1008, f"close code {code} for {payload[:40]}..."
        with contextlib.closing(open_socket(server.port)) as sock:  # before the join, too
            sock.sendall(handshake_request("/ws"))
            assert read_head(sock).startswith(b"HTTP/1.1 101")
            sock.sendall(frame(Opcode.TEXT, ("{" * DEEP).encode()))
            assert close_code(sock, within=5) == 1008
        server.assert_serves()


# Members flooding the room, each within its own rate limit (the demo allows
# 5 a second): the gate's scale, and the reported one in .ci/full (issue 27:
# 1,000 on the demo's asyncio server, its default; 250 on the threaded one,
# which runs three threads a member).
FLOOD_MEMBERS = (
    {"asyncio": 1000, "threaded": 250} if FULL_SCALE else {"asyncio": 60, "threaded": 60}
)
FLOOD_RATE = 3.0
FLOOD_SECONDS = 12.0


def _answer(sock: socket.socket, parser: FrameParser, wanted: str, deadline: float) -> str:
    """Read chat events until the room answers a message with text ``wanted``: its
    broadcast (``"message"``) or a ``"busy"`` notice; ``""`` if neither came in time."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(1 << 20)
        except (socket.timeout, ConnectionError):
            return ""
        if not data:
            return ""
        for received in parser.feed(data):
            if received.opcode == Opcode.TEXT:
                event = json.loads(bytes(received.payload))
                if event.get("type") == "busy":
                    return "busy"
                if event.get("text") == wanted:
                    return "message"
    return ""


def _absorbed_the_joins(port: int, within: float) -> float:
    """Seconds until a probe member is welcomed, once every flood member joined.

    Each join is announced to every member: n members joining at once make
    n * n / 2 notices (500,000 at 1,000), which the server sends before it
    gets to a newcomer. The steady state is what the test measures after it.
    """
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
        sock.sendall(handshake_request("/ws"))
        assert read_head(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(frame(Opcode.TEXT, json.dumps({"type": "join", "name": "probe"}).encode()))
        assert until_message_or_welcome(sock, started + within), f"no welcome within {within} s"
    return time.monotonic() - started


@pytest.mark.parametrize("demo_server", ["asyncio", "threaded"])
def test_members_within_their_rate_do_not_delay_everyone(backend: str, demo_server: str) -> None:
    """Many members sending within their own limit: each of an observer's messages is
    answered within 1 s (its broadcast, or a ``busy`` notice once the room is at its
    delivery budget), a newcomer is welcomed within 1 s, nobody reading is closed, and
    the server's memory stays bounded."""
    script = Path(__file__).with_name("chat_flood.py")
    members = FLOOD_MEMBERS[demo_server]
    with target("demo", backend, server=demo_server, max_connections=members + 64) as server:
        rss_before = server.rss()
        flood = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(server.port),
                str(members),
                str(FLOOD_RATE),
                str(FLOOD_SECONDS),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert flood.stdout is not None
            joined = json.loads(flood.stdout.readline())
            assert joined["members"] == members
            catch_up = _absorbed_the_joins(server.port, within=30.0)
            time.sleep(2.0)  # the flood reaches its steady rate
            latencies: List[float] = []
            answers: List[str] = []
            with contextlib.closing(member(server.port, "observer")) as sock:
                parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x70)
                for index in range(10):
                    text = f"observer {index}"
                    started = time.monotonic()
                    sock.sendall(say(text))
                    answer = _answer(sock, parser, text, started + 5.0)
                    latencies.append(time.monotonic() - started if answer else float("inf"))
                    answers.append(answer)
                    time.sleep(0.3)  # within the observer's own limit
            welcome_started = time.monotonic()
            with contextlib.closing(member(server.port, "newcomer")) as sock:
                welcomed = until_message_or_welcome(sock, welcome_started + 1.0)
            welcome = time.monotonic() - welcome_started
            done = json.loads(flood.stdout.readline())
            rss_after = server.rss()
        finally:
            flood.kill()
            flood.wait()
        server.assert_serves()
    latencies.sort()
    print(
        f"observer latencies (s): {[round(x, 3) for x in latencies]};"
        f" {answers.count('message')} published, {answers.count('busy')} busy;"
        f" welcome {welcome:.3f} s; flood {done};"
        f" server RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB;"
        f" joins absorbed {catch_up:.2f} s after the last"
    )
    # What waits for the members is bounded (8 MiB for all, max_total_backlog_bytes),
    # and each costs a few KiB on asyncio, about 200 KiB on threads (stacks touched).
    per_member = 16 * 1024 if demo_server == "asyncio" else 256 * 1024
    assert rss_after - rss_before <= 8 * 2**20 + members * per_member, "server memory grew"
    assert welcomed, f"the newcomer's welcome took over 1 s ({welcome:.2f} s)"
    # One outlier of ten may come from the shared machine (a full run saw
    # 9 answers within 4 ms and one at 1.3 s); the bug this guards against
    # delayed every answer (1.9 s each at 60 members).
    assert latencies[-2] <= 1.0, f"observer latencies (s): {latencies}"
    assert latencies[-1] <= 3.0, f"observer latencies (s): {latencies}"
    assert done["closed"] == 0, f"{done['closed']} members reading within their limit were closed"
    assert "message" in answers, "none of the observer's messages was published"
