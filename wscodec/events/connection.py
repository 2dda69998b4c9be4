"""A connection of the event-driven server, and the handler that gets its events.

Everything here runs on the selector loop that owns the connection
(:mod:`wscodec.events.loop`); calls from other threads are handed to it.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ..connection import _BYTES_LIKE, _OPEN, Connection, State
from ..exceptions import ConnectionClosed
from ..handshake import HTTPReader, Request, Response
from ..protocol import CloseCode

if TYPE_CHECKING:
    from .loop import Loop

__all__ = ["Data", "EventConnection", "EventHandler", "HandlerFactory"]

_get_ident = threading.get_ident

Data = Union[str, bytes]


class EventHandler:
    """Subclass and override what you need; one instance per connection.

    Every method runs on the connection's loop and must return quickly.
    An exception in ``on_open`` or ``on_message`` closes the connection with
    1011 (and is logged); ``on_close`` runs exactly once, last, also when
    the handshake completed but the connection then dropped (1006).
    """

    def on_open(self, connection: EventConnection) -> None:
        """The opening handshake is complete."""

    def on_message(self, connection: EventConnection, message: Data) -> None:
        """A message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, connection: EventConnection, code: int, reason: str) -> None:
        """The connection is closed: the peer's close code (1006 if none came)."""


HandlerFactory = Callable[[], EventHandler]


class EventConnection:
    """One connection of an :class:`EventServer`.

    Attributes: ``request``, ``response``, ``subprotocol``,
    ``remote_address``, ``state``, ``close_code`` and ``close_reason``.
    """

    def __init__(self, loop: Loop, sock: socket.socket, address: Any) -> None:
        self._loop = loop
        self.socket = sock
        self.remote_address = address
        self.request: Optional[Request] = None
        self.response: Optional[Response] = None
        self.subprotocol: Optional[str] = None
        self.handler: Optional[EventHandler] = None
        self.protocol: Optional[Connection] = None
        self._reader: Optional[HTTPReader] = HTTPReader("request")
        self._out = bytearray()
        self.fd = sock.fileno()  # kept: fileno() is -1 once closed
        self._writing = False  # watched for writability
        self._write_shut = False
        self._closed = False
        self._dispatching = False
        self.deadline: Optional[float] = None
        # When what is buffered must be out: set as a backlog begins, not moved by partial sends.
        self.write_deadline = 0.0
        self._ping_sent_at: Optional[float] = None  # a keepalive ping awaits its pong
        self._next_ping = 0.0

    # Public API ------------------------------------------------------------------

    @property
    def state(self) -> State:
        # Handlers only see open connections; before its handshake completes
        # (in ``process_request``) a connection cannot be used yet.
        return State.CLOSED if self.protocol is None else self.protocol.state

    @property
    def close_code(self) -> Optional[int]:
        """The peer's close code (1005: none given, 1006: no close frame), once closed."""
        return None if self.protocol is None else self.protocol.close_code

    @property
    def close_reason(self) -> str:
        return "" if self.protocol is None else self.protocol.close_reason

    def send(self, message: Union[Data, bytearray, memoryview]) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        Raises :class:`ConnectionClosed` if the connection is closing or
        closed (from another thread, the message is dropped instead).
        """
        if _get_ident() != self._loop.ident:  # in_other_thread(), one call sooner
            self._send_from_other_thread(message)
            return
        protocol = self.protocol
        if protocol is None:
            raise _not_open()
        if isinstance(message, _BYTES_LIKE):
            protocol.send_binary(message)
        elif isinstance(message, str):
            protocol.send_text(message)
        else:
            raise TypeError(f"cannot send a {type(message).__name__}; use str or bytes")
        if not self._dispatching:
            self._loop.flush(self)

    def send_nowait(self, message: Data) -> bool:
        """Queue a message from any thread; False if the connection is not open.

        ``send()`` never blocks either; this is the form
        :func:`wscodec.broadcast` uses, shared with the threaded server's
        connections. A peer that lets the backlog pass ``write_limit`` is
        dropped by the loop.
        """
        protocol = self.protocol
        if protocol is None or protocol.state is not _OPEN or self._closed:
            return False
        if self._loop.in_other_thread():
            self._send_from_other_thread(message)
        else:
            self._send_quietly(message)
        return True

    def ping(self, data: bytes = b"") -> None:
        """Send a ping; the pong is answered by the peer, not reported."""
        if self._loop.in_other_thread():
            self._loop.call_soon(self.ping, bytes(data))
            return
        self._open_protocol().send_ping(data)
        self._after_call()

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake; ``on_close`` follows when it is over."""
        if self._loop.in_other_thread():
            self._loop.call_soon(self.close, code, reason)
            return
        if self.protocol is None or self._closed:
            return
        self.protocol.send_close(code, reason)
        self._after_call()

    # Internals -------------------------------------------------------------------

    def _open_protocol(self) -> Connection:
        if self.protocol is None:
            raise _not_open()
        return self.protocol

    def _send_from_other_thread(self, message: Union[Data, bytearray, memoryview]) -> None:
        if isinstance(message, (bytearray, memoryview)):
            message = bytes(message)  # the caller may reuse its buffer
        elif not isinstance(message, (str, bytes)):
            raise TypeError(f"cannot send a {type(message).__name__}; use str or bytes")
        self._loop.call_soon(self._send_quietly, message)

    def _send_quietly(self, message: Data) -> None:
        try:
            self.send(message)
        except ConnectionClosed:
            pass

    def _after_call(self) -> None:
        # Inside a callback the loop flushes once the batch of events is
        # handled: one write for all the answers to one read.
        if not self._dispatching:
            self._loop.flush(self)


def _not_open() -> ConnectionClosed:
    return ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, "the connection is not open")
