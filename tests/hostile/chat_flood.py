"""Chat members that each send within the demo's own rate limit, and read all they get.

    python tests/hostile/chat_flood.py PORT MEMBERS RATE SECONDS [FIRST_SOURCE_OCTET]

Run in a process of its own by ``test_demo.py``: MEMBERS raw sockets join the
chat from 127.0.2.x, then each sends ``RATE`` messages a second (spread over
the second, not in step) for ``SECONDS``, while reading and dropping every
byte the server sends them, so none is a slow reader. Prints one JSON line:
how many joined, how many messages went out, and how many members the server
closed.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import socket
import sys
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.hostile.harness import frame, handshake_request, read_head
from wscodec import Opcode


def join(port: int, source: str, name: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(handshake_request("/ws"))
    head = read_head(sock)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head[:60].decode("latin-1"))
    sock.sendall(frame(Opcode.TEXT, json.dumps({"type": "join", "name": name}).encode()))
    sock.setblocking(False)
    return sock


def main() -> None:
    port, members, rate, seconds = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        float(sys.argv[3]),
        float(sys.argv[4]),
    )
    selector = selectors.DefaultSelector()
    socks: List[socket.socket] = []
    for index in range(members):
        source = f"127.0.2.{1 + index // 16}"  # the demo admits 16 per address
        sock = join(port, source, f"flood{index}")
        socks.append(sock)
        selector.register(sock, selectors.EVENT_READ)
    print(json.dumps({"event": "joined", "members": len(socks)}), flush=True)
    period = 1.0 / rate
    start = time.monotonic()
    due: Dict[socket.socket, float] = {sock: start + random.random() * period for sock in socks}
    sent = closed = 0
    alive = set(socks)
    end = start + seconds
    while time.monotonic() < end and alive:
        now = time.monotonic()
        for sock in list(alive):
            if due[sock] <= now:
                due[sock] += period
                try:
                    sock.send(
                        frame(
                            Opcode.TEXT, json.dumps({"type": "message", "text": "x" * 40}).encode()
                        )
                    )
                    sent += 1
                except BlockingIOError:
                    pass  # our own send buffer is full: skip this beat
                except OSError:
                    alive.discard(sock)
                    closed += 1
        timeout = max(0.0, min(due[s] for s in alive) - time.monotonic()) if alive else 0
        for key, _ in selector.select(min(timeout, 0.05)):
            sock = key.fileobj  # type: ignore[assignment]
            try:
                while sock.recv(1 << 20):
                    pass
                # b"": the server closed it
                if sock in alive:
                    alive.discard(sock)
                    closed += 1
                selector.unregister(sock)
            except BlockingIOError:
                pass
            except OSError:
                if sock in alive:
                    alive.discard(sock)
                    closed += 1
                selector.unregister(sock)
    print(json.dumps({"event": "done", "sent": sent, "closed": closed}), flush=True)
    for sock in socks:
        sock.close()


if __name__ == "__main__":
    main()
