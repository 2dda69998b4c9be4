"""Pings waiting for their pong: the bookkeeping every I/O flavour shares.

A pong answers the ping with the same payload and every ping sent before it
(a peer may answer only the latest of several pings, RFC 6455 section 5.5.3).
Each flavour wraps what it waits on (a :class:`threading.Event`, an asyncio
future) in the waiter it registers here.
"""

from __future__ import annotations

from typing import Dict, Generic, List, TypeVar

__all__ = ["PendingPings"]

Waiter = TypeVar("Waiter")


class PendingPings(Generic[Waiter]):
    """The pings sent and not yet answered, oldest first, each with its waiter.

    Not thread-safe on its own: callers hold the lock that orders their frames.
    """

    __slots__ = ("_waiting",)  # one per connection: no __dict__

    def __init__(self) -> None:
        self._waiting: Dict[bytes, Waiter] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, payload: bytes, waiter: Waiter) -> None:
        """Record a ping about to be sent; :class:`ValueError` if ``payload`` already waits."""
        if payload in self._waiting:
            raise ValueError("a ping with this payload is already waiting for its pong")
        self._waiting[payload] = waiter

    def answered(self, payload: bytes) -> List[Waiter]:
        """The waiters a pong with ``payload`` answers, removed; empty for an unsolicited pong."""
        if payload not in self._waiting:
            return []
        answered: List[Waiter] = []
        for key in list(self._waiting):
            answered.append(self._waiting.pop(key))
            if key == payload:
                break
        return answered

    def take_all(self) -> List[Waiter]:
        """Every waiter still waiting, removed (the connection closed)."""
        waiters = list(self._waiting.values())
        self._waiting.clear()
        return waiters
