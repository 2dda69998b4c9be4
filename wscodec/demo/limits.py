"""The chat's limits: what one member may do, and what the room may deliver.

:class:`ChatLimits` holds every number; :class:`TokenBucket` limits one
member's rate (1008 above it); :class:`SendShare` and :class:`ActiveSenders`
share the room's deliveries out among those who speak (a ``busy`` notice
above a share); :class:`FanoutBudget` bounds what waits in the members'
outboxes (1013 above it); :class:`AddressCounter` bounds the connections
from one IP address (503 above it); :class:`RateMeter` counts for the stats panel.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Counter, Deque, Dict, List, Optional, Tuple

__all__ = [
    "ActiveSenders",
    "AddressCounter",
    "ChatLimits",
    "FanoutBudget",
    "RateMeter",
    "SendShare",
    "TokenBucket",
]


@dataclass(frozen=True)
class ChatLimits:
    """What one connection may do; beyond it the server closes the connection."""

    #: Largest WebSocket message accepted, in bytes (the server's ``max_size``; 1009 above).
    max_message_bytes: int = 4096
    #: Longest chat text, in characters (1009 above).
    max_text: int = 500
    #: Longest nickname, in characters (1008 above).
    max_name: int = 24
    #: Sustained chat messages per second a connection may send (1008 above)...
    rate: float = 5.0
    #: ...after a burst of this many.
    burst: int = 10
    #: Seconds a new connection has to send its ``join`` (1008 after).
    join_timeout: float = 30.0
    #: Messages replayed to a newcomer.
    history: int = 50
    #: Deepest JSON nesting accepted in a client's message (1008 deeper).
    max_json_depth: int = 32
    #: Messages that may wait to be sent to one member (1013 beyond: too slow a reader)...
    max_backlog_messages: int = 128
    #: ...and bytes (beyond a first message, which always fits in an empty outbox)...
    max_backlog_bytes: int = 64 * 1024
    #: ...and bytes for every member together: each may use an equal share, at most.
    max_total_backlog_bytes: int = 8 * 1024 * 1024
    #: Messages the room delivers per second to this server's members together
    #: (half a second's worth at once, at most). Each member who spoke in the last
    #: ``sender_window`` seconds may use an equal share of it; a message beyond its
    #: sender's share, or the room's, is not published, and the sender gets a
    #: ``busy`` notice (nothing is closed: the member kept to ``rate``).
    max_deliveries: int = 40_000
    #: How long a member counts as a sender after its last message, in seconds.
    sender_window: float = 5.0


class FanoutBudget:
    """What may wait to be sent, per member and in total, across a room's outboxes."""

    def __init__(self, limits: ChatLimits) -> None:
        self.max_messages = limits.max_backlog_messages
        self.max_bytes = limits.max_backlog_bytes
        self.max_total = limits.max_total_backlog_bytes
        self.lock = threading.Lock()  # guards every outbox of the room, and these counts
        self.total = 0  # bytes waiting in all outboxes
        self.members = 0  # open outboxes
        self.dropped = 0  # members closed with 1013 so far

    def share(self) -> int:
        """The bytes one member's outbox may hold now (call with ``lock`` held)."""
        return min(self.max_bytes, self.max_total // max(1, self.members))


class TokenBucket:
    """A rate limiter: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self, count: int = 1) -> bool:
        """Spend ``count`` tokens; False when fewer are left (the caller is over the limit)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= count:
            self._tokens -= count
            return True
        return False


class RateMeter:
    """Counts events and reports their rate per second over a sliding window."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.total = 0
        self._clock = clock
        self._buckets: Deque[List[float]] = collections.deque()  # [second, count]
        self._started = clock()
        self._lock = threading.Lock()

    def add(self, count: int = 1) -> None:
        """Record ``count`` events now."""
        second = float(int(self._clock()))
        with self._lock:
            self.total += count
            if self._buckets and self._buckets[-1][0] == second:
                self._buckets[-1][1] += count
            else:
                self._buckets.append([second, float(count)])
            self._expire(second)

    def rate(self) -> float:
        """Events per second over the last ``window`` seconds (or since start, if shorter)."""
        now = self._clock()
        with self._lock:
            self._expire(float(int(now)))
            span = min(self.window, max(now - self._started, 1.0))
            return sum(count for _, count in self._buckets) / span

    def _expire(self, second: float) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.window:
            self._buckets.popleft()


class ActiveSenders:
    """Who sent a message in the last ``window`` seconds; constant time per message."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._last: Dict[str, float] = {}
        self._order: Deque[Tuple[float, str]] = collections.deque()

    def saw(self, name: str) -> None:
        now = self._clock()
        self._last[name] = now
        self._order.append((now, name))

    def count(self) -> int:
        """How many distinct names sent within the window (older ones are forgotten)."""
        horizon = self._clock() - self.window
        order, last = self._order, self._last
        while order and order[0][0] < horizon:
            seen, name = order.popleft()
            if last.get(name) == seen:
                del last[name]
        return len(last)


class SendShare:
    """One member's share of the room's deliveries: a token bucket whose rate follows
    ``max_deliveries / members / active senders`` (never above the member's ``rate``)."""

    def __init__(self, limits: ChatLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.bucket = TokenBucket(limits.rate, limits.burst, clock)

    def take(self, members: int, senders: int) -> bool:
        """Spend a token at the current share; False when the sender is over it."""
        limits = self.limits
        rate = min(limits.rate, limits.max_deliveries / max(1, members) / max(1, senders))
        bucket = self.bucket
        bucket.rate = rate
        # A burst the size of two seconds' share: what all senders may send at
        # once stays within about two seconds of the room's deliveries.
        bucket.burst = max(1, min(limits.burst, int(rate * 2)))
        return bucket.take()


class AddressCounter:
    """The connections open from each IP address, at most ``limit`` each (None: no limit)."""

    def __init__(self, limit: Optional[int]) -> None:
        if limit is not None and limit < 1:
            raise ValueError("max_connections_per_address must be at least 1 (or None)")
        self.limit = limit
        self._open: Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def take(self, address: Any) -> Optional[str]:
        """Count a connection from ``address`` (a socket address); the key to give
        back, or None when its IP address has ``limit`` open already."""
        key = str(address[0]) if isinstance(address, tuple) and address else str(address)
        with self._lock:
            if self.limit is not None and self._open[key] >= self.limit:
                return None
            self._open[key] += 1
        return key

    def give_back(self, key: str) -> None:
        """The connection counted under ``key`` is gone."""
        with self._lock:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]
