"""Send one message to many connections without letting a slow one hold up the rest."""

from __future__ import annotations

from typing import Iterable

from .sync import Data, SyncConnection

__all__ = ["broadcast"]


def broadcast(connections: Iterable[SyncConnection], message: Data) -> int:
    """Queue ``message`` on every open connection; how many took it.

    Never blocks: each connection writes its queue from a thread of its own,
    and one whose peer does not read is dropped once more than its
    ``write_limit`` bytes wait, instead of delaying everyone else. Closed
    connections are skipped.
    """
    return sum(1 for connection in connections if connection.send_nowait(message))
