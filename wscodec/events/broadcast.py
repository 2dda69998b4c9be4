"""Send one message to many event-driven connections, the frame encoded once.

:func:`wscodec.broadcast` works with these connections too, but it encodes
the frame for each of them and, from another thread, hands the loop one call
per connection. This one encodes the frame once for every connection that
can share it (a server connection without compression or ``fragment_size``,
not in the middle of a fragmented message of its own) and hands each loop one
call for all of its connections.
"""

from __future__ import annotations

from typing import Dict, Iterable, List

from .._backend import codec
from ..connection import _OPEN
from ..protocol import Opcode, Role
from .connection import Data, EventConnection
from .loop import Loop

__all__ = ["broadcast"]


def broadcast(connections: Iterable[EventConnection], message: Data) -> int:
    """Queue ``message`` on every open connection; how many took it.

    Never blocks, from any thread. As with :meth:`EventConnection.send`, a
    peer whose unsent bytes would pass the server's ``write_limit`` is
    dropped (1006) rather than let the backlog grow. Connections that are
    not open, or closing, are skipped. Called from another thread, the
    count is of the connections open at the call; one that closes before
    its loop gets to it does not get the message.
    """
    if isinstance(message, str):
        opcode, payload = Opcode.TEXT, message.encode("utf-8")
    elif isinstance(message, (bytes, bytearray, memoryview)):
        opcode, payload = Opcode.BINARY, bytes(message)
        message = payload  # the caller may reuse its buffer
    else:
        raise TypeError(f"cannot broadcast a {type(message).__name__}; use str or bytes")
    by_loop: Dict[Loop, List[EventConnection]] = {}
    for connection in connections:
        if _is_open(connection):
            by_loop.setdefault(connection._loop, []).append(connection)
    shared = codec.encode_frame(opcode, payload)
    for loop, members in by_loop.items():
        if loop.in_other_thread():
            loop.call_soon(_deliver, members, shared, message)
        else:
            _deliver(members, shared, message)
    return sum(len(members) for members in by_loop.values())


def _is_open(connection: EventConnection) -> bool:
    protocol = connection.protocol
    return (
        protocol is not None
        and not connection._closed
        and protocol.state is _OPEN
        and protocol.close_sent is None
    )


def _deliver(members: List[EventConnection], shared: bytes, message: Data) -> None:
    """On the members' loop: write ``shared`` where it fits, encode for the rest."""
    for connection in members:
        protocol = connection.protocol
        if protocol is None or not _is_open(connection):
            continue
        if _can_share(connection):
            loop = connection._loop
            if protocol.has_data_to_send():
                loop.flush(connection)  # what the protocol queued goes first
            loop._write(connection, [shared])
        else:
            connection._send_quietly(message)


def _can_share(connection: EventConnection) -> bool:
    protocol = connection.protocol
    return (
        protocol is not None
        and protocol.deflate is None
        and protocol.role is Role.SERVER
        and protocol.fragment_size is None
        and protocol._sending is None
    )
