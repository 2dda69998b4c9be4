"""Send one message to many asyncio connections, never waiting for any of them."""

from __future__ import annotations

import logging
from typing import Dict, Iterable, Optional

from .._backend import codec
from ..protocol import Opcode, Role, State
from .connection import AsyncConnection, Data

__all__ = ["broadcast"]

_logger = logging.getLogger("wscodec.asyncio")


def broadcast(
    connections: Iterable[AsyncConnection], message: Data, *, raise_exceptions: bool = False
) -> int:
    """Send ``message`` to every open connection; how many it was written to.

    The frame is encoded once for all server-side connections without
    compression. Nothing awaits: a connection whose transport already holds
    more than its ``write_limit`` bytes (a peer that does not keep up) is
    skipped and logged, as are closed ones and those in the middle of a
    fragmented message. ``raise_exceptions`` is accepted for websockets'
    signature; skipping never raises.
    """
    if isinstance(message, str):
        opcode, payload = Opcode.TEXT, message.encode("utf-8")
    elif isinstance(message, (bytes, bytearray, memoryview)):
        opcode, payload = Opcode.BINARY, bytes(message)
    else:
        raise TypeError(f"cannot broadcast a {type(message).__name__}; use str or bytes")
    shared: Optional[bytes] = None
    sent = 0
    skipped: Dict[str, int] = {}
    for connection in connections:
        protocol = connection.protocol
        transport = connection.transport
        if (
            protocol is None
            or transport is None
            or transport.is_closing()
            or protocol.state is not State.OPEN
            or protocol.close_sent is not None
        ):
            continue
        why = None
        if connection._fragmenting is not None:
            why = "in the middle of a fragmented message"
        elif transport.get_write_buffer_size() > connection.write_limit:
            why = "write buffer over write_limit (the peer does not keep up)"
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        if (
            protocol.deflate is None
            and protocol.role is Role.SERVER
            and protocol.fragment_size is None
        ):
            if shared is None:
                shared = codec.encode_frame(opcode, payload)
            transport.write(shared)
        else:
            connection.send_nowait(message if opcode is Opcode.TEXT else payload)
        sent += 1
    for why, count in skipped.items():
        _logger.warning("broadcast skipped %d connections: %s", count, why)
    return sent
