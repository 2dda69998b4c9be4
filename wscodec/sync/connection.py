"""A WebSocket connection over a blocking socket, run by threads.

:class:`SyncConnection` is what the threaded server hands to its handler and
what :func:`wscodec.connect` returns. It wraps the sans-I/O
:class:`~wscodec.connection.Connection` with a socket. The thread waiting in
:meth:`SyncConnection.recv` reads and parses the socket itself, so a message
reaches it without a hand-off to another thread. While the application is
away from ``recv()`` (busy, or only sending), a background reader of the
connection's own takes over after a short grace period: pings and the
closing handshake are answered even then, and messages queue up to
``max_queue``, after which TCP pushes back on the peer (see
:mod:`wscodec.sync.messages`). When keepalive is on, a pinger thread sends pings.

Writes happen in the thread that calls :meth:`SyncConnection.send`, under a
lock that keeps frames whole and in order; ``write_timeout`` bounds how long
a write may wait on a peer that does not read, after which the connection is
dropped. :meth:`SyncConnection.send_nowait` never blocks at all: it queues
the message for a short-lived drain thread and drops the connection when its
queue exceeds ``write_limit``.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Union,
)

from ..connection import (
    _BYTES_LIKE,
    _CLOSED,
    _MESSAGE_EVENTS,
    _OPEN,
    _SERVER,
    Connection,
    Pong,
    State,
)
from ..exceptions import ConnectionClosed, ConnectionClosedOK
from ..handshake import Request, Response
from ..keepalive import PendingPings
from ..protocol import CloseCode
from ..receive_buffer import ReceiveBuffer
from ..sockets import (
    set_write_timeout,
    wait_readable,
    write_within,
)
from .messages import Data, Inbox, Outbox, ReadTurn
from .nowait import NowaitSending
from .threads import start_library_thread

__all__ = ["Data", "PongWaiter", "SyncConnection"]


# How long the application may stay away from recv() before the background
# reader reads in its place (answering pings and closes); also how often that
# reader checks whether it can hand reading back.
_READER_GRACE = 0.05


# How long close_nowait() waits for a write in progress to finish (then drops).
_CLOSE_NOWAIT_LOCK = 0.05


class PongWaiter(threading.Event):
    """Set when the pong answering a ping arrives; ``latency`` is then in seconds."""

    def __init__(self, sent_at: float) -> None:
        super().__init__()
        self.sent_at = sent_at
        self.latency: Optional[float] = None


class SyncConnection(NowaitSending):
    """An open WebSocket connection used from threads (server or client side).

    Attributes: ``request`` and ``response`` (the handshake), ``subprotocol``,
    ``remote_address``, ``local_address``, ``id`` and ``logger``.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: Connection,
        *,
        request: Optional[Request] = None,
        response: Optional[Response] = None,
        subprotocol: Optional[str] = None,
        max_queue: int = 16,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        close_timeout: float = 10.0,
        write_timeout: float = 30.0,
        write_limit: int = 2**22,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self.socket = sock
        self.protocol = protocol
        self.request = request
        self.response = response
        self.subprotocol = subprotocol
        self.id = uuid.uuid4()
        self.logger = logger or logging.getLogger("wscodec")
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.write_timeout = write_timeout
        self.write_limit = write_limit
        try:
            self.remote_address: Any = sock.getpeername()
            self.local_address: Any = sock.getsockname()
        except OSError:
            self.remote_address = self.local_address = None
        self._mutex = threading.Lock()  # protocol state and socket writes
        self._message_lock = threading.Lock()  # one (fragmented) message at a time
        self._messages = Inbox(max_queue, _READER_GRACE)
        self._buffer = ReceiveBuffer()
        self._close_held = False  # our close frame waits until the application is idle
        self._finished = False
        self._pings: PendingPings[PongWaiter] = PendingPings()
        self._done = threading.Event()  # the reader finished and the socket is closed
        self._write_shut = False
        self._outbox = Outbox(write_limit)
        # The tail of a frame send_now() could not write at once: it goes out
        # before anything else (see _outgoing()).
        self._unsent: List[memoryview] = []
        self._reader = threading.Thread(target=self._read_loop, name=f"wscodec-reader-{self.id}")
        self._reader.daemon = True

    # Lifecycle -------------------------------------------------------------------

    def start(self, leftover: bytes = b"") -> None:
        """Start the reader (and keepalive) threads once the handshake is done.

        Raises :class:`RuntimeError` when a thread cannot be started (a pids
        limit, ``TasksMax``, memory): the connection is then closed with 1013
        (try again later), its socket closed and :meth:`wait_closed` true.
        """
        set_write_timeout(self.socket, self.write_timeout)
        if leftover:
            for message in self._receive(leftover, direct=True):
                self._messages.put_nowait(message)
        try:
            start_library_thread(self._reader)
        except RuntimeError:
            self._refuse_to_start(reader_started=False)
            raise
        if self.ping_interval is not None:
            pinger = threading.Thread(target=self._keepalive, name=f"wscodec-ping-{self.id}")
            pinger.daemon = True
            try:
                start_library_thread(pinger)
            except RuntimeError:
                self._refuse_to_start(reader_started=True)
                raise

    def _refuse_to_start(self, reader_started: bool) -> None:
        """A thread of this connection could not start: close with 1013, without waiting.

        The socket is shut down, and closed here unless the reader runs (it
        then closes it as it ends).
        """
        self.logger.warning(
            "%s: cannot start the connection's threads; closing it with 1013",
            self.remote_address,
        )
        self.close_nowait(CloseCode.TRY_AGAIN_LATER, "server overloaded")
        self._abort()
        if not reader_started:
            self._finish()

    def close_nowait(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake without waiting for anything.

        The close frame is sent if the socket takes it at once; when it does
        not (a peer that stopped reading), or another thread is in the middle
        of a write, the connection is dropped instead. The reader finishes
        the closing handshake; :meth:`wait_closed` tells when it is over. This
        is how a server closes thousands of connections at shutdown in one
        pass, with no thread per connection.
        """
        self._messages.discard_new()
        self._messages.read_in_background()
        if not self._mutex.acquire(timeout=_CLOSE_NOWAIT_LOCK):  # a write is stuck
            self._abort()
            return
        try:
            if self.protocol.state is not _OPEN or self._done.is_set():
                return
            self.protocol.send_close(code, reason)
            buffers = self._outgoing()
            if buffers and not self._write_shut:
                try:
                    write_within(self.socket, buffers, 0.0)
                except OSError:
                    self._abort()
        finally:
            self._mutex.release()

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def state(self) -> State:
        return self.protocol.state

    @property
    def close_code(self) -> Optional[int]:
        """The peer's close code (1005: none given, 1006: no close frame), once closed."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str:
        return self.protocol.close_reason

    # Receiving -------------------------------------------------------------------

    def recv(self, timeout: Optional[float] = None) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises :class:`TimeoutError` if none arrives within ``timeout``
        seconds, and :class:`ConnectionClosed` once the connection is closed
        and every message received before the close has been returned.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        inbox = self._messages
        protocol = self.protocol
        received: Optional[List[Data]] = None  # what this thread read, not yet queued
        # Each inbox call below takes its lock once: on an echo of small
        # messages these round trips were a large part of a message's cost.
        while True:
            # _may_read() in full only when its answer is not the usual True.
            may_read = (
                not self._close_held and protocol.state is _OPEN and not self._finished
            ) or self._may_read()
            if received is None:
                item = inbox.enter_and_take(deadline, may_read)
            else:
                item = inbox.end_read_and_take(received, deadline, may_read)
            if not isinstance(item, ReadTurn):
                break
            try:
                received = self._read_directly(deadline)
            except BaseException:
                inbox.end_read_and_leave()
                raise
            if self._close_held:
                # The peer closed right after these messages: queue them
                # first, so that the held close waits until they are taken.
                inbox.end_read_and_leave(received)
                received = None
        if item is not None:
            return item
        self._done.wait(self.close_timeout)
        raise self.protocol.close_exception()

    def _may_read(self) -> bool:
        """Whether the thread in recv() may read the socket; releases a held close first."""
        if self._close_held and not self._messages.pending():
            self._release_held_close()  # the application is done with what came first
        if self.protocol.state is _OPEN and not self._finished:
            return True
        self._messages.read_in_background()
        return False

    def __iter__(self) -> Iterator[Data]:
        """Messages until the connection closes normally (an error close raises)."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    # Sending ---------------------------------------------------------------------

    def send(self, message: Union[Data, bytearray, memoryview, Iterable[Data]]) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        An iterable of ``str`` or of bytes is sent as one fragmented message,
        one frame per item. Raises :class:`ConnectionClosed` if the connection
        is closed (or closing).
        """
        # acquire()/release() rather than ``with`` on the per-message paths:
        # see the note on Inbox._lock.
        self._message_lock.acquire()
        try:
            if isinstance(message, _BYTES_LIKE):
                self._send_with(self.protocol.send_binary, message)
            elif isinstance(message, str):
                self._send_with(self.protocol.send_text, message)
            elif isinstance(message, Iterable) and not isinstance(message, dict):
                self._send_fragments(iter(message))
            else:
                raise TypeError(f"cannot send a {type(message).__name__}; use str or bytes")
        finally:
            self._message_lock.release()

    def _send_fragments(self, fragments: Iterator[Data]) -> None:
        try:
            first = next(fragments)
        except StopIteration:
            return
        protocol = self.protocol
        if isinstance(first, str):
            self._send_with(functools.partial(protocol.send_text, fin=False), first)
        elif isinstance(first, _BYTES_LIKE):
            self._send_with(functools.partial(protocol.send_binary, fin=False), first)
        else:
            raise TypeError(f"cannot send a fragment of type {type(first).__name__}")
        for fragment in fragments:
            self._send_with(functools.partial(protocol.send_continuation, fin=False), fragment)
        last = "" if isinstance(first, str) else b""
        self._send_with(functools.partial(protocol.send_continuation, fin=True), last)

    def _send_with(self, method: Callable[[Any], None], data: Any) -> None:
        """Call ``method(data)`` on the protocol, then write what it produced."""
        self._mutex.acquire()
        try:
            method(data)
            self._flush()
        finally:
            self._mutex.release()

    def ping(self, data: Optional[Union[str, bytes]] = None) -> PongWaiter:
        """Send a ping; the returned waiter is set when its pong arrives.

        ``waiter.wait(timeout)`` tells whether it did; ``waiter.latency`` is
        then the round-trip time in seconds.
        """
        payload = (
            os.urandom(4)
            if data is None
            else (data.encode("utf-8") if isinstance(data, str) else bytes(data))
        )
        with self._mutex:
            waiter = PongWaiter(time.monotonic())
            self._pings.add(payload, waiter)
            self.protocol.send_ping(payload)
            self._flush()
        return waiter

    def pong(self, data: Union[str, bytes] = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat)."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self._send_with(self.protocol.send_pong, payload)

    # Closing ---------------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Run the closing handshake and wait (up to ``close_timeout``) for it to end.

        Messages already received stay available to :meth:`recv`; any that
        arrive during the closing handshake are dropped, so a full queue
        cannot keep the reader from seeing the peer's close frame.
        """
        self._messages.discard_new()
        self._messages.read_in_background()
        with self._mutex:
            if self.protocol.state is _OPEN and not self._done.is_set():
                self.protocol.send_close(code, reason)
                try:
                    self._flush()
                except (ConnectionClosed, OSError):
                    pass
        self.wait_closed(self.close_timeout)
        if not self._done.is_set():
            self._abort()
            self.wait_closed(None)

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Wait until the connection is fully closed; whether it is."""
        if threading.current_thread() is self._reader:
            return self._done.is_set()
        return self._done.wait(timeout)

    def _abort(self) -> None:
        """Drop the TCP connection at once; the reader wakes up and cleans up."""
        self._messages.discard_new()
        self._messages.read_in_background()
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # Internals -------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what the protocol wants sent. Call with the mutex held."""
        buffers = self._outgoing()
        if buffers and not self._write_shut:
            try:
                # write_timeout bounds the whole write, however it trickles out.
                write_within(self.socket, buffers, self.write_timeout)
            except OSError as error:  # socket.timeout included: the peer does not read
                self.logger.info(
                    "%s: write failed (%s); dropping the connection", self.remote_address, error
                )
                self._abort()
                raise self.protocol.close_exception() from error
        # The server closes TCP first once the closing handshake is over (RFC
        # 6455 section 7.1.1), and so does a side that failed the connection;
        # shutting down our half sends FIN after the close frame, never RST.
        protocol = self.protocol
        if protocol.failure is not None or (protocol.state is _CLOSED and protocol.role is _SERVER):
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        if not self._write_shut:
            self._write_shut = True
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _read_directly(self, deadline: Optional[float]) -> List[Data]:
        """Read once in the application's thread, waiting in recv() until ``deadline``.

        Returns the messages that read completed, for the caller to queue.
        """
        if self.protocol.pending_input:  # what the last read held back, before reading more
            return self._receive(b"", direct=True)
        if deadline is not None and not self._readable_before(deadline):
            raise TimeoutError("no message received in time")
        data = self._read_socket()
        if data is None:
            return []
        try:
            if data:
                return self._receive(data, direct=True)
            with self._mutex:
                self.protocol.receive_eof()
        except Exception:  # never let a reader fail silently
            self.logger.exception("%s: reader failed", self.remote_address)
            with self._mutex:
                self.protocol.receive_eof()
        self._finish()
        return []

    def _read_loop(self) -> None:
        """The background reader: reads whenever the application does not."""
        try:
            while self._messages.wait_background_turn():
                if self._read_in_turn():
                    break
        except Exception:  # never let a reader die silently
            self.logger.exception("%s: reader failed", self.remote_address)
            with self._mutex:
                self.protocol.receive_eof()
        finally:
            self._finish()

    def _read_in_turn(self) -> bool:
        """Read until the application takes reading back (False) or the end (True)."""
        deadline: Optional[float] = None
        while True:
            if self._close_held:
                self._messages.wait_idle(self.close_timeout)
                self._release_held_close()
            if self.protocol.pending_input:
                # Messages the last read held back: queued (waiting while the
                # queue is full) before the socket is read again.
                self._receive(b"")
                continue
            if self.protocol.state is not _OPEN or self._done.is_set():
                self._messages.read_in_background()
                if deadline is None:
                    deadline = time.monotonic() + self.close_timeout
                if not self._readable_before(deadline):
                    return True
            elif self._messages.hand_back():
                return False
            elif self._messages.app_waiting and not self._readable_before(
                time.monotonic() + _READER_GRACE
            ):
                continue  # look again whether the application can read itself
            data = self._read_socket()
            if data is None:
                continue
            if not data:
                with self._mutex:
                    self.protocol.receive_eof()
                return True
            self._receive(data)

    def _read_socket(self) -> Optional[memoryview]:
        """One read: the bytes, empty at the end (EOF or an error), None on a timeout."""
        try:
            return self._buffer.read(self.socket)
        except socket.timeout:
            return None
        except OSError:
            return memoryview(b"")

    def _readable_before(self, deadline: float) -> bool:
        """Wait for data (or EOF) until ``deadline``; False if none came."""
        return wait_readable(self.socket, deadline - time.monotonic())

    def _receive(self, data: Union[bytes, memoryview], direct: bool = False) -> List[Data]:
        """Process bytes read by the application's thread (``direct``) or the background reader.

        The background reader queues the messages (waiting while the queue is
        full); the application's thread gets them back, to queue them itself.
        """
        protocol = self.protocol
        self._mutex.acquire()
        try:
            events = protocol.receive_data(data)
            if protocol.state is _OPEN and not protocol.has_data_to_send():
                pass  # the common case: messages only, nothing to answer or shut down
            elif protocol.close_pending and (
                any(isinstance(event, _MESSAGE_EVENTS) for event in events)
                or self._messages.pending()
            ):
                # The peer closed (or broke the protocol) right after sending
                # messages: hold our close frame back until the application
                # has dealt with them, so that its answers go out first.
                self._close_held = True
            else:
                self._flush_quietly()
        finally:
            self._mutex.release()
        received: List[Data] = []
        for event in events:
            if isinstance(event, _MESSAGE_EVENTS):
                if direct:
                    received.append(event.data)
                else:
                    self._messages.put(event.data)
            elif isinstance(event, Pong):
                self._pong_received(event.data)
        failure = protocol.failure
        if failure is not None:
            self.logger.info("%s: failing the connection: %s", self.remote_address, failure)
        return received

    def _release_held_close(self) -> None:
        with self._mutex:
            if self._close_held:
                self._close_held = False
                self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except ConnectionClosed:
            pass

    def _pong_received(self, payload: bytes) -> None:
        now = time.monotonic()
        with self._mutex:
            waiters = self._pings.answered(payload)
        for waiter in waiters:
            waiter.latency = now - waiter.sent_at
            waiter.set()

    def _finish(self) -> None:
        """Close the socket and wake everyone waiting (once, by whichever reader ends)."""
        with self._mutex:
            if self._finished:
                return
            self._finished = True
            if self.protocol.state is not _CLOSED:
                self.protocol.receive_eof()
        try:
            self.socket.close()
        except OSError:
            pass
        self._messages.close()
        self._done.set()
        code = self.protocol.close_code
        self.logger.debug("%s: connection closed (code %s)", self.remote_address, code)

    def _keepalive(self) -> None:
        assert self.ping_interval is not None
        while not self._done.wait(self.ping_interval):
            try:
                waiter = self.ping()
            except (ConnectionClosed, OSError):
                return
            if self.ping_timeout is not None and not waiter.wait(self.ping_timeout):
                if self._done.is_set():
                    return
                self.logger.info(
                    "%s: no pong within %.1f s; closing", self.remote_address, self.ping_timeout
                )
                with self._mutex:
                    self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    try:
                        self._flush()
                    except ConnectionClosed:
                        pass
                self._abort()
                return
