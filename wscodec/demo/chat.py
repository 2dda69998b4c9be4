"""The demo's chat room: its JSON protocol, limits, rate limiting and fan-out.

The protocol, one JSON object per text message:

- client to server: ``{"type": "join", "name": NICK}`` first, then any number
  of ``{"type": "message", "text": TEXT}``;
- server to client: ``welcome`` (the nickname given, who is online, the last
  messages and the limits), then ``join`` and ``leave`` events (a name, and
  how many are online) and ``message`` events as they happen, a ``busy``
  notice to a sender whose message did not fit its share of the room, and a
  ``stats`` object every second (backend, people online, messages per second).

Abuse is answered with a close code, never an exception that could take the
server down: a message larger than ``max_message_bytes`` gets 1009 from the
codec, a chat text longer than ``max_text`` characters 1009, a binary message
1003, and invalid JSON, JSON nested deeper than ``max_json_depth``, a bad
nickname, an unknown message type or sending faster than the rate limit 1008.

Fan-out is bounded too. Each member has an outbox of its own, so a slow
reader never holds up the room; what waits in it is bounded per member
(``max_backlog_bytes`` or an equal share of ``max_total_backlog_bytes``,
whichever is smaller, and on the threaded server ``max_backlog_messages``).
On the asyncio server (the default) the outbox is the connection's transport
buffer, written without waiting; on the threaded server it is a queue
written by a short-lived thread. A member whose outbox would grow beyond
that cannot keep up with the room and is closed with 1013 (Try Again Later;
the page reconnects): its backlog is dropped, so the others' messages, a
newcomer's included, go out promptly and the server's memory stays bounded.

What the room delivers is bounded as well: at most ``max_deliveries``
messages a second to this server's members together. Those who spoke in the
last few seconds share that out equally (:class:`~wscodec.demo.limits.SendShare`);
a message beyond its sender's share is dropped with a ``busy`` notice to the
sender. So many members each within their own ``rate`` cannot push the room
past what the server writes in time, and everyone's messages, an observer's
included, still arrive within a second.

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
import re
import threading
import time
import unicodedata
from typing import Any, Callable, Deque, Dict, List, Optional, Set

from .. import __version__, _backend
from ..brokers import Broker, LocalBroker
from ..exceptions import ConnectionClosed
from ..protocol import CloseCode
from ..sync.connection import Data, SyncConnection
from .limits import ActiveSenders, ChatLimits, FanoutBudget, RateMeter, SendShare, TokenBucket

__all__ = [
    "Broker",
    "ChatApp",
    "ChatLimits",
    "LocalBroker",
    "FanoutBudget",
    "RateMeter",
    "Refused",
    "Room",
    "SendShare",
    "TokenBucket",
    "decode_event",
    "json_depth",
    "read_join",
    "read_message",
    "validate_name",
]

logger = logging.getLogger("wscodec.demo")


class _Outbox:
    """The messages waiting to be sent to one member, written by a thread of its own.

    A message goes straight to the socket when nothing waits and the socket
    takes it without blocking (a member that keeps up). Otherwise it waits
    here, for a thread that exists only while something waits (as with
    :meth:`~wscodec.sync.connection.SyncConnection.send_nowait`) and writes with
    the blocking :meth:`~wscodec.sync.connection.SyncConnection.send`, so a peer
    that does not read holds up its own outbox only.
    """

    def __init__(self, connection: Any, budget: FanoutBudget) -> None:
        self.connection = connection
        self.budget = budget
        self._queue: Deque[str] = collections.deque()
        self._size = 0
        self._draining = False
        self._open = True
        with budget.lock:
            budget.members += 1

    def put(self, message: str) -> bool:
        """Queue ``message``; False if the member is gone, or too far behind (then
        it is closed with 1013)."""
        budget = self.budget
        size = len(message)
        with budget.lock:
            if not self._open:
                return False
            idle = not self._draining
        # A member that keeps up takes the message at once, in this thread:
        # no queue, and no thread started per message (see send_now()).
        if idle and self.connection.send_now(message):
            return True
        with budget.lock:
            if not self._open:
                return False
            if self._queue and (
                len(self._queue) >= budget.max_messages or self._size + size > budget.share()
            ):
                waiting, waiting_bytes = len(self._queue), self._size
                self._discard()
                budget.dropped += 1
                start = True  # a thread to close it: the drain thread may be stuck in send()
            else:
                self._queue.append(message)
                self._size += size
                budget.total += size
                start = not self._draining
                self._draining = True
                waiting = -1
        if waiting >= 0:
            logger.warning(
                "%s: %d messages (%d bytes) wait to be sent, too far behind; closing with 1013",
                self.connection.remote_address,
                waiting,
                waiting_bytes,
            )
        if start:
            target = self._drain if waiting < 0 else self._close_overflowed
            threading.Thread(target=target, name="wscodec-demo-outbox", daemon=True).start()
        return waiting < 0

    def close(self) -> None:
        """Drop what waits: the member left."""
        with self.budget.lock:
            self._discard()

    def _discard(self) -> None:  # with budget.lock held
        if self._open:
            self._open = False
            self.budget.members -= 1
        self.budget.total -= self._size
        self._queue.clear()
        self._size = 0

    def _drain(self) -> None:
        budget = self.budget
        while True:
            with budget.lock:
                if not self._queue:
                    self._draining = False
                    return
                message = self._queue.popleft()
                self._size -= len(message)
                budget.total -= len(message)
            try:
                self.connection.send(message)
            except (ConnectionClosed, OSError):
                self.close()
                with budget.lock:
                    self._draining = False
                return

    def _close_overflowed(self) -> None:
        try:
            self.connection.close(CloseCode.TRY_AGAIN_LATER, "too slow: messages piled up")
        except (ConnectionClosed, OSError):
            pass


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


_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def json_depth(text: str) -> int:
    """How deeply ``text``'s JSON arrays and objects nest (brackets in strings aside).

    Cheap for the messages the chat expects: text with at most one bracket is
    answered by counting; a regular-expression scan of the tokens (strings
    skipped whole) runs otherwise, with no recursion whatever the depth.
    """
    if text.count("[") + text.count("{") <= 1:
        return text.count("[") + text.count("{")
    depth = deepest = 0
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _now_ms() -> int:
    return int(time.time() * 1000)


class Room:
    """A chat room: who is online, the recent history, and the local connections.

    Everything said in the room goes through ``broker``; the room applies each
    event it gets back to its state and queues it in each of its own
    connections' outbox, bounded by ``limits`` (see :class:`FanoutBudget`), so
    a slow reader never holds up the room and one too far behind is closed
    with 1013. ``outbox(connection, budget)`` makes a connection's outbox: by
    default one for the threaded server's connections; the asyncio server's
    has its own (:mod:`wscodec.demo.on_asyncio`).
    """

    def __init__(
        self,
        broker: Broker,
        channel: str = "chat",
        history: int = 50,
        limits: Optional[ChatLimits] = None,
        outbox: Optional[Callable[[Any, FanoutBudget], _Outbox]] = None,
    ) -> None:
        self.broker = broker
        self._new_outbox = outbox or _Outbox
        self.channel = channel
        self.limits = limits or ChatLimits()
        self.budget = FanoutBudget(self.limits)
        self.received = RateMeter()  # chat messages said in the room
        self.delivered = RateMeter()  # WebSocket messages sent to local connections
        self._lock = threading.RLock()
        self._members: Set[str] = set()
        self._history: Deque[Dict[str, Any]] = collections.deque(maxlen=history)
        self._local: Dict[Any, _Outbox] = {}
        self._names: Dict[Any, str] = {}
        self._shares: Dict[Any, SendShare] = {}
        self._senders = ActiveSenders(self.limits.sender_window)
        # The room's own cap, beside each sender's share: the shares follow who
        # spoke lately, so members who all start at once (each with a token)
        # would otherwise be admitted together, n messages to n members.
        self._deliveries = TokenBucket(
            self.limits.max_deliveries, max(1, self.limits.max_deliveries // 2)
        )
        self._unsubscribe = broker.subscribe(channel, self._on_event)

    # What a connection does --------------------------------------------------------

    def join(self, connection: Any, name: str, limits: ChatLimits) -> str:
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
            outbox = self._new_outbox(connection, self.budget)
            outbox.put(json.dumps(welcome))
            self._local[connection] = outbox
            self._names[connection] = given
            self._shares[connection] = SendShare(self.limits)
        self._publish({"type": "join", "name": given, "time": _now_ms()})
        return given

    def admit(self, connection: Any) -> bool:
        """Whether ``connection``'s next message fits its share of the room's deliveries.

        When it does not, the sender gets a ``busy`` notice and the message is
        not published (see :attr:`ChatLimits.max_deliveries`).
        """
        with self._lock:
            share = self._shares.get(connection)
            outbox = self._local.get(connection)
            if share is None or outbox is None:
                return False
            members = len(self._local)
            deliveries = min(members, self._deliveries.burst)  # never more than it holds
            if share.take(members, self._senders.count()) and self._deliveries.take(deliveries):
                return True
        notice = {"type": "busy", "text": "The room is busy: that message was not sent."}
        outbox.put(json.dumps(notice))
        return False

    def say(self, name: str, text: str) -> None:
        """Publish a chat message from ``name``."""
        event = {"type": "message", "name": name, "text": text, "time": _now_ms()}
        self._publish(event, keep=self._history.maxlen or 0)

    def leave(self, connection: Any) -> None:
        """Remove ``connection``; everyone left gets the ``leave`` notice."""
        with self._lock:
            outbox = self._local.pop(connection, None)
            name = self._names.pop(connection, None)
            self._shares.pop(connection, None)
        if outbox is not None:
            outbox.close()
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
    def connections(self) -> List[Any]:
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
            return self._fan_out(message)

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
                self._senders.saw(event.get("name", ""))
                self.received.add()
            elif kind in ("join", "leave"):
                # The count, not the list: a list in every notice would make
                # n joins cost n * n names to every member (12 MB a join at
                # 1,000). A page keeps its own list, from its welcome on.
                if kind == "join":
                    self._members.add(event["name"])
                else:
                    self._members.discard(event["name"])
                event["online"] = len(self._members)
                raw = json.dumps(event)
            # Under the lock: every connection gets the events in one order.
            self.delivered.add(self._fan_out(raw))

    def _fan_out(self, message: str) -> int:
        """Queue ``message`` for every local connection (lock held); how many took it."""
        return sum(1 for outbox in list(self._local.values()) if outbox.put(message))


class Refused(Exception):
    """A member's message breaks a rule: the connection closes with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def decode_event(raw: Data, limits: ChatLimits) -> Dict[str, Any]:
    """``raw`` as a chat event (a JSON object); raises :class:`Refused` otherwise."""
    if not isinstance(raw, str):
        raise Refused(CloseCode.UNSUPPORTED_DATA, "text messages only")
    if json_depth(raw) > limits.max_json_depth:
        # Before json.loads, which recurses once per level: RecursionError
        # (or, on a small thread stack, worse) instead of an answer.
        raise Refused(CloseCode.POLICY_VIOLATION, "JSON nested too deeply")
    try:
        event = json.loads(raw)
    except ValueError:
        raise Refused(CloseCode.POLICY_VIOLATION, "invalid JSON") from None
    if not isinstance(event, dict):
        raise Refused(CloseCode.POLICY_VIOLATION, "expected a JSON object")
    return event


def read_join(raw: Data, limits: ChatLimits) -> str:
    """The nickname ``raw``, a member's first message, asks for; raises :class:`Refused`."""
    event = decode_event(raw, limits)
    if event.get("type") != "join":
        raise Refused(CloseCode.POLICY_VIOLATION, "join expected")
    name = validate_name(event.get("name"), limits.max_name)
    if name is None:
        raise Refused(CloseCode.POLICY_VIOLATION, "invalid nickname")
    return name


def read_message(raw: Data, limits: ChatLimits, bucket: TokenBucket) -> str:
    """The chat text in ``raw`` (stripped), taken from ``bucket``; raises :class:`Refused`."""
    event = decode_event(raw, limits)
    if event.get("type") != "message":
        raise Refused(CloseCode.POLICY_VIOLATION, "unknown message type")
    text = event.get("text")
    if not isinstance(text, str):
        raise Refused(CloseCode.POLICY_VIOLATION, "text must be a string")
    if len(text) > limits.max_text:
        raise Refused(CloseCode.MESSAGE_TOO_BIG, "message too long")
    if not bucket.take():
        raise Refused(CloseCode.POLICY_VIOLATION, "rate limit exceeded")
    return text.strip()


class ChatApp:
    """The WebSocket side of the demo on the threaded server: ``handle`` is its handler.

    The rules (:func:`read_join`, :func:`read_message`) and the :class:`Room`
    are those of :class:`~wscodec.demo.on_asyncio.AsyncChatApp`.
    """

    def __init__(
        self,
        room: Optional[Room] = None,
        limits: Optional[ChatLimits] = None,
        stats_interval: float = 1.0,
    ) -> None:
        self.limits = limits or ChatLimits()
        self.room = room or Room(LocalBroker(), history=self.limits.history, limits=self.limits)
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
            send_stats(self.room)

    def handle(self, connection: SyncConnection) -> None:
        """Serve one chat connection: the join, then its messages, then the leave."""
        limits, room = self.limits, self.room
        try:
            try:
                raw = connection.recv(timeout=limits.join_timeout)
            except TimeoutError:
                raise Refused(CloseCode.POLICY_VIOLATION, "join expected") from None
            name = joined(room, connection, read_join(raw, limits), limits)
        except Refused as refused:
            refuse(connection, refused)
            return
        bucket = TokenBucket(limits.rate, limits.burst)
        try:
            for raw in connection:
                text = read_message(raw, limits, bucket)
                if text and room.admit(connection):
                    room.say(name, text)
        except Refused as refused:
            refuse(connection, refused)
        finally:
            room.leave(connection)


def joined(room: Room, connection: Any, name: str, limits: ChatLimits) -> str:
    """Add ``connection`` to ``room`` as ``name``; the nickname it got (logged)."""
    given = room.join(connection, name, limits)
    logger.info("%s joined as %r", connection.remote_address, given)
    return given


def send_stats(room: Room) -> None:
    """One tick of the stats panel; an error is logged, never raised, to keep it going."""
    try:
        room.send_stats()
    except Exception:
        logger.exception("sending the stats failed")


def log_refusal(connection: Any, refused: Refused) -> None:
    logger.info("%s: closing with %d (%s)", connection.remote_address, refused.code, refused)


def refuse(connection: SyncConnection, refused: Refused) -> None:
    """Close ``connection`` for ``refused``, logged (the peer may be gone already)."""
    log_refusal(connection, refused)
    try:
        connection.close(refused.code, refused.reason)
    except (ConnectionClosed, OSError):
        pass
