"""An open WebSocket connection on asyncio: a buffered protocol under the websockets API.

The event loop reads into a buffer that :meth:`AsyncConnection.get_buffer`
hands out (one per thread, shared by every connection of its loop: the parser
copies out the payloads and keeps the tail of an incomplete frame, so no
connection holds a read buffer of its own). The sans-I/O
:class:`~wscodec.connection.Connection` parses it in place and turns it into
messages, which wait in a :class:`~wscodec.asyncio.messages.MessageQueue`
until the application takes them. Nothing on the data path awaits but the
application: ``recv()`` returns at once when a message waits, and ``send()``
writes to the transport at once and only waits while the transport holds
more than ``write_limit`` bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from .. import _backend
from ..connection import Connection
from ..exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from ..handshake import Request, Response
from ..keepalive import PendingPings
from ..protocol import CloseCode, State
from ..receive_buffer import ReceiveBuffer
from ..received import Fragment, Pong
from .messages import Data, MessageQueue, water_marks

__all__ = ["AsyncConnection", "Data"]

_OPEN, _CLOSED = State.OPEN, State.CLOSED
_BYTES_LIKE = (bytes, bytearray, memoryview)
_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)

# One read buffer per thread, shared by the connections of the event loop
# that runs there: a loop calls get_buffer(), reads and calls
# buffer_updated() in one go, and the parser copies out what it keeps.
_buffers = threading.local()


def _read_buffer() -> ReceiveBuffer:
    try:
        buffer: ReceiveBuffer = _buffers.buffer
    except AttributeError:
        buffer = _buffers.buffer = ReceiveBuffer()
    return buffer


class _ProtocolBase:
    """Nothing; compiled, the extension base that lets AsyncConnection be an
    extension type and an ``asyncio.BufferedProtocol`` (a Python class) too."""

    __slots__ = ()


class AsyncConnection(_ProtocolBase, asyncio.BufferedProtocol):
    """An open WebSocket connection used from coroutines (server or client side).

    Attributes: ``request`` and ``response`` (the handshake), ``subprotocol``,
    ``id``, ``logger``, ``latency`` (seconds, measured by the last keepalive
    ping), ``remote_address`` and ``local_address``.
    """

    # Slots, not a __dict__: an idle connection's size is what 10,000 of them cost.
    __slots__ = (
        "__weakref__",
        "_buffer",
        "_close_held",
        "_closing_started",
        "_drain_waiters",
        "_fragmenting",
        "_high",
        "_id",
        "_join_writes",
        "_keepalive_waiter",
        "_loop",
        "_lost",
        "_low",
        "_messages",
        "_pings",
        "_reading_paused",
        "_timer",
        "_write_shut",
        "_writing_paused",
        "close_timeout",
        "latency",
        "local_address",
        "logger",
        "ping_interval",
        "ping_timeout",
        "protocol",
        "remote_address",
        "request",
        "response",
        "subprotocol",
        "transport",
        "write_limit",
        "write_timeout",
    )

    def __init__(
        self,
        *,
        max_queue: Union[int, Tuple[int, Optional[int]], None] = 16,
        write_limit: int = 2**15,
        write_timeout: Optional[float] = 30.0,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        close_timeout: Optional[float] = 10.0,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self._high, self._low = water_marks(max_queue)
        self.write_limit = write_limit
        self.write_timeout = write_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.logger = logger or logging.getLogger("wscodec.asyncio")
        self._id: Optional[uuid.UUID] = None  # made on first use: 200 bytes a connection
        self.request: Optional[Request] = None
        self.response: Optional[Response] = None
        self.subprotocol: Optional[str] = None
        self.latency = 0.0
        #: The sans-I/O protocol, once the opening handshake is over.
        self.protocol: Optional[Connection] = None
        self.transport: Optional[asyncio.Transport] = None
        self.remote_address: Any = None
        self.local_address: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._messages: Optional[MessageQueue] = None
        self._lost: Optional[asyncio.Future[None]] = None
        self._pings: PendingPings[Tuple[asyncio.Future[float], float]] = PendingPings()
        self._drain_waiters: List[asyncio.Future[None]] = []
        self._join_writes = False
        self._writing_paused = False
        self._reading_paused = False  # by the transport's owner (the handshake, the queue)
        self._close_held = False  # our close frame waits until the application is idle
        self._closing_started = False
        self._write_shut = False
        self._timer: Optional[asyncio.TimerHandle] = None  # keepalive or closing deadline
        self._keepalive_waiter: Optional[asyncio.Future[float]] = None
        self._fragmenting: Optional[asyncio.Future[None]] = None  # a send() of fragments

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of this connection (a random UUID), for logs."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    # asyncio's protocol callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance(transport, asyncio.Transport): uvloop's transports are not.
        self.transport = transport  # type: ignore[assignment]
        self._loop = loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        self.remote_address = transport.get_extra_info("peername")
        self.local_address = transport.get_extra_info("sockname")
        # Absent from transports without flow control (test doubles, some wrappers).
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(high=self.write_limit)
        self._buffer = _read_buffer()  # this thread's: the loop calls us from it
        # uvloop's transports are not asyncio.Transport instances; the stdlib's are.
        self._join_writes = isinstance(transport, asyncio.Transport)
        _set_nodelay(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        data = self._buffer.filled(nbytes)
        if self.protocol is None:
            self.handshake_data(bytes(data))
        else:
            self._receive(data)

    def data_received(self, data: bytes) -> None:
        # For transports that do not read into our buffer (an SSL transport
        # on some Pythons, the proactor loop).
        if self.protocol is None:
            self.handshake_data(data)
        else:
            self._receive(data)

    def eof_received(self) -> Optional[bool]:
        protocol = self.protocol
        if protocol is not None and protocol.state is not _CLOSED:
            protocol.receive_eof()
        return None  # the transport closes itself

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        protocol = self.protocol
        if protocol is not None and protocol.state is not _CLOSED:
            protocol.receive_eof()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._messages is not None:
            self._messages.close()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters = []
        for future, _ in self._pings.take_all():
            if not future.done():
                future.set_exception(self._closed_exception())
                future.exception()  # retrieved: nobody may be awaiting it
        assert self._lost is not None
        if not self._lost.done():
            self._lost.set_result(None)
        if protocol is not None:
            self.logger.debug(
                "%s: connection closed (code %s)", self.remote_address, protocol.close_code
            )

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # The opening handshake (the subclasses') -------------------------------------

    def handshake_data(self, data: bytes) -> None:
        """Bytes received before the connection is open."""
        raise NotImplementedError

    def open(self, protocol: Connection, leftover: bytes = b"") -> None:
        """Start the WebSocket connection once the handshake agreed on ``protocol``.

        Sets ``protocol.plain_messages``: whole messages go to the queue as
        the data that :meth:`recv` returns, with no event object between.
        """
        assert self._loop is not None
        protocol.plain_messages = True
        self.protocol = protocol
        self._messages = MessageQueue(
            self._loop, self._pause_reading, self._resume_reading, self._high, self._low
        )
        self._schedule_keepalive()
        if leftover:
            self._receive(leftover)

    # Receiving -------------------------------------------------------------------

    async def recv(self, decode: Optional[bool] = None) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        ``decode=True`` returns a binary message decoded as UTF-8 too, and
        ``decode=False`` a text message as its UTF-8 bytes. Raises
        :class:`~wscodec.ConnectionClosedOK` once the connection closed
        normally and every message received before is taken,
        :class:`~wscodec.ConnectionClosedError` after an error, and
        :class:`~wscodec.asyncio.ConcurrencyError` when another coroutine is
        receiving already. Cancelling it loses no message.
        """
        messages = self._messages
        if messages is None:
            raise RuntimeError("the opening handshake is not over")
        message = messages.take()
        while message is None:
            if messages.closed:
                raise self._closed_exception()
            if self._close_held:
                self._release_held_close()  # the application is done with what came first
            await messages.wait()
            message = messages.take()
        if decode is None:
            return message
        return _decoded(message, decode)

    async def recv_streaming(self, decode: Optional[bool] = None) -> AsyncIterator[Data]:
        """The next message piece by piece, as its frames arrive.

        A message that arrives in one frame comes as one piece. Stopping the
        iteration early drops the rest of the message. Raises as :meth:`recv`.
        """
        messages = self._messages
        if messages is None:
            raise RuntimeError("the opening handshake is not over")
        if self._close_held and not messages.ready():
            self._release_held_close()
        pieces = 0
        async for piece in messages.stream():
            pieces += 1
            yield piece if decode is None else _decoded(piece, decode)
        if not pieces:
            raise self._closed_exception()

    def __aiter__(self) -> AsyncConnection:
        return self

    async def __anext__(self) -> Data:
        """Messages until the connection closes normally (an error close raises)."""
        # recv()'s loop, written out: one coroutine per message instead of
        # two, and one frame less held by every connection that waits.
        messages = self._messages
        if messages is None:
            raise RuntimeError("the opening handshake is not over")
        message = messages.take()
        while message is None:
            if messages.closed:
                closed = self._closed_exception()
                if isinstance(closed, ConnectionClosedOK):
                    raise StopAsyncIteration from None
                raise closed
            if self._close_held:
                self._release_held_close()
            await messages.wait()
            message = messages.take()
        return message

    def _receive(self, data: Union[bytes, memoryview]) -> None:
        protocol = self.protocol
        messages = self._messages
        assert protocol is not None and messages is not None
        events = protocol.receive_data(data)
        for event in events:
            kind = type(event)
            # A whole message (plain_messages) or a piece of one (stream_fragments).
            if kind is bytes or kind is str or kind is Fragment:
                messages.put(event)  # type: ignore[arg-type]
            elif kind is Pong:
                self._pong_received(event.data)  # type: ignore[union-attr,arg-type]
        # deflate first: only it holds input back, and pending_input, a
        # property, costs a Python lookup on every read.
        if protocol.deflate is not None and protocol.pending_input and not messages.paused:
            # More compressed messages came in this read than one call
            # inflates: the next batch once the loop did its other work.
            self._loop.call_soon(self._receive_held)  # type: ignore[union-attr]
        if protocol.state is _OPEN and not protocol.has_data_to_send():
            return  # the common case: messages only, nothing to answer or shut down
        if protocol.failure is not None:
            self.logger.info(
                "%s: failing the connection: %s", self.remote_address, protocol.failure
            )
        if protocol.close_pending and not self._close_held and messages.ready():
            # The peer closed (or broke the protocol) right after sending
            # messages: hold our close frame back until the application has
            # dealt with them, so that its answers go out first. (Not for
            # the start of a message that will never end: nothing answers it.)
            self._close_held = True
            self._start_closing_timer()
            return
        if not self._close_held:
            self._flush()

    def _receive_held(self) -> None:
        protocol = self.protocol
        if protocol is not None and protocol.pending_input and not self.transport_closed:
            self._receive(b"")

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        protocol = self.protocol
        if protocol is not None and protocol.pending_input:
            self._receive(b"")  # what the last read held back comes before any new read
            if self._messages is not None and self._messages.paused:
                return
        if self._reading_paused and not self.transport_closed:
            self._reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    @property
    def transport_closed(self) -> bool:
        lost = self._lost
        return (
            self.transport is None
            or self.transport.is_closing()
            or (lost is not None and lost.done())
        )

    def _abort(self) -> None:
        """Drop the TCP connection now, with whatever it has not sent."""
        self.transport.abort()  # type: ignore[union-attr]

    # Sending ---------------------------------------------------------------------

    async def send(
        self,
        message: Union[Data, bytearray, memoryview, Iterable[Data], AsyncIterable[Data]],
    ) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        An iterable or async iterable of ``str`` (or of bytes) is sent as one
        fragmented message, a frame per item. Returns as soon as the message
        is written to the transport, or once the transport's buffer drains
        below ``write_limit``; a peer that reads nothing for ``write_timeout``
        is dropped (:class:`~wscodec.ConnectionClosedError`). Raises
        :class:`~wscodec.ConnectionClosed` once the connection is closing.
        """
        protocol = self.protocol
        if protocol is None:
            raise RuntimeError("the opening handshake is not over")
        while self._fragmenting is not None:  # another send() is sending fragments
            await asyncio.shield(self._fragmenting)
        if self._write_message(message):
            if self._writing_paused:
                await self._drain()
            return
        if isinstance(message, str):
            protocol.send_text(message)
        elif isinstance(message, _BYTES_LIKE):
            protocol.send_binary(message)
        elif isinstance(message, Mapping):
            raise TypeError("cannot send a dict; use str, bytes or an iterable of them")
        elif isinstance(message, Iterable) or hasattr(message, "__aiter__"):
            await self._send_fragments(message)
            return
        else:
            raise TypeError(f"cannot send a {type(message).__name__}; use str or bytes")
        self._flush()
        if self._writing_paused:
            await self._drain()

    def send_nowait(self, message: Union[Data, bytearray, memoryview]) -> None:
        """Write one message to the transport now, whatever its buffer holds.

        For fan-out to many connections (a chat room, notifications), where
        waiting for one slow peer would hold up the rest: the caller bounds
        what may wait, by checking ``transport.get_write_buffer_size()``
        first, as :func:`~wscodec.asyncio.broadcast` does. Raises
        :class:`~wscodec.ConnectionClosed` once the connection is closing, and
        RuntimeError while a :meth:`send` of fragments is under way.
        """
        protocol = self.protocol
        if protocol is None:
            raise RuntimeError("the opening handshake is not over")
        if self._fragmenting is not None:
            raise RuntimeError("a fragmented message is being sent")
        if self._write_message(message):
            return
        if isinstance(message, str):
            protocol.send_text(message)
        elif isinstance(message, _BYTES_LIKE):
            protocol.send_binary(message)
        else:
            raise TypeError(f"cannot send a {type(message).__name__}; use str or bytes")
        self._flush()

    def _write_message(self, message: object) -> bool:
        """Write a whole message at once if the protocol allows the shortcut
        (:meth:`Connection.message_frame`); False when it must be sent the usual way."""
        kind = type(message)
        if kind is not bytes and kind is not str:
            return False
        frame = self.protocol.message_frame(message)  # type: ignore[union-attr,arg-type]
        if frame is None:
            return False
        transport = self.transport
        assert transport is not None
        if not transport.is_closing():
            transport.write(frame)
        return True

    async def _send_fragments(self, fragments: Union[Iterable[Data], AsyncIterable[Data]]) -> None:
        protocol = self.protocol
        assert protocol is not None and self._loop is not None
        self._fragmenting = done = self._loop.create_future()
        text: Optional[bool] = None
        try:
            if isinstance(fragments, Iterable):
                for fragment in fragments:
                    text = await self._send_fragment(fragment, text)
            else:
                async for fragment in fragments:
                    text = await self._send_fragment(fragment, text)
            if text is not None:
                protocol.send_continuation("" if text else b"", fin=True)
                self._flush()
        except BaseException:
            if text is not None and protocol.state is _OPEN:
                # A message cut short cannot be finished: the peer would take
                # the next one as its continuation.
                protocol.fail(CloseCode.INTERNAL_ERROR, "error while sending a fragmented message")
                self._flush()
            raise
        finally:
            self._fragmenting = None
            done.set_result(None)

    async def _send_fragment(self, fragment: Data, text: Optional[bool]) -> bool:
        protocol = self.protocol
        assert protocol is not None
        if text is None:
            if isinstance(fragment, str):
                protocol.send_text(fragment, fin=False)
            elif isinstance(fragment, _BYTES_LIKE):
                protocol.send_binary(fragment, fin=False)
            else:
                raise TypeError(f"cannot send a fragment of type {type(fragment).__name__}")
        else:
            protocol.send_continuation(fragment, fin=False)
        self._flush()
        if self._writing_paused:
            await self._drain()
        return isinstance(fragment, str)

    async def _drain(self) -> None:
        """Wait until the transport's buffer is below ``write_limit``, at most ``write_timeout``."""
        assert self._loop is not None
        while self._writing_paused and not self.transport_closed:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                if self.write_timeout is None:
                    await waiter
                else:
                    await asyncio.wait_for(asyncio.shield(waiter), self.write_timeout)
            except asyncio.TimeoutError:
                self.logger.info(
                    "%s: the peer read nothing for %s s; dropping the connection",
                    self.remote_address,
                    self.write_timeout,
                )
                self._abort()
                break
        if self.transport_closed:
            raise self._closed_exception()

    def _flush(self) -> None:
        """Write what the protocol wants sent, then follow the closing handshake."""
        protocol = self.protocol
        transport = self.transport
        assert protocol is not None and transport is not None
        buffers = protocol.buffers_to_send()
        if buffers and not transport.is_closing():
            if len(buffers) == 1:
                transport.write(buffers[0])
            elif self._join_writes:
                # The stdlib's writelines() skips flow control on some Pythons
                # (3.12.1 and 3.13.0 never call pause_writing() from it): a
                # peer that never reads would grow the buffer without bound.
                transport.write(b"".join(buffers))
            else:
                transport.writelines(buffers)  # uvloop's: one writev(), paused as write()
        if protocol.close_sent is not None or protocol.state is not _OPEN:
            self._closing()

    async def ping(self, data: Optional[Union[str, bytes]] = None) -> Awaitable[float]:
        """Send a ping; returns an awaitable that gives the latency (s) when its pong arrives.

        ``data`` defaults to 4 random bytes. Pongs answer the pings sent
        before them too, as RFC 6455 allows.
        """
        waiter = self._send_ping(data)
        if self._writing_paused:
            await self._drain()
        return waiter

    def _send_ping(self, data: Optional[Union[str, bytes]]) -> asyncio.Future[float]:
        protocol = self.protocol
        if protocol is None or self._loop is None:
            raise RuntimeError("the opening handshake is not over")
        if data is None:
            payload = os.urandom(4)
        else:
            payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        waiter: asyncio.Future[float] = self._loop.create_future()
        protocol.send_ping(payload)  # raises ConnectionClosed first if it must
        # Not loop.time(): uvloop's is the time the loop iteration began.
        self._pings.add(payload, (waiter, time.monotonic()))
        self._flush()
        return waiter

    async def pong(self, data: Union[str, bytes] = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat)."""
        protocol = self.protocol
        if protocol is None:
            raise RuntimeError("the opening handshake is not over")
        protocol.send_pong(data.encode("utf-8") if isinstance(data, str) else data)
        self._flush()
        if self._writing_paused:
            await self._drain()

    def _pong_received(self, payload: bytes) -> None:
        now = time.monotonic()
        for waiter, sent_at in self._pings.answered(payload):
            latency = now - sent_at
            if waiter is self._keepalive_waiter:
                self.latency = latency
                self._keepalive_waiter = None
                if not self._closing_started and not self._close_held:
                    self._schedule_keepalive()
            if not waiter.done():
                waiter.set_result(latency)

    # Keepalive ---------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.ping_interval is not None and self._loop is not None:
            self._timer = self._loop.call_later(self.ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        self._timer = None
        protocol = self.protocol
        if protocol is None or protocol.state is not _OPEN or protocol.close_sent is not None:
            return
        self._keepalive_waiter = self._send_ping(None)
        if self.ping_timeout is not None:
            assert self._loop is not None
            self._timer = self._loop.call_later(self.ping_timeout, self._keepalive_expired)

    def _keepalive_expired(self) -> None:
        self._timer = None
        protocol = self.protocol
        if protocol is None or self.transport_closed:
            return
        self.logger.info("%s: no pong within %s s; closing", self.remote_address, self.ping_timeout)
        protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self._close_held = False
        self._flush()
        self._abort()

    # Closing -----------------------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Run the closing handshake and wait (up to ``close_timeout``) for it to end.

        Messages already received stay available to :meth:`recv`; any that
        arrive during the closing handshake are dropped.
        """
        protocol = self.protocol
        if protocol is None:
            if self.transport is not None:
                self._abort()
            return
        if self._messages is not None:
            self._messages.discard_new()
        if self._close_held:
            self._release_held_close()
        elif protocol.state is _OPEN and protocol.close_sent is None and not self.transport_closed:
            protocol.send_close(code, reason)
            self._flush()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (the TCP connection too)."""
        assert self._lost is not None
        if self._close_held:
            self._release_held_close()  # the application is done with what came first
        await asyncio.shield(self._lost)

    def _release_held_close(self) -> None:
        if self._close_held:
            self._close_held = False
            if not self.transport_closed:
                self._flush()

    def _closing(self) -> None:
        """Our close frame is out: shut TCP as RFC 6455 asks, within ``close_timeout``."""
        protocol = self.protocol
        transport = self.transport
        assert protocol is not None and transport is not None
        if protocol.state is _CLOSED or protocol.failure is not None:
            self._shut_write()
        if not self._closing_started:
            self._closing_started = True
            if self._messages is not None:
                self._messages.discard_new()  # nothing may stop us reading the peer's close
            self._start_closing_timer()

    def _shut_write(self) -> None:
        """Half-close (the server closes TCP first, RFC 6455 7.1.1); the peer's FIN follows."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._write_shut:
            return
        if self.is_client and self.protocol is not None and self.protocol.failure is None:
            return  # a client waits for the server to close TCP first
        self._write_shut = True
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def _start_closing_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.close_timeout is not None and self._loop is not None:
            self._timer = self._loop.call_later(self.close_timeout, self._closing_expired)

    def _closing_expired(self) -> None:
        self._timer = None
        if self._close_held:
            self._release_held_close()
            return  # and the closing handshake gets its own close_timeout
        if self.transport is not None:
            self._abort()

    is_client = False

    # State -------------------------------------------------------------------------

    @property
    def state(self) -> Optional[State]:
        """:class:`~wscodec.protocol.State`; None until the opening handshake is over."""
        return None if self.protocol is None else self.protocol.state

    @property
    def close_code(self) -> Optional[int]:
        """The peer's close code (1005: none given, 1006: no close frame), once closed."""
        return None if self.protocol is None else self.protocol.close_code

    @property
    def close_reason(self) -> Optional[str]:
        return None if self.protocol is None else self.protocol.close_reason

    def _closed_exception(self) -> ConnectionClosed:
        if self.protocol is None:
            return ConnectionClosedError(CloseCode.ABNORMAL_CLOSURE, "")
        return self.protocol.close_exception()


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    """No Nagle delay on a TCP connection: a message written while an earlier
    one waits for its ACK would wait up to 40 ms (the peer's delayed ACK).

    The stdlib loop sets it only for sockets made with ``IPPROTO_TCP``, not for
    those accepted from a socket made without (``serve(sock=...)``, or
    :func:`~wscodec.serving.listen` before it set it).
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in _TCP_FAMILIES:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # reset already: the connection fails on its own
            pass


def _decoded(message: Data, decode: bool) -> Data:
    if decode:
        return message if isinstance(message, str) else message.decode("utf-8")
    return message.encode("utf-8") if isinstance(message, str) else message


#: The pure-Python class, whichever backend is active (the twins' tests compare them).
PythonAsyncConnection = AsyncConnection
if __name__ == "wscodec.asyncio.connection":
    # With the compiled backend: this module's own source, built as an
    # extension type (setup.py; its attributes are typed in
    # src/wscodec/asyncio/_connection_c.pxd).
    _compiled = _backend.compiled_twin("wscodec.asyncio._connection_c")
    if _compiled is not None:
        # Through globals(): in the compiled build the name is an extension
        # type, which Cython will not let the module rebind.
        globals()["AsyncConnection"] = _compiled.AsyncConnection
