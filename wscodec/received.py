"""What :meth:`Connection.receive_data() <wscodec.connection.Connection.receive_data>` returns.

One frozen dataclass per kind of event: a whole message (text or binary), a
piece of a fragmented message (only when asked for), a ping, a pong, and the
peer's close frame. :mod:`wscodec.connection`
re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "Event",
    "Fragment",
    "Ping",
    "Pong",
    "Received",
    "TextMessage",
]


@dataclass(frozen=True)
class TextMessage:
    data: str


@dataclass(frozen=True)
class BinaryMessage:
    data: bytes


@dataclass(frozen=True)
class Fragment:
    """A piece of a message that arrives in several frames, as soon as its frame does.

    Only with ``Connection(stream_fragments=True)``; a message in one frame
    still comes whole. ``data`` is ``str`` for a text message (the characters
    complete so far: a character split across frames comes with the next
    piece) and ``bytes`` for a binary one; ``final`` marks the last piece.
    """

    data: Union[str, bytes]
    final: bool


@dataclass(frozen=True)
class Ping:
    data: bytes


@dataclass(frozen=True)
class Pong:
    data: bytes


@dataclass(frozen=True)
class CloseReceived:
    """The peer's close frame: ``code`` is None when it carried no code."""

    code: Optional[int]
    reason: str


Event = Union[TextMessage, BinaryMessage, Fragment, Ping, Pong, CloseReceived]
#: What :meth:`~wscodec.connection.Connection.receive_data` returns: events,
#: and with ``plain_messages`` each whole message as its data (``str`` or ``bytes``).
Received = Union[Event, str, bytes]
