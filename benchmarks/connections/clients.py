"""The load generator of ``python -m benchmarks connections``: many raw client connections.

    python -m benchmarks.connections.clients PORT SOURCE[,SOURCE...] [--deflate]

Runs in a process of its own, one thread and one selector; connections are
bound to the loopback source addresses given, in turn (bind before connect),
so the ephemeral port range limits each address, not the run. Answers one
command a line on stdin with one JSON line:

- ``open N``: open connections until N are open (handshakes pipelined, 256
  at a time); how long it took;
- ``roundtrip``: every connection sends a 64-byte binary message and waits
  for its echo, then a ping and waits for its pong;
- ``expect COUNT SIZE TIMEOUT``: answers ``armed`` at once, then waits until
  every connection has COUNT binary messages of SIZE bytes; the monotonic
  time the last one arrived (the clock is the machine's, shared with the
  server process), and how many connections got them all;
- ``close``.

Frames are parsed with wscodec's parser; a compressed echo is counted, not
inflated. With ``--deflate`` the clients offer permessage-deflate and send
their messages compressed (one frame compressed once, valid for any context).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import time
import zlib
from typing import Dict, List, Optional

from wscodec import FrameParser, Opcode, encode_frame

from .limits import raise_nofile

_BATCH = 256
_MESSAGE = b"m" * 64


def handshake(deflate: bool) -> bytes:
    extension = (
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        if deflate
        else b""
    )
    return (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + extension
        + b"\r\n"
    )


def message_frame(deflate: bool) -> bytes:
    if not deflate:
        return encode_frame(Opcode.BINARY, _MESSAGE, mask=b"abcd")
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(_MESSAGE) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return encode_frame(Opcode.BINARY, payload[:-4], mask=b"abcd", rsv1=True)


class Client:
    __slots__ = ("frames", "head", "parser", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.head: Optional[bytes] = b""  # None once the handshake is done
        self.parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x40)
        self.frames: List[object] = []


class Clients:
    def __init__(self, port: int, sources: List[str], deflate: bool) -> None:
        self.port = port
        self.sources = sources
        self.request = handshake(deflate)
        self.frame = message_frame(deflate)
        self.selector = selectors.DefaultSelector()
        self.open: List[Client] = []
        self.failed = 0

    def _read(self, client: Client) -> bool:
        """Read what is there; False if the connection is gone."""
        try:
            data = client.sock.recv(1 << 18)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        if client.head is not None:
            head = client.head + data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                client.head = head
                return True
            if not head.startswith(b"HTTP/1.1 101"):
                return False
            client.head = None
            data = head[end + 4 :]
        if data:
            client.frames.extend(client.parser.feed(data))
        return True

    def open_until(self, total: int, deadline: float) -> None:
        index = len(self.open) + self.failed
        while len(self.open) < total and time.monotonic() < deadline:
            batch: Dict[int, Client] = {}
            for _ in range(min(_BATCH, total - len(self.open))):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.bind((self.sources[index % len(self.sources)], 0))
                index += 1
                sock.settimeout(10)
                try:
                    sock.connect(("127.0.0.1", self.port))
                    sock.sendall(self.request)
                except OSError:
                    sock.close()
                    self.failed += 1
                    continue
                sock.setblocking(False)
                client = Client(sock)
                batch[sock.fileno()] = client
                self.selector.register(sock, selectors.EVENT_READ, client)
            while batch and time.monotonic() < deadline:
                for key, _ in self.selector.select(1.0):
                    client = key.data
                    if not self._read(client):
                        self._drop(client)
                        batch.pop(client.sock.fileno(), None)
                        self.failed += 1
                    elif client.head is None:
                        batch.pop(client.sock.fileno(), None)
                        self.open.append(client)
            for client in batch.values():
                self._drop(client)
                self.failed += 1

    def _drop(self, client: Client) -> None:
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()

    def wait_frames(self, wanted: int, opcode: int, size: int, deadline: float) -> List[float]:
        """Read until every client has ``wanted`` such frames; the times each completed."""
        done: List[float] = []
        counts = {id(c): 0 for c in self.open}
        for client in self.open:
            counts[id(client)] = self._take(client, opcode, size)
            if counts[id(client)] >= wanted:
                done.append(time.monotonic())
        remaining = len(self.open) - len(done)
        while remaining and time.monotonic() < deadline:
            for key, _ in self.selector.select(0.5):
                client = key.data
                if counts[id(client)] >= wanted:
                    self._read(client)
                    client.frames.clear()
                    continue
                if not self._read(client):
                    self._drop(client)
                    counts[id(client)] = -(10**9)
                    remaining -= 1
                    continue
                counts[id(client)] += self._take(client, opcode, size)
                if counts[id(client)] >= wanted:
                    done.append(time.monotonic())
                    remaining -= 1
        self.open = [c for c in self.open if counts[id(c)] >= 0]
        return done

    @staticmethod
    def _take(client: Client, opcode: int, size: int) -> int:
        taken = sum(
            1
            for f in client.frames
            if f.opcode == opcode and (size < 0 or len(f.payload) == size)  # type: ignore[attr-defined]
        )
        client.frames.clear()
        return taken

    def send_all(self, frame: bytes) -> None:
        for client in self.open:
            try:
                client.sock.send(frame)  # small: the socket takes it whole
            except OSError:
                pass


def _report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connections.clients")
    parser.add_argument("port", type=int)
    parser.add_argument("sources")
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args(argv)
    raise_nofile(int(os.environ.get("WSCODEC_BENCH_NOFILE", "0")) or 1024)
    clients = Clients(args.port, args.sources.split(","), args.deflate)
    ping = encode_frame(Opcode.PING, b"p", mask=b"abcd")
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "close":
            break
        started = time.monotonic()
        if words[0] == "open":
            clients.open_until(int(words[1]), started + 120)
            seconds = time.monotonic() - started
            _report(open=len(clients.open), failed=clients.failed, seconds=seconds)
        elif words[0] == "roundtrip":
            clients.send_all(clients.frame)
            echoed = clients.wait_frames(1, Opcode.BINARY, -1, started + 60)
            clients.send_all(ping)
            ponged = clients.wait_frames(1, Opcode.PONG, -1, started + 60)
            _report(
                echoed=len(echoed),
                ponged=len(ponged),
                open=len(clients.open),
                seconds=time.monotonic() - started,
            )
        elif words[0] == "expect":
            count, size, timeout = int(words[1]), int(words[2]), float(words[3])
            _report(armed=len(clients.open))
            done = clients.wait_frames(count, Opcode.BINARY, size, started + timeout)
            _report(complete=len(done), last=max(done) if done else None, open=len(clients.open))
    for client in clients.open:
        client.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
