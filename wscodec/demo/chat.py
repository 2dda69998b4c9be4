"""The demo's chat room: its JSON protocol, limits, rate limiting and fan-out.

The protocol, one JSON object per text message:

- client to server: ``{"type": "join", "name": NICK}`` first, then any number
  of ``{"type": "message", "text": TEXT}``;
- server to client: ``welcome`` (the nickname given, who is online, the last
  messages and the limits), then ``join``, ``leave`` and ``message`` events
  as they happen, and a ``stats`` object every second (backend, people
  online, messages per second).

Abuse is answered with a close code, never an exception that could take the
server down: a message larger than ``max_message_bytes`` gets 1009 from the
codec, a chat text longer than ``max_text`` characters 1009, a binary message
1003, and invalid JSON, a bad nickname, an unknown message type or sending
faster than the rate limit 1008.

Fan-out goes through a :class:`~wscodec.brokers.Broker` (publish and
subscribe on a named channel, see :mod:`wscodec.brokers`).
:class:`~wscodec.brokers.LocalBroker` keeps everything in this process;
:class:`~wscodec.brokers.redis.RedisBroker` lets several processes and
machines share one room, because a :class:`Room` derives its state (who is
online, the history) only from the events it receives from its broker, and
takes the history a newcomer gets from the broker when the broker keeps one
(Redis: a list capped at ``history`` entries).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, NoReturn, Optional, Set

from .. import __version__, _backend
from ..broadcast import broadcast
from ..brokers import Broker, LocalBroker
from ..exceptions import ConnectionClosed
from ..protocol import CloseCode
from ..sync import Data, SyncConnection

__all__ = [
    "Broker",
    "ChatApp",
    "ChatLimits",
    "LocalBroker",
    "RateMeter",
    "Room",
    "TokenBucket",
    "validate_name",
]

logger = logging.getLogger("wscodec.demo")


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

    def take(self) -> bool:
        """Spend a token; False when none is left (the caller is over the limit)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
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


def validate_name(name: object, max_length: int) -> Optional[str]:
    """The nickname to use for ``name``, or None if it is not acceptable.

    Surrounding spaces are removed; what is left must be 1 to ``max_length``
    characters with no control or format characters.
    """
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())
    if not 0 < len(name) <= max_length:
        return None
    if any(unicodedata.category(char)[0] == "C" for char in name):
        return None
    return name


def _now_ms() -> int:
    return int(time.time() * 1000)


class Room:
    """A chat room: who is online, the recent history, and the local connections.

    Everything said in the room goes through ``broker``; the room applies each
    event it gets back to its state and forwards it to its own connections
    with :func:`wscodec.broadcast`, so a slow reader never holds up the room.
    """

    def __init__(self, broker: Broker, channel: str = "chat", history: int = 50) -> None:
        self.broker = broker
        self.channel = channel
        self.received = RateMeter()  # chat messages said in the room
        self.delivered = RateMeter()  # WebSocket messages sent to local connections
        self._lock = threading.RLock()
        self._members: Set[str] = set()
        self._history: Deque[Dict[str, Any]] = collections.deque(maxlen=history)
        self._local: Dict[SyncConnection, str] = {}
        self._unsubscribe = broker.subscribe(channel, self._on_event)

    # What a connection does --------------------------------------------------------

    def join(self, connection: SyncConnection, name: str, limits: ChatLimits) -> str:
        """Add ``connection`` as ``name`` (made unique); the nickname it got.

        The newcomer gets a ``welcome`` with who is online and the history,
        then everyone (the newcomer included) gets the ``join`` notice.
        """
        with self._lock:
            given = self._unique(name)
            self._members.add(given)
            welcome = {
                "type": "welcome",
                "name": given,
                "users": self._users(),
                "history": self._history_for_newcomer(),
                "worker": os.getpid(),
                "backend": _backend.BACKEND,
                "version": __version__,
                "limits": {"max_text": limits.max_text, "max_name": limits.max_name},
            }
            connection.send_nowait(json.dumps(welcome))
            self._local[connection] = given
        self._publish({"type": "join", "name": given, "time": _now_ms()})
        return given

    def say(self, name: str, text: str) -> None:
        """Publish a chat message from ``name``."""
        event = {"type": "message", "name": name, "text": text, "time": _now_ms()}
        self._publish(event, keep=self._history.maxlen or 0)

    def leave(self, connection: SyncConnection) -> None:
        """Remove ``connection``; everyone left gets the ``leave`` notice."""
        with self._lock:
            name = self._local.pop(connection, None)
        if name is not None:
            self._publish({"type": "leave", "name": name, "time": _now_ms()})

    # State -------------------------------------------------------------------------

    @property
    def users(self) -> List[str]:
        """Who is online, sorted."""
        with self._lock:
            return self._users()

    @property
    def history(self) -> List[Dict[str, Any]]:
        """The last messages, oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def connections(self) -> List[SyncConnection]:
        """The connections of this process that joined the room."""
        with self._lock:
            return list(self._local)

    def stats(self) -> Dict[str, Any]:
        """What the live panel shows."""
        with self._lock:
            online = len(self._members)
        return {
            "type": "stats",
            "backend": _backend.BACKEND,
            "worker": os.getpid(),
            "online": online,
            "messages": self.received.total,
            "in_rate": round(self.received.rate(), 2),
            "out_rate": round(self.delivered.rate(), 2),
        }

    def send_stats(self) -> int:
        """Send :meth:`stats` to the local connections; how many took it."""
        message = json.dumps(self.stats())
        with self._lock:
            return broadcast(list(self._local), message)

    def close(self) -> None:
        """Stop receiving events from the broker."""
        self._unsubscribe()

    # Internals ---------------------------------------------------------------------

    def _users(self) -> List[str]:
        return sorted(self._members, key=lambda name: (name.casefold(), name))

    def _unique(self, name: str) -> str:
        given, number = name, 1
        while given in self._members:
            number += 1
            given = f"{name} ({number})"
        return given

    def _publish(self, event: Dict[str, Any], keep: int = 0) -> None:
        self.broker.publish(self.channel, json.dumps(event), keep=keep)

    def _history_for_newcomer(self) -> List[Dict[str, Any]]:
        """The broker's shared history (Redis) when it has one, else what this room saw."""
        limit = self._history.maxlen or 0
        shared = self.broker.history(self.channel, limit) if limit else None
        if shared is None:
            return list(self._history)
        events = []
        for raw in shared:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "message":
                events.append(event)
        return events

    def _on_event(self, raw: str) -> None:
        try:
            event = json.loads(raw)
            kind = event["type"]
        except (ValueError, TypeError, KeyError):
            logger.warning("ignoring a malformed event from the broker: %.100r", raw)
            return
        with self._lock:
            if kind == "message":
                self._history.append(event)
                self.received.add()
            elif kind == "join":
                self._members.add(event["name"])
                event["users"] = self._users()
                raw = json.dumps(event)
            elif kind == "leave":
                self._members.discard(event["name"])
                event["users"] = self._users()
                raw = json.dumps(event)
            # Under the lock: every connection gets the events in one order.
            self.delivered.add(broadcast(list(self._local), raw))


class _Closed(Exception):
    """The handler closed the connection for a reason already logged."""


class ChatApp:
    """The WebSocket side of the demo: ``handle`` is the server's handler."""

    def __init__(
        self,
        room: Optional[Room] = None,
        limits: Optional[ChatLimits] = None,
        stats_interval: float = 1.0,
    ) -> None:
        self.limits = limits or ChatLimits()
        self.room = room or Room(LocalBroker(), history=self.limits.history)
        self.stats_interval = stats_interval
        self._stop = threading.Event()
        self._stats_thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start sending the stats to connected clients every ``stats_interval`` seconds."""
        if self._stats_thread is None:
            self._stats_thread = threading.Thread(
                target=self._stats_loop, name="wscodec-demo-stats", daemon=True
            )
            self._stats_thread.start()

    def stop(self) -> None:
        """Stop the stats thread and detach the room from its broker."""
        self._stop.set()
        if self._stats_thread is not None:
            self._stats_thread.join(5)
        self.room.close()

    def _stats_loop(self) -> None:
        while not self._stop.wait(self.stats_interval):
            try:
                self.room.send_stats()
            except Exception:  # keep the panel going whatever happens
                logger.exception("sending the stats failed")

    def handle(self, connection: SyncConnection) -> None:
        """Serve one chat connection: the join, then its messages, then the leave."""
        try:
            name = self._join(connection)
        except _Closed:
            return
        bucket = TokenBucket(self.limits.rate, self.limits.burst)
        try:
            for raw in connection:
                event = self._decode(connection, raw)
                if event.get("type") != "message":
                    self._refuse(connection, CloseCode.POLICY_VIOLATION, "unknown message type")
                text = event.get("text")
                if not isinstance(text, str):
                    self._refuse(connection, CloseCode.POLICY_VIOLATION, "text must be a string")
                if len(text) > self.limits.max_text:
                    self._refuse(connection, CloseCode.MESSAGE_TOO_BIG, "message too long")
                if not bucket.take():
                    self._refuse(connection, CloseCode.POLICY_VIOLATION, "rate limit exceeded")
                text = text.strip()
                if text:
                    self.room.say(name, text)
        except _Closed:
            pass
        finally:
            self.room.leave(connection)

    def _join(self, connection: SyncConnection) -> str:
        try:
            raw = connection.recv(timeout=self.limits.join_timeout)
        except TimeoutError:
            self._refuse(connection, CloseCode.POLICY_VIOLATION, "join expected")
        event = self._decode(connection, raw)
        if event.get("type") != "join":
            self._refuse(connection, CloseCode.POLICY_VIOLATION, "join expected")
        name = validate_name(event.get("name"), self.limits.max_name)
        if name is None:
            self._refuse(connection, CloseCode.POLICY_VIOLATION, "invalid nickname")
        given = self.room.join(connection, name, self.limits)
        logger.info("%s joined as %r", connection.remote_address, given)
        return given

    def _decode(self, connection: SyncConnection, raw: Data) -> Dict[str, Any]:
        if not isinstance(raw, str):
            self._refuse(connection, CloseCode.UNSUPPORTED_DATA, "text messages only")
        try:
            event = json.loads(raw)
        except ValueError:
            self._refuse(connection, CloseCode.POLICY_VIOLATION, "invalid JSON")
        if not isinstance(event, dict):
            self._refuse(connection, CloseCode.POLICY_VIOLATION, "expected a JSON object")
        return event

    @staticmethod
    def _refuse(connection: SyncConnection, code: int, reason: str) -> NoReturn:
        logger.info("%s: closing with %d (%s)", connection.remote_address, code, reason)
        try:
            connection.close(code, reason)
        except (ConnectionClosed, OSError):
            pass
        raise _Closed(reason)
