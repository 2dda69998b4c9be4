"""What :meth:`Connection.receive_data() <wscodec.connection.Connection.receive_data>` returns.

One frozen dataclass per kind of event: a whole message (text or binary), a
ping, a pong, and the peer's close frame. :mod:`wscodec.connection`
re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

__all__ = ["BinaryMessage", "CloseReceived", "Event", "Ping", "Pong", "TextMessage"]


@dataclass(frozen=True)
class TextMessage:
    data: str


@dataclass(frozen=True)
class BinaryMessage:
    data: bytes


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


Event = Union[TextMessage, BinaryMessage, Ping, Pong, CloseReceived]
