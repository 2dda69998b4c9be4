"""Exceptions raised by wscodec.

The tree:

.. code-block:: text

    WebSocketError                 base of everything wscodec raises on purpose
    ├── ProtocolError              the peer broke RFC 6455; ``code`` is the close
    │   │                          code to send back (1002, 1007, 1009, ...)
    │   ├── InvalidUtf8            1007: a text payload or close reason is not UTF-8
    │   └── PayloadTooBig          1009: a frame or message is over its size limit
    ├── InvalidHandshake           the opening handshake failed
    │   ├── InvalidRequest         (server) the request is refused; ``status`` is
    │   │                          the HTTP status to answer with
    │   ├── InvalidStatus          (client) the server did not answer 101; carries
    │   │                          the response
    │   └── InvalidResponse        (client) a 101 answer that breaks RFC 6455
    ├── InvalidURI                 not a ws:// or wss:// URI
    └── ConnectionClosed           the connection is closed; ``code``/``reason``
        ├── ConnectionClosedOK     ... after a 1000 or 1001 close
        └── ConnectionClosedError  ... after anything else (1006 when TCP dropped)

Both codec backends raise exactly these types with exactly the same ``code``
and ``reason`` for the same input.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidRequest",
    "InvalidResponse",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUtf8",
    "PayloadTooBig",
    "ProtocolError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of the exceptions wscodec raises."""


class ProtocolError(WebSocketError):
    """The peer violated the protocol.

    ``code`` is the close code the connection must send in answer and
    ``reason`` a short human-readable explanation (at most 123 bytes of UTF-8
    so that it fits in a close frame).

    ``frames`` holds the frames a parser completed in the same call before it
    met the error: they are valid and the application should still get them.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = int(code)
        self.reason = reason
        self.frames: List[Any] = []

    def __str__(self) -> str:
        return f"{self.reason} (close code {self.code})"

    def __eq__(self, other: object) -> bool:
        # Lets the differential tests compare the errors of both backends directly.
        if not isinstance(other, ProtocolError):
            return NotImplemented
        return (type(self), self.code, self.reason) == (type(other), other.code, other.reason)

    def __hash__(self) -> int:
        return hash((type(self), self.code, self.reason))


class InvalidUtf8(ProtocolError):
    """A text payload or a close reason is not valid UTF-8 (close code 1007)."""

    def __init__(self, reason: str = "invalid UTF-8 in a text payload") -> None:
        super().__init__(1007, reason)


class PayloadTooBig(ProtocolError):
    """A frame or a message exceeds the configured size limit (close code 1009)."""

    def __init__(self, reason: str) -> None:
        super().__init__(1009, reason)


class InvalidHandshake(WebSocketError):
    """The opening handshake failed."""


class InvalidRequest(InvalidHandshake):
    """The server refuses a handshake request.

    ``status`` is the HTTP status to answer with (400, 403, 405, 426, 431...),
    ``headers`` extra response headers (such as ``Sec-WebSocket-Version: 13``
    with a 426).
    """

    def __init__(
        self, status: int, message: str, headers: Optional[List[Tuple[str, str]]] = None
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.headers = list(headers or [])


class InvalidStatus(InvalidHandshake):
    """The server answered the handshake with a status other than 101.

    ``response`` is the :class:`wscodec.handshake.Response` received, with its
    ``status``, ``headers`` and (up to a limit) ``body``.
    """

    def __init__(self, response: Any) -> None:
        super().__init__(f"server rejected the WebSocket connection: HTTP {response.status}")
        self.response = response


class InvalidResponse(InvalidHandshake):
    """The server's 101 answer breaks RFC 6455 (wrong accept key, unknown subprotocol...)."""


class InvalidURI(WebSocketError, ValueError):
    """A URI that is not a valid ``ws://`` or ``wss://`` URI."""


class ConnectionClosed(WebSocketError):
    """Raised when using a connection that is closed.

    ``code`` and ``reason`` are those of the close frame received from the
    peer (1005 if it had no code, 1006 if the TCP connection dropped without
    a close frame); ``sent`` says which close frame, if any, we sent.
    """

    def __init__(self, code: int, reason: str, sent: Optional[Tuple[int, str]] = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.sent = sent

    def __str__(self) -> str:
        text = f"connection closed with code {self.code}"
        return f"{text}: {self.reason}" if self.reason else text


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a close frame (1006)."""


class ConcurrencyError(WebSocketError, RuntimeError):
    """Two coroutines read one connection at the same time (``recv()`` is one reader's)."""


def detached(error: ProtocolError) -> ProtocolError:
    """``error``, ready to be stored: without the tracebacks of its chain, nor its frames.

    A traceback references the frames it passed through, and so the
    connection (``self``) that stores the exception: a reference cycle that
    only a full garbage collection frees, with all the connection holds.
    """
    error.frames = []  # handed out already; they may hold a read's payloads
    seen: List[BaseException] = []
    chain: List[Optional[BaseException]] = [error]
    while chain:
        link = chain.pop()
        if link is None or any(link is old for old in seen):
            continue
        seen.append(link)
        link.__traceback__ = None
        chain += (link.__cause__, link.__context__)
    return error
