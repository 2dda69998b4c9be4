"""Publish/subscribe backends that fan messages out to every subscriber.

A :class:`Broker` carries text messages on named channels. Two are provided:

- :class:`LocalBroker` (the default, no dependency): everything stays in this
  process, callbacks run in the publisher's thread;
- :class:`~wscodec.brokers.redis.RedisBroker` (``pip install 'wscodec[redis]'``):
  Redis pub/sub carries each message to every process and every machine that
  uses the same Redis server, so the subscribers of a channel get it wherever
  they are connected.

:func:`broker_from_url` makes one from a setting: ``None``, ``""`` or
``local://`` for the local broker, ``redis://HOST:PORT/DB`` (or ``rediss://``,
``unix://``) for Redis.

Here: the broker interface, the local broker, and Redis in :mod:`wscodec.brokers.redis`.
May import the core only; the apps and the demo import it, never the other way round.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, List, Optional

__all__ = ["Broker", "Deliver", "LocalBroker", "Unsubscribe", "broker_from_url"]

logger = logging.getLogger("wscodec.brokers")

#: A subscriber: called with each message published on its channel.
Deliver = Callable[[str], None]
#: Returned by :meth:`Broker.subscribe`; call it to stop receiving.
Unsubscribe = Callable[[], None]


class Broker:
    """Publish/subscribe of text messages on named channels.

    Implementations deliver each message of a channel to every subscriber,
    the publisher's own included, and the messages of one publisher in the
    order they were published. A broker may also keep a bounded history per
    channel shared by every process (:meth:`history`).
    """

    def publish(self, channel: str, message: str, *, keep: int = 0) -> None:
        """Send ``message`` to every subscriber of ``channel``.

        With ``keep`` > 0, a broker that keeps a shared history also appends
        the message to the channel's history, trimmed to its last ``keep``
        messages.
        """
        raise NotImplementedError

    def subscribe(self, channel: str, callback: Deliver) -> Unsubscribe:
        """Call ``callback(message)`` for each message published on ``channel``."""
        raise NotImplementedError

    def history(self, channel: str, limit: int) -> Optional[List[str]]:
        """The last ``limit`` messages kept for ``channel``, oldest first.

        None when this broker keeps no shared history (or cannot reach it
        now): the caller then relies on what it saw itself.
        """
        return None

    def close(self) -> None:
        """Release what the broker holds (connections, threads)."""


class LocalBroker(Broker):
    """The in-process broker: callbacks run in the publisher's thread, in order.

    A lock serialises deliveries, so every subscriber sees the messages of a
    channel in the same order even when several threads publish at once. It
    keeps no history: a process-local room remembers what it saw.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._subscribers: Dict[str, List[Deliver]] = {}

    def publish(self, channel: str, message: str, *, keep: int = 0) -> None:
        """Call every subscriber of ``channel`` now, in this thread."""
        with self._lock:
            for callback in list(self._subscribers.get(channel, ())):
                try:
                    callback(message)
                except Exception:  # one broken subscriber must not starve the others
                    logger.exception("subscriber of %r failed", channel)

    def subscribe(self, channel: str, callback: Deliver) -> Unsubscribe:
        """Add ``callback`` to the subscribers of ``channel``."""
        with self._lock:
            self._subscribers.setdefault(channel, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                callbacks = self._subscribers.get(channel, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    self._subscribers.pop(channel, None)

        return unsubscribe

    def channels(self) -> List[str]:
        """The channels that have at least one subscriber."""
        with self._lock:
            return [channel for channel, callbacks in self._subscribers.items() if callbacks]


def broker_from_url(url: Optional[str]) -> Broker:
    """The broker a setting names.

    ``None``, ``""``, ``"local"`` or ``"local://"``: a :class:`LocalBroker`.
    ``redis://[:PASSWORD@]HOST[:PORT][/DB]``, ``rediss://...`` (TLS) or
    ``unix:///path/to/redis.sock``: a
    :class:`~wscodec.brokers.redis.RedisBroker` (needs the ``redis`` package).
    Anything else raises :class:`ValueError`.
    """
    if not url or url in ("local", "local://"):
        return LocalBroker()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL {url!r}: expected redis://HOST:PORT/DB or local://")
