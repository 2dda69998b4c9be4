"""Received messages, and which thread reads the socket.

A :class:`~wscodec.sync.connection.SyncConnection` keeps the messages it received in an
:class:`Inbox` until the application takes them, and reads its socket from
one thread at a time:

- the application's own thread while it waits in ``recv()``: a message then
  reaches it without waking another thread (on a small-message echo, that
  hand-off was most of the server's cost per round trip);
- the connection's background reader once the application has stayed away
  from ``recv()`` for a grace period, so pings, pongs and the closing
  handshake are still answered while it is busy; it hands reading back when
  the application waits again with nothing queued;
- the background reader alone, for good, once the connection is closing.

Every state change that another thread waits for is signalled on one of two
conditions sharing one lock: ``_app`` (threads in ``recv()``) and
``_background`` (the background reader). The background reader is only woken
when it has something to do, never once per message.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Deque, Iterable, Optional, Sequence, Union

Data = Union[str, bytes]

APP = "application"
BACKGROUND = "background"


class ReadTurn:
    """What :meth:`Inbox.enter_and_take` returns when the caller must now read the socket."""


_READ = ReadTurn()


class Inbox:
    """A bounded FIFO of received messages that can be closed, and the socket's read turn.

    :meth:`enter_and_take` hands out every message still queued before it
    reports the close, so nothing received before a clean close is lost.
    """

    def __init__(self, maxsize: int, grace: float) -> None:
        self._items: Deque[Data] = collections.deque()
        self._maxsize = maxsize
        self._grace = grace
        # A C-level lock (a Condition's own __enter__ is Python code). recv()
        # takes it twice per message, with acquire() and release() rather than
        # ``with``: on CPython 3.11 a ``with`` costs ~1,100 instructions more
        # (binding __enter__ and __exit__, calling __exit__ with three Nones).
        self._lock = threading.Lock()
        self._app = threading.Condition(self._lock)
        self._background = threading.Condition(self._lock)
        self._closed = False
        self._discarding = False
        self._waiting = 0  # application threads inside recv()
        self._idle = 0  # of which blocked in take() with nothing queued
        self._watching_idle = False  # the background reader is in wait_idle()
        self._entries = 0  # recv() calls so far: did the application come back?
        self._reader: Optional[str] = None  # who reads the socket now
        self._background_only = False  # closing: the background reader reads to the end
        self._parked = False  # the background reader waits for recv() to return

    # Messages ------------------------------------------------------------------

    def put(self, item: Data) -> None:
        """Queue a message read by the background reader; wait while the queue is full."""
        with self._lock:
            while len(self._items) >= self._maxsize and not self._closed:
                self._background.wait()
            self._extend((item,))

    def put_nowait(self, item: Data) -> None:
        """Queue a message read by the application's thread (which must not wait on itself)."""
        with self._lock:
            self._extend((item,))

    def _extend(self, items: Iterable[Data]) -> None:
        if not self._closed and not self._discarding:
            before = len(self._items)
            self._items.extend(items)
            if self._idle and len(self._items) > before:
                self._app.notify(len(self._items) - before)  # one waiter per message

    def pending(self) -> bool:
        with self._lock:
            return bool(self._items)

    def enter_and_take(
        self, deadline: Optional[float], may_read: bool
    ) -> Union[Data, ReadTurn, None]:
        """An application thread entered recv(): the next message for it.

        That is a message; None once closed and drained; or a ReadTurn when
        the caller reads the socket next (``may_read`` says whether it may).
        Raises :class:`TimeoutError` when ``deadline`` (a ``time.monotonic()``
        value) passes first. The caller has left recv() again unless it got
        a ReadTurn, which it gives back with one of the ``end_read`` calls.
        """
        self._lock.acquire()
        try:
            self._waiting += 1
            self._entries += 1
            return self._take_or_leave(deadline, may_read)
        finally:
            self._lock.release()

    def end_read_and_take(
        self, received: Sequence[Data], deadline: Optional[float], may_read: bool
    ) -> Union[Data, ReadTurn, None]:
        """Queue what the caller read, give the read turn back, then take as above.

        The caller holds a ReadTurn from :meth:`enter_and_take` (or from here);
        this leaves unless it hands out another.
        """
        self._lock.acquire()
        try:
            if len(received) == 1 and not self._items and not self._closed and not self._discarding:
                # One message read and none queued before it (a lock-step
                # echo): it goes straight back to the caller, which is what
                # queueing it and taking it again would do.
                self._end_read()
                self._leave()
                return received[0]
            self._extend(received)
            self._end_read()
            return self._take_or_leave(deadline, may_read)
        finally:
            self._lock.release()

    def end_read_and_leave(self, received: Iterable[Data] = ()) -> None:
        """Queue what the caller read, give the read turn back and leave (on an error)."""
        with self._lock:
            self._extend(received)
            self._end_read()
            self._leave()

    def _take_or_leave(
        self, deadline: Optional[float], may_read: bool
    ) -> Union[Data, ReadTurn, None]:
        """The next message, None once closed, or a ReadTurn; leaves unless a ReadTurn."""
        items = self._items
        while True:
            if items:
                item = items.popleft()
                if len(items) + 1 >= self._maxsize:
                    self._background.notify()  # room for a waiting put()
                self._leave()
                return item
            if self._closed:
                self._leave()
                return None
            if may_read and self._reader is None and not self._background_only:
                self._reader = APP
                return _READ
            try:
                self._wait_for_message(deadline)
            except BaseException:
                self._leave()
                raise

    def _wait_for_message(self, deadline: Optional[float]) -> None:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError("no message received in time")
        self._idle += 1
        if self._watching_idle:
            self._background.notify()
        try:
            self._app.wait(remaining)
        finally:
            self._idle -= 1

    def _leave(self) -> None:
        self._waiting -= 1
        if self._waiting == 0 and self._parked:
            self._background.notify()

    def wait_idle(self, timeout: float) -> None:
        """Wait until every message was taken and the application waits for more.

        That is when it has finished with what it received (answered it, for
        example); gives up after ``timeout`` seconds.
        """
        with self._lock:
            self._watching_idle = True
            try:
                self._background.wait_for(self._idle_or_over, timeout)
            finally:
                self._watching_idle = False

    def _idle_or_over(self) -> bool:
        return (not self._items and self._idle > 0) or self._closed or self._discarding

    def discard_new(self) -> None:
        """Drop messages from now on (the application closed the connection)."""
        with self._lock:
            self._discarding = True
            self._maxsize = len(self._items) + 1
            self._background.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._app.notify_all()
            self._background.notify_all()

    # The read turn ---------------------------------------------------------------

    def _end_read(self) -> None:
        self._reader = None
        if self._idle:
            self._app.notify()  # another thread in recv() may read next
        if self._background_only:
            self._background.notify()

    def read_in_background(self) -> None:
        """From now on only the background reader reads (the connection is closing)."""
        with self._lock:
            if not self._background_only:
                self._background_only = True
                self._background.notify_all()

    def wait_background_turn(self) -> bool:
        """Block the background reader until it should read; False once closed.

        Its turn comes when the application has not entered recv() for a
        grace period, or when the connection is closing.
        """
        with self._lock:
            while not self._closed:
                if self._reader is None and self._background_only:
                    break
                if self._reader is None and self._waiting == 0:
                    if self._away_for_grace():
                        break
                    continue
                self._parked = True
                try:
                    self._background.wait()
                finally:
                    self._parked = False
            if self._closed:
                return False
            self._reader = BACKGROUND
            return True

    def _away_for_grace(self) -> bool:
        """Whether the application stays out of recv() for the grace period (lock held)."""
        seen = self._entries
        end = time.monotonic() + self._grace
        while True:
            if self._closed or self._reader is not None:
                return False
            if self._background_only:
                return True
            if self._waiting or self._entries != seen:
                return False
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            self._background.wait(remaining)

    @property
    def app_waiting(self) -> bool:
        """Whether an application thread is in recv() (read without the lock: a hint)."""
        return self._waiting > 0

    def hand_back(self) -> bool:
        """Give reading back to the application if it is in recv().

        Even with messages queued: it takes them first, then reads. (Waiting
        for a moment with nothing queued would never come while messages keep
        arriving, as in a lock-step echo.)
        """
        with self._lock:
            if self._background_only or self._waiting == 0:
                return False
            self._reader = None
            self._app.notify()
            return True


class Outbox:
    """Messages queued by ``send_nowait()``, up to ``limit`` bytes, for one drain thread at a time.

    :meth:`put` tells the caller whether it must start the drain thread;
    :meth:`take` hands that thread the next message, or None once the queue
    is empty, when the thread ends and the next :meth:`put` starts another.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._messages: Deque[Data] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()
        self._draining = False

    def put(self, message: Data) -> Optional[bool]:
        """Queue ``message``: whether a drain must start; None (not queued) past ``limit``."""
        size = len(message)
        with self._lock:
            if self._size + size > self.limit:
                return None
            self._messages.append(message)
            self._size += size
            start = not self._draining
            self._draining = True
            return start

    def idle(self) -> bool:
        """Whether nothing waits and no drain runs: a message may be written directly."""
        with self._lock:
            return not self._draining

    def take(self) -> Optional[Data]:
        """The next message to write; None when there is none and the drain ends."""
        with self._lock:
            if not self._messages:
                self._draining = False
                return None
            message = self._messages.popleft()
            self._size -= len(message)
            return message

    def clear(self) -> None:
        """Drop every queued message; the drain, if any, ends."""
        with self._lock:
            self._messages.clear()
            self._size = 0
            self._draining = False
