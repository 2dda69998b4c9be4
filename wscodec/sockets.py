"""Vectored socket writes: a frame's header and a large payload in one system call.

:meth:`Connection.buffers_to_send` hands a large payload over as a buffer of
its own; these helpers write such a list with ``sendmsg()`` instead of
joining it (a copy of the whole payload). Where ``sendmsg()`` is missing
(Windows) or cannot be used (TLS sockets), the list is joined.
"""

from __future__ import annotations

import socket
import ssl
from typing import List, Sequence, Union

Buffer = Union[bytes, bytearray, memoryview]

_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
# Buffers per sendmsg() call: far below the system's IOV_MAX (1024 on Linux),
# past which sendmsg() fails; what is left goes out with the next call.
_MAX_BUFFERS = 64


def _vectored(sock: socket.socket) -> bool:
    return _HAS_SENDMSG and not isinstance(sock, ssl.SSLSocket)


def send_some(sock: socket.socket, buffers: Sequence[Buffer]) -> int:
    """One write of ``buffers``, in order; the number of bytes the socket took."""
    if len(buffers) == 1:
        return sock.send(buffers[0])
    if _vectored(sock):
        return sock.sendmsg(buffers[:_MAX_BUFFERS])
    return sock.send(b"".join(buffers))


def unsent(buffers: Sequence[Buffer], sent: int) -> List[memoryview]:
    """What is left of ``buffers`` once their first ``sent`` bytes are written."""
    left: List[memoryview] = []
    for buffer in buffers:
        view = memoryview(buffer).cast("B")
        if sent >= view.nbytes:
            sent -= view.nbytes
            continue
        left.append(view[sent:])
        sent = 0
    return left


def send_all(sock: socket.socket, buffers: Sequence[Buffer]) -> None:
    """Write every byte of ``buffers`` to a blocking socket (as ``sendall``)."""
    if len(buffers) == 1:
        sock.sendall(buffers[0])
    elif not _vectored(sock):
        sock.sendall(b"".join(buffers))
    else:
        remaining: Sequence[Buffer] = buffers
        while remaining:
            remaining = unsent(remaining, sock.sendmsg(remaining[:_MAX_BUFFERS]))
