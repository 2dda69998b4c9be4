"""One echo round trip through the threaded server's connection, without a network.

The server side of a :class:`~wscodec.sync.connection.SyncConnection` on one end of a
socket pair; the other end stands for the client and writes a masked frame
encoded once. A call is the whole round trip as a server handler does it:
``connection.send(connection.recv())``, plus the client's write and read.
Everything runs in one thread, so the count is the Python and C work one
message costs the server (the part that holds the GIL), not the scheduling
that the load generator of ``python -m benchmarks server`` also measures.
The connection is never started: its background reader stays off, and
``recv()`` reads the socket itself, as it does while a handler waits in it.

For ``python -m benchmarks.instructions --only roundtrip``; uses whichever
backend is active (``WSCODEC_NO_EXTENSIONS=1`` for the pure one).
"""

from __future__ import annotations

import socket
from typing import Callable, List

from wscodec import BACKEND
from wscodec.codec import encode_frame
from wscodec.connection import Connection, Role
from wscodec.protocol import Opcode
from wscodec.sync.connection import SyncConnection

from .codec_suite import Case

SIZES = [256, 8192]
KEY = b"\x37\xfa\x21\x3d"


def echo_round_trip(size: int) -> Callable[[], None]:
    """A function that runs one echo of a ``size``-byte binary message."""
    server_end, client_end = socket.socketpair()
    connection = SyncConnection(server_end, Connection(Role.SERVER), ping_interval=None)
    frame = encode_frame(Opcode.BINARY, b"x" * size, mask=KEY)
    echo = len(frame) - 4  # the server's frame: the same header, unmasked

    def round_trip() -> None:
        client_end.sendall(frame)
        connection.send(connection.recv())
        left = echo
        while left:
            left -= len(client_end.recv(left))

    return round_trip


def roundtrip_cases() -> List[Case]:
    contender = f"wscodec ({BACKEND})"
    return [
        Case("roundtrip", "sync echo, socket pair", size, contender, size, 1, echo_round_trip(size))
        for size in SIZES
    ]
