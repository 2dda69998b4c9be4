"""Send one message to many connections without letting a slow one hold up the rest."""

from __future__ import annotations

from typing import Iterable, Protocol

from .connection import Data

__all__ = ["broadcast"]


class _Queueing(Protocol):
    def send_nowait(self, message: Data) -> bool: ...


def broadcast(connections: Iterable[_Queueing], message: Data) -> int:
    """Queue ``message`` on every open connection; how many took it.

    Never blocks: a threaded server's connection writes its queue from a
    thread of its own, an event-driven server's from its loop; one whose peer
    does not read is dropped once more than its ``write_limit`` bytes wait,
    instead of delaying everyone else. Closed connections are skipped.
    """
    return sum(1 for connection in connections if connection.send_nowait(message))
