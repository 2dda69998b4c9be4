"""Socket operations the I/O flavours share: vectored writes, writes within a deadline, waits.

:meth:`Connection.buffers_to_send` hands a large payload over as a buffer of
its own; :func:`send_some` and :func:`send_all` write such a list with
``sendmsg()`` instead of joining it (a copy of the whole payload). Where
``sendmsg()`` is missing (Windows) or cannot be used (TLS sockets), the list
is joined. :func:`write_within` bounds a whole write by one deadline, and
:func:`wait_readable` waits for input with ``poll()`` where it exists
(``select()`` cannot watch descriptors above 1023).
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import sys
import time
from typing import Any, List, Sequence, Union

Buffer = Union[bytes, bytearray, memoryview]

_poll = getattr(select, "poll", None)  # absent on Windows
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)  # 0 where missing (Windows)
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


def set_write_timeout(sock: socket.socket, seconds: float) -> None:
    """Bound how long a write may block, without slowing reads down.

    A Python-level socket timeout costs a poll() before every recv() and
    send() (two system calls each, and two GIL hand-offs); on a small-message
    echo that was a third of the server's time. So plain sockets stay in
    blocking mode and the kernel bounds each send with SO_SNDTIMEO (a send
    that times out raises OSError, EAGAIN). TLS sockets, Windows, and any
    platform that refuses the option keep the Python-level timeout: the ssl
    module retries a blocking write forever when SO_SNDTIMEO expires.
    """
    if not isinstance(sock, ssl.SSLSocket) and sys.platform != "win32":
        whole = int(seconds)
        timeval = struct.pack("@ll", whole, int((seconds - whole) * 1e6))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        except (OSError, AttributeError):
            pass
        else:
            sock.settimeout(None)
            return
    sock.settimeout(seconds)


def _ready_within(sock: socket.socket, seconds: float, writing: bool) -> bool:
    """Wait until ``sock`` is readable (or writable), for up to ``seconds``; whether it is.

    True too when the socket cannot be waited on (closed meanwhile): the
    read or write that follows reports it.
    """
    seconds = max(0.0, seconds)  # at 0, one look without waiting
    try:
        if _poll is not None:
            poller = _poll()
            poller.register(sock, select.POLLOUT if writing else select.POLLIN)
            return bool(poller.poll(seconds * 1000))
        watched = ([], [sock]) if writing else ([sock], [])
        readable, writable, _ = select.select(watched[0], watched[1], [], seconds)
    except (OSError, ValueError):
        return True
    return bool(writable if writing else readable)


def wait_readable(sock: socket.socket, seconds: float) -> bool:
    """Wait until ``sock`` has data or EOF, for up to ``seconds``; whether it has."""
    pending = getattr(sock, "pending", None)  # TLS: bytes decrypted but not yet read
    if pending is not None and pending():
        return True
    return _ready_within(sock, seconds, writing=False)


def write_within(sock: socket.socket, buffers: Sequence[Any], timeout: float) -> None:
    """Write every byte of ``buffers`` to ``sock`` within ``timeout`` seconds in all.

    ``timeout`` is a deadline for the whole write, not for each ``send()``: a
    peer that reads a little now and then cannot stretch a large write past
    it (``sendall()`` with ``SO_SNDTIMEO``, or ``SSLSocket.sendall()``, starts
    the timeout again after every partial send). Raises :class:`socket.timeout`
    when the deadline passes with bytes still unsent, :class:`OSError` when
    the socket fails.

    On a socket in blocking mode (the plain sockets :func:`set_write_timeout`
    leaves so) every send is non-blocking (``MSG_DONTWAIT``) and waits happen
    in ``poll()``: a write that fits the socket buffer, the usual case, is one
    system call, as with ``sendall()``. A socket with a Python-level timeout
    (TLS, Windows) gets the time left before each send, and its own timeout
    back afterwards.
    """
    if can_send_without_waiting(sock):
        _write_nowait_within(sock, buffers, timeout)
        return
    deadline = time.monotonic() + timeout
    data = buffers[0] if len(buffers) == 1 else b"".join(buffers)
    view = memoryview(data).cast("B")
    previous = sock.gettimeout()
    tried = False
    try:
        while view:
            left = deadline - time.monotonic()
            if left <= 0 and tried:
                raise socket.timeout(f"write not finished within {timeout:g} s")
            tried = True
            sock.settimeout(max(left, 0.001))  # a timeout of 0 would mean non-blocking
            view = view[sock.send(view) :]
    finally:
        sock.settimeout(previous)


def send_without_waiting(sock: socket.socket, buffers: Sequence[Any]) -> List[memoryview]:
    """Write what ``sock`` takes of ``buffers`` at once; what is left (empty: all went).

    For a plain socket in blocking mode (as :func:`set_write_timeout` leaves
    it) where ``MSG_DONTWAIT`` exists; :func:`can_send_without_waiting` says.
    Raises :class:`OSError` when the socket fails.
    """
    try:
        if len(buffers) == 1:
            sent = sock.send(buffers[0], _DONTWAIT)
        else:
            sent = sock.sendmsg(buffers[:_MAX_BUFFERS], (), _DONTWAIT)
    except BlockingIOError:
        sent = 0
    return unsent(buffers, sent)


def can_send_without_waiting(sock: socket.socket) -> bool:
    """Whether :func:`send_without_waiting` works on ``sock`` (not TLS, no Python timeout)."""
    return bool(_DONTWAIT) and sock.gettimeout() is None and not isinstance(sock, ssl.SSLSocket)


def _write_nowait_within(sock: socket.socket, buffers: Sequence[Any], timeout: float) -> None:
    """:func:`write_within` for a socket in blocking mode, where ``MSG_DONTWAIT`` exists."""
    left = send_without_waiting(sock, buffers)
    if not left:
        return
    deadline = time.monotonic() + timeout
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not _ready_within(sock, remaining, writing=True):
            raise socket.timeout(f"write not finished within {timeout:g} s")
        try:
            sent = sock.sendmsg(left[:_MAX_BUFFERS], (), _DONTWAIT)
        except BlockingIOError:
            continue
        left = unsent(left, sent)
