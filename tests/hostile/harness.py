"""What every hostile-client test needs: a server in its own process, its
memory read from ``/proc``, raw attack sockets, and the check that a fresh
client is still answered.

Each attack runs against a server process of its own (:func:`target`), so the
RSS it measures is the server's alone. Bounds are stated by the test that
asserts them; every wait here has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

from wscodec import FrameParser, Opcode

HERE = Path(__file__).resolve().parent
# Server flavours every attack runs against (the asyncio one joins when it lands).
FLAVOURS = ["threaded", "events"]
MiB = 2**20
# The gate runs each attack at a scale that takes seconds; .ci/full sets
# WSCODEC_HOSTILE_FULL=1 for the sizes the review used (thousands of clients).
FULL_SCALE = os.environ.get("WSCODEC_HOSTILE_FULL") == "1"


class ServerProcess:
    """A server started by ``serve_target.py``; its memory and its liveness."""

    def __init__(self, process: subprocess.Popen, port: int, flavour: str) -> None:
        self.process = process
        self.port = port
        self.flavour = flavour

    def _status(self, field: str) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return self._status("VmRSS")

    def peak_rss(self) -> int:
        """The highest resident memory so far (the kernel's high-water mark), in bytes."""
        return self._status("VmHWM")

    def threads(self) -> int:
        return self._status("Threads") // 1024

    def alive(self) -> bool:
        return self.process.poll() is None

    def assert_serves(self, within: float = 1.0, path: str = "/") -> float:
        """A fresh client completes a handshake and an echo within ``within`` seconds.

        Returns the time it took. The demo is checked with its page request
        instead (its WebSocket speaks a chat protocol, not echo).
        """
        assert self.alive(), f"the server exited with {self.process.returncode}"
        started = time.monotonic()
        if self.flavour == "demo":
            with socket.create_connection(("127.0.0.1", self.port), timeout=within) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                head = sock.recv(64)
            assert head.startswith(b"HTTP/1.1 200"), head
        else:
            with attacker(self.port, path=path, timeout=within) as sock:
                sock.sendall(frame(Opcode.TEXT, b"are you there?"))
                reply = read_frames(sock, 1, deadline=started + within)
                assert reply and reply[0].payload == b"are you there?", reply
        took = time.monotonic() - started
        assert took <= within, f"a fresh client took {took:.2f} s, more than {within} s"
        return took


@contextlib.contextmanager
def target(flavour: str, backend: str, **options: object) -> Iterator[ServerProcess]:
    """Run a ``flavour`` server on ``backend`` in a subprocess, with ``options``."""
    env = dict(os.environ)
    env.pop("WSCODEC_NO_EXTENSIONS", None)
    if backend == "python":
        env["WSCODEC_NO_EXTENSIONS"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "serve_target.py"), flavour, json.dumps(options)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # serve_target.py prints it at once
        if not line.startswith("PORT "):
            raise RuntimeError(f"the {flavour} server did not start: {line!r}")
        yield ServerProcess(process, int(line.split()[1]), flavour)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_head(sock: socket.socket) -> bytes:
    """Read an HTTP response head (up to its blank line, or the end)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def handshake_request(path: str = "/", extra: bytes = b"") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


@contextlib.contextmanager
def attacker(
    port: int, path: str = "/", extra: bytes = b"", timeout: float = 5.0
) -> Iterator[socket.socket]:
    """A raw socket that completed the opening handshake; closed on exit."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(handshake_request(path, extra))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 101"), status
        yield sock
    finally:
        sock.close()


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes = b"\x00" * 4,
) -> bytes:
    """One client frame (masked, with a zero mask unless ``mask`` says otherwise)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | int(opcode)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 2**16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    if mask != b"\x00" * 4:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + payload


def read_frames(sock: socket.socket, count: int, deadline: float) -> List:
    """Up to ``count`` frames from the server, or fewer at EOF or the deadline."""
    parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x70)
    frames: List = []
    while len(frames) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (socket.timeout, ConnectionError):
            break
        if not data:
            break
        frames.extend(parser.feed(data))
    return frames


def close_code(sock: socket.socket, within: float = 5.0) -> Optional[int]:
    """The code of the close frame the server sends within ``within`` seconds.

    Frames before it (echoes) are skipped; None if the connection ends or
    the time runs out with no close frame.
    """
    deadline = time.monotonic() + within
    parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x70)
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(1 << 20)
        except (socket.timeout, ConnectionError):
            return None
        if not data:
            return None
        for received in parser.feed(data):
            if received.opcode == Opcode.CLOSE:
                return struct.unpack("!H", received.payload[:2])[0] if received.payload else 1005
    return None


def send_for(sock: socket.socket, chunk: bytes, total: int, seconds: float) -> int:
    """Send ``chunk`` repeatedly until ``total`` bytes, ``seconds`` pass or the peer
    stops reading; returns the bytes sent."""
    deadline = time.monotonic() + seconds
    sent = 0
    sock.settimeout(1.0)
    while sent < total and time.monotonic() < deadline:
        try:
            sock.sendall(chunk)
        except (socket.timeout, ConnectionError):
            break
        sent += len(chunk)
    return sent


def idle_clients(
    port: int, count: int, within: float = 30.0, batch: int = 100, refused_ok: bool = False
) -> List[socket.socket]:
    """Up to ``count`` raw clients that completed the handshake (101) and stay idle.

    Connects ``batch`` at a time so the listen backlog never overflows; the
    caller closes them. With ``refused_ok`` a 503 is closed and left out of
    the list; any other answer raises AssertionError.
    """
    deadline = time.monotonic() + within
    socks: List[socket.socket] = []
    pending: List[socket.socket] = []
    tried = 0
    try:
        while tried < count:
            pending = []
            for _ in range(min(batch, count - tried)):
                tried += 1
                sock = socket.create_connection(("127.0.0.1", port), timeout=within)
                pending.append(sock)
                sock.sendall(handshake_request())
            for sock in pending:
                head = b""
                while b"\r\n\r\n" not in head:
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = sock.recv(4096)
                    assert chunk, f"closed during the handshake: {head!r}"
                    head += chunk
                if refused_ok and head.startswith(b"HTTP/1.1 503"):
                    sock.close()
                    continue
                assert head.startswith(b"HTTP/1.1 101"), head[:60]
                socks.append(sock)
    except BaseException:
        for sock in socks + pending:
            sock.close()
        raise
    return socks


def open_fds(server: ServerProcess) -> int:
    """The number of descriptors the server process has open."""
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def cpu_seconds(server: ServerProcess) -> float:
    """User plus system CPU time the server process used so far, in seconds."""
    with open(f"/proc/{server.process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
