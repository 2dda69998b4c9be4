"""The selector loop of the event-driven server: accepting, reading, writing, timers.

One :class:`Loop` per thread owns its connections; it reads a socket into one
buffer of its own, hands what arrives to the sans-I/O protocol, calls the
handler, and writes back without blocking (what the socket does not take is
buffered, up to the server's ``write_limit`` and ``write_timeout``).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from ..connection import (
    _CLOSED,
    _MESSAGE_EVENTS,
    _OPEN,
    Pong,
)
from ..exceptions import InvalidRequest
from ..handshake import (
    Request,
    Response,
    reject,
)
from ..protocol import CloseCode
from ..sockets import Buffer, send_some, unsent
from .connection import EventConnection
from .poller import WRITABLE, Poller

if TYPE_CHECKING:
    from .server import EventServer

__all__ = ["Loop"]

# One read buffer per loop, shared by its connections: 1 MiB so that a large
# message takes a few reads and parser calls, not sixteen (1 MiB echoes with
# 50 clients: 16% less CPU per round trip than with 64 KiB; small messages
# unchanged).
_READ_SIZE = 2**20
_SWEEP_EVERY = 0.1  # seconds between looks at handshake, closing and write deadlines
# SO_LINGER on, timeout 0: close() resets the connection and frees its send
# buffer at once, instead of leaving the kernel to deliver it to a peer that
# does not read.
_ABORT_ON_CLOSE = struct.pack("ii", 1, 0)
_LISTENER = object()  # what the listening socket's descriptor maps to


class Loop:
    """One selector loop and the connections it owns."""

    def __init__(self, server: EventServer, index: int) -> None:
        self.server = server
        self.index = index
        self.poller = Poller()
        self._owners: Dict[int, Any] = {}  # descriptor -> connection, _LISTENER or self
        self.connections: Set[EventConnection] = set()
        self.timed: Set[EventConnection] = set()  # with a handshake or closing deadline
        self.backlogged: Set[EventConnection] = set()  # with unsent bytes: a write deadline
        self._resume_accepting_at: Optional[float] = None  # the listener is unwatched until then
        self.ident: Optional[int] = None  # the thread running the loop
        self._calls: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []
        self._calls_lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._buffer = bytearray(_READ_SIZE)
        self._view = memoryview(self._buffer)
        self._closing_all = False

    def in_other_thread(self) -> bool:
        """True outside the loop's thread (and before the loop runs)."""
        return threading.get_ident() != self.ident

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on this loop (thread-safe)."""
        with self._calls_lock:
            first = not self._calls
            self._calls.append((function, args))
        if first:  # otherwise a wake-up is on its way already
            self.wake()

    def wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or the loop is gone

    # The loop --------------------------------------------------------------------

    def run(self) -> None:
        self.ident = threading.get_ident()
        server = self.server
        poller, owners = self.poller, self._owners
        for sock, owner in ((server.socket, _LISTENER), (self._wake_reader, self)):
            owners[sock.fileno()] = owner
            poller.register(sock.fileno())
        period = server.keepalive_period
        next_sweep = next_keepalive = time.monotonic() + _SWEEP_EVERY
        try:
            while not (server.stopping and not self.connections):
                deadlines = self.timed or self.backlogged
                paused = self._resume_accepting_at is not None
                if deadlines or paused or server.stopping:
                    timeout: Optional[float] = _SWEEP_EVERY
                else:
                    timeout = period if self.connections else None
                for fd, mask in poller.poll(timeout):
                    owner = owners.get(fd)
                    if owner is _LISTENER:
                        self._accept()
                    elif owner is self:
                        self._run_calls()
                    elif owner is not None:  # None: dropped earlier in this batch
                        self._ready(owner, mask)
                # A connection dropped in this batch must go now, with all it
                # holds, not when the next poll returns: ``owner`` may be the
                # last reference to it.
                owner = None
                if server.stopping and not self._closing_all:
                    self._close_all()
                deadlines = self.timed or self.backlogged
                resume_at = self._resume_accepting_at
                if deadlines or resume_at is not None or (period is not None and self.connections):
                    now = time.monotonic()
                    if resume_at is not None and now >= resume_at:
                        self._resume_accepting()
                    if deadlines and now >= next_sweep:
                        next_sweep = now + _SWEEP_EVERY
                        self._sweep(now)
                    if period is not None and now >= next_keepalive:
                        next_keepalive = now + period
                        self._keepalive(now)
        finally:
            for connection in list(self.connections):
                self._drop(connection)
            poller.close()
            self._wake_reader.close()
            self._wake_writer.close()

    def _ready(self, connection: EventConnection, mask: int) -> None:
        try:
            if mask & WRITABLE:
                self._write_pending(connection)
            if mask & ~WRITABLE and not connection._closed:  # readable, error or hang-up
                self._read(connection)
        except Exception:  # a bug must cost one connection, not the loop
            self.server.logger.exception("%s: connection failed", connection.remote_address)
            if connection.protocol is not None:
                connection.protocol.receive_eof()
            self._drop(connection)

    def _run_calls(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for function, args in calls:
            try:
                function(*args)
            except Exception:
                self.server.logger.exception("call from another thread failed")

    def _accept(self) -> None:
        server = self.server
        try:
            sock, address = server.socket.accept()
        except BlockingIOError:  # another loop took it
            return
        except OSError as error:
            # Out of descriptors or memory: the client stays queued and the
            # listener readable, so polling it at once again would spin.
            pause = server.accept_errors.failed(error)
            if pause:
                self._pause_accepting(pause)
            return
        server.accept_errors.succeeded()
        if server.stopping or not server.reserve_slot():
            why = "server shutting down" if server.stopping else "too many connections"
            server.logger.warning("refusing %s: %s", address, why)
            self._refuse_now(sock, reject(503, why, [("Retry-After", "1")]))
            return
        try:
            # Every call here may fail for this socket alone: on macOS and the
            # BSDs, setsockopt() on a connection the peer already reset fails
            # with EINVAL. That costs this connection, never the loop.
            sock.setblocking(False)
            if server.tcp:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            fd = sock.fileno()
            self.poller.register(fd)
        except OSError as error:
            server.logger.info("%s: dropped on accepting it: %s", address, error)
            sock.close()
            server.release_slot()
            return
        connection = EventConnection(self, sock, address)
        if server.open_timeout is not None:
            connection.deadline = time.monotonic() + server.open_timeout
            self.timed.add(connection)
        self.connections.add(connection)
        self._owners[fd] = connection

    def _pause_accepting(self, seconds: float) -> None:
        """Stop watching the listener for ``seconds``; the other descriptors are still served.

        The poll timeout is at most ``_SWEEP_EVERY`` meanwhile, so the
        listener is watched again within that much of the pause's end.
        """
        listener = self.server.socket.fileno()
        self.poller.unregister(listener)
        self._owners.pop(listener, None)
        self._resume_accepting_at = time.monotonic() + seconds

    def _resume_accepting(self) -> None:
        """Watch the listener again after a pause (unless the server is stopping)."""
        self._resume_accepting_at = None
        if self._closing_all or self.server.stopping:
            return
        listener = self.server.socket.fileno()
        if listener >= 0:  # still open
            self._owners[listener] = _LISTENER
            self.poller.register(listener)

    @staticmethod
    def _refuse_now(sock: socket.socket, response: Response) -> None:
        try:
            sock.setblocking(False)
            sock.send(response.serialize())  # a short head: the socket buffer takes it
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()

    # Reading ---------------------------------------------------------------------

    def _read(self, connection: EventConnection) -> None:
        if connection.protocol is not None and connection.protocol.pending_input:
            return  # reading pauses while _receive_held() has messages to deliver
        try:
            count = connection.socket.recv_into(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            count = 0
        if count == 0:
            self._eof(connection)
            return
        data = self._view[:count]
        if connection.protocol is not None:
            self._receive(connection, data)
        elif connection._reader is not None:
            self._read_handshake(connection, data)
        # else: refused; what the client still sends is discarded until it closes

    def _eof(self, connection: EventConnection) -> None:
        if connection.protocol is not None:
            connection.protocol.receive_eof()
        self._drop(connection)

    def _read_handshake(self, connection: EventConnection, data: memoryview) -> None:
        server = self.server
        reader = connection._reader
        assert reader is not None
        try:
            request = reader.feed(bytes(data))
        except InvalidRequest as error:
            server.logger.info("%s: bad handshake request: %s", connection.remote_address, error)
            self._refuse(connection, reject(error.status, error.message, error.headers))
            return
        if request is None:
            return
        assert isinstance(request, Request)
        connection._reader = None
        connection.request = request
        try:
            response, protocol = server.respond(connection, request)
        except InvalidRequest as error:
            server.logger.info("%s: handshake refused: %s", connection.remote_address, error)
            self._refuse(connection, reject(error.status, error.message, error.headers))
            return
        except Exception:
            server.logger.exception(
                "%s: error while processing the handshake", connection.remote_address
            )
            self._refuse(connection, reject(500, "internal server error"))
            return
        connection.response = response
        if protocol is None:  # process_request answered over plain HTTP
            self._refuse(connection, response)
            return
        connection.protocol = protocol
        self.timed.discard(connection)
        connection.deadline = None
        self._pong_received(connection)  # the first keepalive ping is due in ping_interval
        self._write(connection, [response.serialize()])
        server.logger.info("%s: connection open %s", connection.remote_address, request.path)
        connection.handler = server.handler_factory()
        connection._dispatching = True
        try:
            connection.handler.on_open(connection)
        except Exception:
            self._handler_failed(connection, "on_open")
        connection._dispatching = False
        if reader.leftover and not connection._closed:
            self._receive(connection, memoryview(reader.leftover))
        else:
            self.flush(connection)

    def _refuse(self, connection: EventConnection, response: Response) -> None:
        connection._reader = None
        self.timed.discard(connection)
        self._write(connection, [response.serialize()])
        self._shut_write(connection)
        connection.deadline = time.monotonic() + self.server.close_timeout
        self.timed.add(connection)

    def _receive(self, connection: EventConnection, data: memoryview) -> None:
        protocol = connection.protocol
        assert protocol is not None and connection.handler is not None
        events = protocol.receive_data(data)
        on_message = connection.handler.on_message
        connection._dispatching = True
        for event in events:
            if isinstance(event, _MESSAGE_EVENTS):
                try:
                    on_message(connection, event.data)
                except Exception:
                    self._handler_failed(connection, "on_message")
                    break
            elif isinstance(event, Pong):
                self._pong_received(connection)
        connection._dispatching = False
        if protocol.failure is not None:
            self.server.logger.info(
                "%s: failing the connection: %s", connection.remote_address, protocol.failure
            )
        self.flush(connection)
        if protocol.pending_input and not connection._closed:
            # The read completed more compressed messages than one call
            # inflates: the next batch after the loop's other work, and no
            # read from this socket until the last (see _read).
            self.call_soon(self._receive_held, connection)

    def _receive_held(self, connection: EventConnection) -> None:
        """The next batch of messages the connection's last read completed."""
        if not connection._closed and connection.protocol is not None:
            self._receive(connection, memoryview(b""))

    def _pong_received(self, connection: EventConnection) -> None:
        connection._ping_sent_at = None
        interval = self.server.ping_interval
        if interval is not None:
            connection._next_ping = time.monotonic() + interval

    def _handler_failed(self, connection: EventConnection, where: str) -> None:
        self.server.logger.exception("%s: handler failed in %s", connection.remote_address, where)
        protocol = connection.protocol
        if protocol is not None and protocol.close_sent is None:
            protocol.send_close(CloseCode.INTERNAL_ERROR, "internal error")

    # Writing ---------------------------------------------------------------------

    def flush(self, connection: EventConnection) -> None:
        """Write what the protocol wants sent, then follow the closing handshake."""
        protocol = connection.protocol
        if protocol is None or connection._closed:
            return
        buffers = protocol.buffers_to_send()
        if buffers:
            self._write(connection, buffers)
        if protocol.failure is not None or protocol.close_sent is not None:
            self._closing(connection)

    def _write(self, connection: EventConnection, buffers: List[Buffer]) -> None:
        if connection._write_shut:
            return
        out = connection._out
        if out:
            # Bytes are still waiting from earlier writes: the peer reads
            # slower than we send. One message of any size may wait (the
            # handler chose its size); a backlog past write_limit may not.
            if len(out) + sum(len(buffer) for buffer in buffers) > self.server.write_limit:
                self._write_failed(connection, OSError("the peer does not read"))
                return
            for buffer in buffers:
                out += buffer
        else:
            try:
                if len(buffers) == 1:
                    sent = connection.socket.send(buffers[0])
                    if sent == len(buffers[0]):
                        return  # the common case: everything went out at once
                else:
                    sent = send_some(connection.socket, buffers)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self._write_failed(connection, error)
                return
            for rest in unsent(buffers, sent):
                out += rest
            if not out:
                return
        if not connection._writing:
            connection._writing = True
            self.poller.modify(connection.fd, write=True)
            write_timeout = self.server.write_timeout
            if write_timeout is not None:
                # A deadline for the whole backlog: partial sends do not move it.
                connection.write_deadline = time.monotonic() + write_timeout
                self.backlogged.add(connection)

    def _write_pending(self, connection: EventConnection) -> None:
        out = connection._out
        try:
            sent = connection.socket.send(out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._write_failed(connection, error)
            return
        del out[:sent]
        if not out:
            connection._writing = False
            self.backlogged.discard(connection)
            self.poller.modify(connection.fd, write=False)
            if connection._write_shut:
                self._shut_write(connection, force=True)

    def _write_failed(self, connection: EventConnection, error: OSError) -> None:
        self.server.logger.info(
            "%s: write failed (%s); dropping the connection", connection.remote_address, error
        )
        if connection.protocol is not None:
            connection.protocol.receive_eof()
        self._drop(connection)

    def _shut_write(self, connection: EventConnection, force: bool = False) -> None:
        """Send FIN once what is buffered is out (RFC 6455 7.1.1: the server closes TCP first)."""
        if connection._write_shut and not force:
            return
        connection._write_shut = True
        if connection._out:
            return  # _write_pending shuts once the buffer is empty
        try:
            connection.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # Closing ---------------------------------------------------------------------

    def _closing(self, connection: EventConnection) -> None:
        protocol = connection.protocol
        assert protocol is not None
        if protocol.failure is not None or protocol.state is _CLOSED:
            self._shut_write(connection)
        if connection.deadline is None:
            connection.deadline = time.monotonic() + self.server.close_timeout
            self.timed.add(connection)

    def _keepalive(self, now: float) -> None:
        """Ping connections due for it; fail those whose pong is late (1011)."""
        server = self.server
        assert server.ping_interval is not None
        for connection in list(self.connections):
            protocol = connection.protocol
            if protocol is None or protocol.state is not _OPEN:
                continue
            sent_at = connection._ping_sent_at
            if sent_at is not None:
                if server.ping_timeout is not None and now - sent_at > server.ping_timeout:
                    server.logger.info(
                        "%s: no pong within %s s", connection.remote_address, server.ping_timeout
                    )
                    protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    self.flush(connection)
            elif now >= connection._next_ping:
                connection._ping_sent_at = now
                protocol.send_ping(b"")
                self.flush(connection)

    def _sweep(self, now: float) -> None:
        for connection in [c for c in self.timed if c.deadline is not None and c.deadline <= now]:
            if connection.protocol is None and connection._reader is not None:
                self.server.logger.info(
                    "%s: handshake not completed: timed out", connection.remote_address
                )
            self._drop(connection)
        for connection in [c for c in self.backlogged if c.write_deadline <= now]:
            self._write_timed_out(connection)

    def _write_timed_out(self, connection: EventConnection) -> None:
        """Drop (1006) a peer that did not take a write within ``write_timeout``.

        The socket is reset rather than closed, so that the kernel does not
        keep the unsent bytes for a peer that is not reading them.
        """
        self.server.logger.info(
            "%s: write not completed within %s s; dropping the connection",
            connection.remote_address,
            self.server.write_timeout,
        )
        try:
            connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT_ON_CLOSE)
        except OSError:
            pass  # closed normally then
        self._drop(connection)

    def _close_all(self) -> None:
        self._closing_all = True
        listener = self.server.socket.fileno()
        self.poller.unregister(listener)
        self._owners.pop(listener, None)
        code, reason = self.server.close_with
        for connection in list(self.connections):
            protocol = connection.protocol
            if protocol is None:
                self._drop(connection)
            elif protocol.close_sent is None:
                protocol.send_close(code, reason)
                self.flush(connection)

    def _drop(self, connection: EventConnection) -> None:
        """Close the socket and tell the handler, once."""
        if connection._closed:
            return
        connection._closed = True
        self.timed.discard(connection)
        self.backlogged.discard(connection)
        self.connections.discard(connection)
        self.poller.unregister(connection.fd)
        self._owners.pop(connection.fd, None)
        connection.socket.close()
        self.server.release_slot()
        protocol = connection.protocol
        if protocol is None or connection.handler is None:
            return
        if protocol.state is not _CLOSED:
            protocol.receive_eof()
        code = protocol.close_code
        try:
            connection.handler.on_close(
                connection,
                CloseCode.ABNORMAL_CLOSURE if code is None else code,
                protocol.close_reason,
            )
        except Exception:
            self.server.logger.exception(
                "%s: handler failed in on_close", connection.remote_address
            )
        self.server.logger.info("%s: connection closed (%s)", connection.remote_address, code)
