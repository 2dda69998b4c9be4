"""Exceptions raised by wscodec.

The tree::

    WebSocketError                 base of everything wscodec raises on purpose
    └── ProtocolError              the peer broke RFC 6455; ``code`` is the close
        │                          code to send back (1002, 1007, 1009, ...)
        ├── InvalidUtf8            1007: a text payload or close reason is not UTF-8
        └── PayloadTooBig          1009: a frame or message is over its size limit

Both codec backends raise exactly these types with exactly the same ``code``
and ``reason`` for the same input.
"""

from __future__ import annotations

from typing import Any, List

__all__ = ["WebSocketError", "ProtocolError", "InvalidUtf8", "PayloadTooBig"]


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
