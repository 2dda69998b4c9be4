"""The load generator of ``python -m benchmarks server``: lock-step echo clients.

    python -m benchmarks.loadgen --port P --clients N --size BYTES --seconds S [--server-pid PID]

Opens N WebSocket connections to 127.0.0.1:P (no extension offered, so no
permessage-deflate), then each client sends one binary message of BYTES bytes,
waits for its echo, and sends the next, for S seconds after a short warm-up.
Prints one JSON object: the round trips completed inside the timed window, the
window's length, and the CPU seconds (user + system) that this process and the
server process (``--server-pid``) spent in it, and the whole machine's busy
time from ``/proc/stat``.

The client is deliberately minimal so that it costs the same against every
server and as little as possible: one thread, one epoll set, every socket
non-blocking. Each client's masked frame is encoded once (one masking key per
client, reused: the server still unmasks every byte) and each echo is only
counted, byte by byte, against the known length of the unmasked frame. The
first echo of every client (and normally one more as the window closes) is
compared in full with the expected frame, so a server that answers wrongly
(or in several frames) fails the run instead of being timed.
"""

from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import json
import os
import select
import socket
import sys
import time
from typing import Dict, List, Optional, Tuple

from wscodec import encode_frame
from wscodec.protocol import Opcode

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CHUNK = 1 << 20  # bytes read per recv_into


def proc_cpu(pid: int) -> Optional[float]:
    """CPU seconds (user + system, every thread) of ``pid`` so far; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def machine_busy() -> Optional[Tuple[float, float]]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat", "rb") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / ticks, total / ticks


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system


def handshake(port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (port, key)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection during the handshake")
        head += data
    head, _, leftover = head.partition(b"\r\n\r\n")
    if leftover:
        raise ConnectionError("data after the handshake response")
    lines = head.split(b"\r\n")
    if lines[0].split()[1:2] != [b"101"]:
        raise ConnectionError(f"handshake refused: {lines[0]!r}")
    expected = base64.b64encode(hashlib.sha1(key + GUID).digest())
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"sec-websocket-accept") != expected:
        raise ConnectionError("wrong Sec-WebSocket-Accept")
    if headers.get(b"sec-websocket-extensions"):
        raise ConnectionError("the server negotiated an extension that was not offered")
    sock.setblocking(False)
    return sock


class Client:
    __slots__ = ("check", "frame", "got", "received", "sent", "sock", "view")

    def __init__(self, sock: socket.socket, frame: bytes) -> None:
        self.sock = sock
        self.frame = frame
        self.view = memoryview(frame)
        self.sent = 0  # bytes of the current frame written
        self.received = 0  # bytes of the current echo read
        self.check: Optional[bytearray] = bytearray()  # the echo kept for comparison
        self.got = 0  # round trips completed


def run(port: int, clients: int, size: int, seconds: float, warmup: float, pid: int) -> Dict:
    payload = os.urandom(size)
    expected = encode_frame(Opcode.BINARY, payload)
    echo_length = len(expected)
    opened = time.monotonic()
    pool: Dict[int, Client] = {}
    for _ in range(clients):
        sock = handshake(port, timeout=10.0)
        frame = encode_frame(Opcode.BINARY, payload, mask=os.urandom(4))
        pool[sock.fileno()] = Client(sock, frame)
    connect_seconds = time.monotonic() - opened
    poller = select.epoll()
    sink = bytearray(min(_CHUNK, echo_length))
    sink_view = memoryview(sink)
    read_only = select.EPOLLIN
    read_write = select.EPOLLIN | select.EPOLLOUT

    def start(client: Client) -> None:
        """Send the next frame (as much as the socket takes now)."""
        client.sent = 0
        client.received = 0
        push(client)

    def push(client: Client) -> None:
        try:
            client.sent += client.sock.send(client.view[client.sent :])
        except BlockingIOError:
            pass
        if client.sent < len(client.frame):
            poller.modify(client.sock.fileno(), read_write)

    for fd in pool:
        poller.register(fd, read_only)
    for client in pool.values():
        start(client)

    started = time.monotonic()
    window_start = started + warmup
    window_end = window_start + seconds
    hard_stop = window_end + max(10.0, 4 * seconds)  # a server that stalls ends the run
    measuring = False
    stopping = False
    counted = 0
    before: Dict[str, Optional[float]] = {}
    after: Dict[str, Optional[float]] = {}
    busy_before = busy_after = None
    in_flight = len(pool)
    last_checked = False

    def snapshot() -> Tuple[Dict[str, Optional[float]], Optional[Tuple[float, float]]]:
        return {"loadgen": self_cpu(), "server": proc_cpu(pid) if pid else None}, machine_busy()

    while in_flight:
        now = time.monotonic()
        if not measuring and not stopping and now >= window_start:
            # The warm-up ends once every client has completed a round trip.
            if all(c.got for c in pool.values()):
                measuring = True
                window_start = now
                window_end = now + seconds
                before, busy_before = snapshot()
        elif measuring and now >= window_end:
            after, busy_after = snapshot()
            measuring = False
            stopping = True
            elapsed = now - window_start
        if now > hard_stop:
            raise TimeoutError(f"{in_flight} echoes still missing at the time limit")
        for fd, events in poller.poll(0.05):
            client = pool[fd]
            if events & select.EPOLLOUT and client.sent < len(client.frame):
                push(client)
                if client.sent == len(client.frame):
                    poller.modify(fd, read_only)
            if not events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                continue
            sock = client.sock
            while True:
                want = echo_length - client.received
                try:
                    if client.check is not None:
                        data = sock.recv(want)
                        count = len(data)
                        client.check += data
                    else:
                        count = sock.recv_into(sink_view, min(want, len(sink)))
                except BlockingIOError:
                    break
                except OSError as error:
                    if error.errno == errno.EINTR:
                        continue
                    raise
                if count == 0:
                    raise ConnectionError("the server closed a connection")
                client.received += count
                if client.received < echo_length:
                    continue
                if client.check is not None:
                    if bytes(client.check) != expected:
                        raise ValueError("the echo is not the frame expected")
                    client.check = None
                client.got += 1
                if measuring:
                    counted += 1
                if stopping:
                    in_flight -= 1
                    poller.unregister(fd)
                elif measuring and not last_checked and time.monotonic() >= window_end:
                    # The last echo of the run is checked in full as well.
                    last_checked = True
                    client.check = bytearray()
                    start(client)
                else:
                    start(client)
                break
    close = encode_frame(Opcode.CLOSE, b"\x03\xe8", mask=b"\0\0\0\0")
    for client in pool.values():
        try:
            client.sock.setblocking(True)
            client.sock.settimeout(1.0)
            client.sock.sendall(close)
        except OSError:
            pass
        client.sock.close()
    poller.close()

    def used(name: str) -> Optional[float]:
        first, last = before.get(name), after.get(name)
        return None if first is None or last is None else (last - first) / elapsed

    machine = None
    if busy_before is not None and busy_after is not None:
        machine = (busy_after[0] - busy_before[0]) / elapsed
    return {
        "clients": clients,
        "size": size,
        "round_trips": counted,
        "seconds": elapsed,
        "round_trips_per_s": counted / elapsed,
        "server_cpu_cores": used("server"),
        "loadgen_cpu_cores": used("loadgen"),
        "machine_busy_cores": machine,
        "connect_seconds": connect_seconds,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(args.port, args.clients, args.size, args.seconds, args.warmup, args.server_pid)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
