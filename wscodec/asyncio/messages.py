"""The messages an asyncio connection received and the application has not taken yet.

The protocol puts whole messages, or the pieces of a message that arrives in
several frames (:class:`~wscodec.connection.Fragment`), from the event loop's
read callback; the application takes them with ``recv()`` or
``recv_streaming()``. Nothing is removed before it is handed out, so a
``recv()`` cancelled while it waits loses nothing.

Past ``high`` queued items the queue asks the transport to stop reading; below
``low`` it asks it to read again: a peer that sends faster than the
application reads waits in TCP, not in our memory. The one exception: while
``recv()`` waits for the rest of a fragmented message, its fragments come in
(``max_size`` bounds the message).
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable, List, Optional, Tuple, Union

from .. import _backend
from ..exceptions import ConcurrencyError
from ..received import Fragment

__all__ = ["ConcurrencyError", "MessageQueue", "Data", "water_marks"]

Data = Union[str, bytes]
_Item = Union[str, bytes, Fragment]


def water_marks(max_queue: Union[int, Tuple[int, Optional[int]], None]) -> Tuple[int, int]:
    """``(high, low)`` from ``max_queue``: an int is the high mark and low is a
    quarter of it (as websockets does); ``None`` is no bound."""
    if max_queue is None:
        return 0, 0
    if isinstance(max_queue, tuple):
        high, low = max_queue
        low = high // 4 if low is None else low
    else:
        high, low = max_queue, max_queue // 4
    if high < 1 or not 0 <= low <= high:
        raise ValueError("max_queue must be a positive int or (high, low) with 0 <= low <= high")
    return high, low


class MessageQueue:
    """Received messages and fragments, in order, with flow control.

    :param pause: called when ``high`` items wait (the transport stops reading).
    :param resume: called when, after a pause, ``low`` items or fewer wait.
    """

    __slots__ = (
        "_discarding",
        "_finals",
        "_items",
        "_loop",
        "_pause",
        "_reading",
        "_resume",
        "_skipping",
        "_waiter",
        "closed",
        "high",
        "low",
        "paused",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pause: Callable[[], None],
        resume: Callable[[], None],
        high: int = 16,
        low: int = 4,
    ) -> None:
        self._loop = loop
        self._pause = pause
        self._resume = resume
        self.high = high
        self.low = low
        # A list, not a deque: an empty deque takes 600 bytes, and the queue
        # is short (max_queue, plus what one read completes).
        self._items: List[_Item] = []
        self._finals = 0  # final Fragments queued: each ends one fragmented message
        self._waiter: Optional[asyncio.Future[None]] = None
        self._reading = False  # a coroutine is in recv_streaming()
        self._skipping = False  # dropping the rest of a message whose stream was abandoned
        self._discarding = False  # the application closed: new messages are dropped
        self.paused = False
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    # The protocol's side ---------------------------------------------------------

    def put(self, item: _Item) -> None:
        """Queue a message or a fragment (from the read callback)."""
        if self._discarding:
            return
        if self._skipping and type(item) is Fragment:
            if item.final:  # type: ignore[union-attr]
                self._skipping = False
            return
        self._items.append(item)
        if type(item) is Fragment and item.final:  # type: ignore[union-attr]
            self._finals += 1
        waiter = self._waiter
        if waiter is not None:
            # Every reader of _waiter takes a done one for none: dropping it
            # now spares the next wait() asking the future (a method call).
            self._waiter = None
            if not waiter.done():  # not cancelled
                waiter.set_result(None)
        if self.high and not self.paused and len(self._items) >= self.high:
            self.paused = True
            self._pause()

    def discard_new(self) -> None:
        """Drop messages from now on, and read again: the closing handshake must get through."""
        self._discarding = True
        if self.paused:
            self._resume_reading()

    def close(self) -> None:
        """No more items will come: waiting readers wake up (and raise once it is empty)."""
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The application's side ------------------------------------------------------

    def ready(self) -> bool:
        """Whether a whole message waits at the head of the queue."""
        items = self._items
        return bool(items) and (type(items[0]) is not Fragment or self._finals > 0)

    def take(self) -> Optional[Data]:
        """The next whole message (its fragments joined), or None while none is complete."""
        if self._reading:
            raise ConcurrencyError("another coroutine is already receiving from this connection")
        items = self._items
        if not items:
            return None
        message = items[0]
        if type(message) is not Fragment:
            del items[0]  # compiled, pop(0) is a method call, del is not
        elif self._finals:
            message = self._join_fragments()
        else:
            return None
        if self.paused and len(items) <= self.low:
            self._resume_reading()
        return message  # type: ignore[return-value]

    def wait(self) -> asyncio.Future[None]:
        """A future that is done once something more arrives, or the queue closes."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            raise ConcurrencyError("another coroutine is already receiving from this connection")
        if self.paused and self._items:
            # The head message is still arriving and cannot be taken whole:
            # let its fragments in (max_size bounds them).
            self._resume_reading()
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def _join_fragments(self) -> Data:
        items = self._items
        pieces: List[Union[str, bytes]] = []
        while True:
            fragment: Fragment = items.pop(0)  # type: ignore[assignment]
            pieces.append(fragment.data)
            if fragment.final:
                self._finals -= 1
                break
        if isinstance(pieces[0], str):
            return "".join(pieces)  # type: ignore[arg-type]
        return b"".join(pieces)  # type: ignore[arg-type]

    async def stream(self) -> AsyncIterator[Data]:
        """The pieces of the next message as they arrive (a whole message is one piece).

        Stopping before the last piece drops the rest of that message.
        """
        if self._reading or (self._waiter is not None and not self._waiter.done()):
            raise ConcurrencyError("another coroutine is already receiving from this connection")
        self._reading = True
        items = self._items
        started = finished = False
        try:
            while not items:
                if self.closed:
                    return
                await self.wait()
            first = items[0]
            if type(first) is not Fragment:
                items.pop(0)
                self._taken()
                finished = True
                yield first  # type: ignore[misc]
                return
            while True:
                while not items:
                    if self.closed:
                        return
                    await self.wait()
                fragment: Fragment = items.pop(0)  # type: ignore[assignment]
                started = True
                if fragment.final:
                    self._finals -= 1
                    finished = True
                self._taken()
                yield fragment.data
                if finished:
                    return
        finally:
            self._reading = False
            if started and not finished:
                self._drop_rest()

    def _drop_rest(self) -> None:
        """Drop the queued fragments of a message whose reader stopped halfway."""
        items = self._items
        while items and type(items[0]) is Fragment:
            fragment: Fragment = items.pop(0)  # type: ignore[assignment]
            if fragment.final:
                self._finals -= 1
                self._taken()
                return
        self._skipping = True  # its last fragments have not arrived yet
        self._taken()

    def _taken(self) -> None:
        if self.paused and len(self._items) <= self.low:
            self._resume_reading()

    def _resume_reading(self) -> None:
        self.paused = False
        self._resume()


#: The pure-Python class, whichever backend is active (the twins' tests compare them).
PythonMessageQueue = MessageQueue
if __name__ == "wscodec.asyncio.messages":
    # With the compiled backend: this module's own source, built as an
    # extension type (setup.py; its attributes are typed in
    # src/wscodec/asyncio/_messages_c.pxd).
    _compiled = _backend.compiled_twin("wscodec.asyncio._messages_c")
    if _compiled is not None:
        # Through globals(): in the compiled build the name is an extension
        # type, which Cython will not let the module rebind.
        globals()["MessageQueue"] = _compiled.MessageQueue
