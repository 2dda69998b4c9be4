"""A broker backed by Redis pub/sub: one room across processes and machines.

::

    from wscodec.brokers.redis import RedisBroker

    broker = RedisBroker("redis://127.0.0.1:6379/0")

Every process that uses the same Redis server (and the same ``prefix``)
shares the channels: a message published anywhere reaches the subscribers of
its channel everywhere. Delivery to this process's own subscribers never
waits for Redis: it happens first, in the publisher's thread (as with
:class:`~wscodec.brokers.LocalBroker`), and the message comes back from Redis
tagged with this broker's id, so it is not delivered twice.

Redis outages degrade to local delivery. The first failure logs one warning;
while Redis is unreachable, messages go to this process's subscribers only
(none of them waits on Redis), and a background thread reconnects with
exponential backoff (from ``min_backoff`` to ``max_backoff`` seconds),
subscribes again to every channel, and logs when fan-out resumes. Messages
published during the outage are not replayed to the other processes.

Needs the ``redis`` package (``pip install 'wscodec[redis]'``), imported
only when a :class:`RedisBroker` is made.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from typing import Any, List, Optional, Set

from . import Broker, Deliver, LocalBroker, Unsubscribe

__all__ = ["RedisBroker"]

logger = logging.getLogger("wscodec.brokers.redis")


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "the Redis broker needs the redis package: pip install 'wscodec[redis]'"
        ) from error
    return redis


class RedisBroker(Broker):
    """Publish/subscribe through the Redis server at ``url``.

    ``prefix`` namespaces the Redis channels and keys (``PREFIX channel:NAME``
    and ``PREFIX history:NAME``), so several applications can share a server.
    ``timeout`` bounds every Redis command a publisher waits for (connecting
    included): a publisher is never held up longer, and while Redis is known
    to be down it is not tried at all.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "wscodec:",
        timeout: float = 0.5,
        min_backoff: float = 0.1,
        max_backoff: float = 2.0,
        connect_wait: Optional[float] = None,
    ) -> None:
        redis = _import_redis()
        self._redis = redis
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        #: Identifies this broker's own messages when Redis sends them back.
        self.node = uuid.uuid4().hex
        #: Messages published while Redis was unreachable (delivered locally only).
        self.local_only = 0
        self._local = LocalBroker()
        no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        options = dict(
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=no_retry,
            health_check_interval=0,
        )
        self._client = redis.Redis.from_url(url, **options)
        self._subscriber_client = redis.Redis.from_url(url, **options)
        self._state = threading.Condition()
        self._up = False
        self._warned = False
        self._generation = 0  # bumped by each subscribe/unsubscribe
        self._synced = -1  # the generation the Redis subscriptions match
        self._closing = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="wscodec-redis-subscriber", daemon=True
        )
        self._thread.start()
        # Wait briefly for the first connection, so that a server started
        # against a reachable Redis fans out from its first message.
        wait = 4 * timeout if connect_wait is None else connect_wait
        with self._state:
            self._state.wait_for(lambda: self._up or self._warned, wait)

    # Broker ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether messages currently reach the other processes through Redis."""
        with self._state:
            return self._up

    def publish(self, channel: str, message: str, *, keep: int = 0) -> None:
        """Deliver to this process's subscribers now, then to everyone through Redis.

        With ``keep`` > 0 the message is also pushed on the channel's history
        list in Redis, trimmed to ``keep`` entries, in the same transaction.
        """
        self._local.publish(channel, message)
        if not self.connected:
            with self._state:
                self.local_only += 1
            return
        try:
            pipe = self._client.pipeline(transaction=True)
            if keep > 0:
                key = self._history_key(channel)
                pipe.lpush(key, message)
                pipe.ltrim(key, 0, keep - 1)
            pipe.publish(self._channel_key(channel), f"{self.node} {message}")
            pipe.execute()
        except self._redis.RedisError as error:
            with self._state:
                self.local_only += 1
            self._set_down(error)

    def subscribe(self, channel: str, callback: Deliver) -> Unsubscribe:
        """Subscribe ``callback``; returns once Redis confirmed (or after ``timeout``)."""
        unsubscribe_local = self._local.subscribe(channel, callback)
        self._resync()

        def unsubscribe() -> None:
            unsubscribe_local()
            self._resync(wait=False)

        return unsubscribe

    def history(self, channel: str, limit: int) -> Optional[List[str]]:
        """The last ``limit`` messages kept in Redis, oldest first; None while unreachable."""
        if limit <= 0 or not self.connected:
            return None
        try:
            items = self._client.lrange(self._history_key(channel), 0, limit - 1)
        except self._redis.RedisError as error:
            self._set_down(error)
            return None
        return [item.decode("utf-8") for item in reversed(items)]

    def close(self) -> None:
        """Stop the subscriber thread and close the connections to Redis."""
        self._closing.set()
        with self._state:
            self._state.notify_all()
        self._thread.join(max(2.0, 4 * self.timeout))
        for client in (self._client, self._subscriber_client):
            try:
                client.close()
            except self._redis.RedisError:  # pragma: no cover - best effort
                pass

    # Internals ---------------------------------------------------------------------

    def _channel_key(self, channel: str) -> str:
        return f"{self.prefix}channel:{channel}"

    def _history_key(self, channel: str) -> str:
        return f"{self.prefix}history:{channel}"

    def _resync(self, wait: bool = True) -> None:
        with self._state:
            self._generation += 1
            generation = self._generation
            self._state.notify_all()
            if wait and self._up:
                self._state.wait_for(
                    lambda: self._synced >= generation or not self._up or self._closing.is_set(),
                    self.timeout,
                )

    def _set_down(self, error: BaseException) -> None:
        with self._state:
            was_up, self._up = self._up, False
            first = not self._warned
            self._warned = True
            self._state.notify_all()
        if was_up or first:
            logger.warning(
                "Redis at %s unreachable (%s): delivering to this process only, "
                "reconnecting in the background",
                self.url,
                error or type(error).__name__,
            )
        else:
            logger.debug("Redis at %s still unreachable: %s", self.url, error)

    def _set_up(self) -> None:
        with self._state:
            if self._up:
                return
            self._up = True
            recovered = self._warned
            missed, self.local_only = self.local_only, 0
            self._state.notify_all()
        if recovered:
            logger.warning(
                "Redis at %s reachable again: fan-out resumed "
                "(%d message(s) were delivered in this process only)",
                self.url,
                missed,
            )
        else:
            logger.info("connected to Redis at %s", self.url)

    def _run(self) -> None:
        backoff = self.min_backoff
        while not self._closing.is_set():
            pubsub = self._subscriber_client.pubsub()
            with self._state:
                self._synced = -1  # a new connection: subscribe to everything again
            try:
                subscribed: Set[str] = set()
                self._sync(pubsub, subscribed)
                self._client.ping()
                self._set_up()
                backoff = self.min_backoff
                while not self._closing.is_set():
                    self._sync(pubsub, subscribed)
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["channel"], message["data"])
                    if not self.connected:  # a publisher saw a failure: check again
                        self._client.ping()
                        self._set_up()
            except (self._redis.RedisError, OSError) as error:
                if self._closing.is_set():
                    break
                self._set_down(error)
            except Exception:  # never let the subscriber thread die
                logger.exception("unexpected error in the Redis subscriber")
                self._set_down(RuntimeError("subscriber error"))
            finally:
                try:
                    pubsub.close()
                except Exception:  # pragma: no cover - best effort
                    pass
            delay = backoff * random.uniform(0.5, 1.0)
            backoff = min(backoff * 2, self.max_backoff)
            self._closing.wait(delay)

    def _sync(self, pubsub: Any, subscribed: Set[str]) -> None:
        """Make the Redis subscriptions match the local subscribers' channels."""
        with self._state:
            generation = self._generation
        if generation == self._synced:
            return
        wanted = {self._channel_key(channel) for channel in self._local.channels()}
        added, removed = wanted - subscribed, subscribed - wanted
        if added:
            pubsub.subscribe(*sorted(added))
        if removed:
            pubsub.unsubscribe(*sorted(removed))
        subscribed.clear()
        subscribed.update(wanted)
        if added:
            # Wait for the confirmations, so that subscribe() returns subscribed.
            pending = len(added)
            while pending and not self._closing.is_set():
                reply = pubsub.get_message(timeout=self.timeout)
                if reply is None:
                    raise self._redis.TimeoutError("no SUBSCRIBE confirmation")
                if reply.get("type") == "message":
                    self._on_message(reply["channel"], reply["data"])
                else:
                    pending -= 1
        with self._state:
            self._synced = generation
            self._state.notify_all()

    def _on_message(self, key: Any, data: Any) -> None:
        try:
            key_text = key.decode("utf-8") if isinstance(key, bytes) else str(key)
            text = data.decode("utf-8") if isinstance(data, bytes) else str(data)
        except UnicodeDecodeError:
            logger.warning("ignoring a message that is not UTF-8 on %r", key)
            return
        origin, _, message = text.partition(" ")
        if origin == self.node:
            return  # delivered locally when it was published
        channel = key_text[len(self.prefix) + len("channel:") :]
        self._local.publish(channel, message)
