"""The threaded WebSocket server.

::

    import threading

    from wscodec import connect, serve


    def echo(connection):  # runs in a thread per connection
        for message in connection:
            connection.send(message)


    with serve(echo, "127.0.0.1", 0) as server:  # port 0: any free port
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with connect(f"ws://127.0.0.1:{server.port}/") as connection:
            connection.send("Hello")
            print(connection.recv(timeout=5))

``serve_forever()`` serves until :meth:`Server.shutdown` (or Ctrl-C in the
main thread). One thread accepts; each connection gets a thread that runs the handshake
(bounded by ``open_timeout``) and then ``handler(connection)``, which reads the
socket itself while it waits in ``recv()``; the background reader of its
:class:`~wscodec.sync.connection.SyncConnection` reads while it does not. When the handler returns
the connection is closed with 1000; when it raises, with 1011 (and the error
is logged). :meth:`Server.shutdown` stops accepting, closes every connection
with 1001 and joins the threads.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl as ssl_module
import threading
import time
from typing import Any, Callable, List, Optional, Set, Tuple

from ..exceptions import ConnectionClosed, InvalidRequest
from ..handshake import (
    HTTPReader,
    Request,
    Response,
    reject,
)
from ..protocol import CloseCode
from ..serving import AcceptErrors, ServerBase, listen
from .connection import SyncConnection

__all__ = ["DEFAULT_MAX_CONNECTIONS", "Server", "ServerConnection", "serve"]

_MAX_READ = 4096
#: Threads a connection runs: its connection thread (handshake, then the
#: handler), its background reader and, with keepalive on, its pinger (plus a
#: short-lived one while send_nowait() has messages queued).
THREADS_PER_CONNECTION = 3
#: The threaded server's default ``max_connections``: 1,536 threads. Measured
#: on 2 cores (CPython 3.11): when every idle client disconnects at once, all
#: their threads wake and queue for the GIL; a new client waited 0.1 s after
#: 300 connections, 0.5 s after 600, 4-6 s after 1,000 to 1,500 and 15 s after
#: 3,000. 512 keeps that under a second, and within a container's pids limit
#: or systemd's TasksMax of a few thousand. Pass a larger value for servers
#: with more cores or mostly busy clients, None for no limit.
DEFAULT_MAX_CONNECTIONS = 512
# How long shutdown() waits for the threads once their connections are closed.
_JOIN_AFTER_CLOSE = 1.0
_SIGNAL_POLL = 0.5  # seconds, the longest a signal handler waits in serve_forever()


class ServerConnection(SyncConnection):
    """The server side of a connection, as passed to the handler."""


Handler = Callable[[ServerConnection], Any]
ProcessResponse = Callable[[ServerConnection, Request, Response], Optional[Response]]


class Server(ServerBase):
    """A listening socket and the threads serving its connections.

    Made by :func:`serve`; see there for the options.
    """

    def __init__(
        self,
        handler: Handler,
        sock: socket.socket,
        *,
        ssl: Optional[ssl_module.SSLContext] = None,
        process_response: Optional[ProcessResponse] = None,
        max_queue: int = 16,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        write_timeout: float = 30.0,
        write_limit: int = 2**22,
        batch_scheduling: bool = True,
        **options: Any,
    ) -> None:
        options.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        super().__init__(sock, **options)  # the handshake options and limits
        self._accept_errors = AcceptErrors(self.logger)
        self.batch_scheduling = batch_scheduling and hasattr(os, "SCHED_BATCH")
        self.handler = handler
        self.ssl = ssl
        self.process_response = process_response
        self._connection_options = dict(
            max_queue=max_queue,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=self.close_timeout,
            write_timeout=write_timeout,
            write_limit=write_limit,
            logger=self.logger,
        )
        self._lock = threading.Lock()
        self._threads: Set[threading.Thread] = set()
        self._connections: Set[ServerConnection] = set()
        self._shutting_down = threading.Event()
        self._close_with: Tuple[int, str] = (CloseCode.GOING_AWAY, "server shutting down")
        self._stopped = threading.Event()
        self._serving = False
        self._wake_reader, self._wake_writer = socket.socketpair()

    # Public API ------------------------------------------------------------------

    @property
    def connections(self) -> List[ServerConnection]:
        """The open connections (a snapshot)."""
        with self._lock:
            return list(self._connections)

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown` is called."""
        with self._lock:
            if self._shutting_down.is_set():
                return
            self._serving = True
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ)
        selector.register(self._wake_reader, selectors.EVENT_READ)
        self.logger.info("server listening on %s", self.socket.getsockname())
        # In the main thread the wait is bounded: the kernel hands a process
        # signal (SIGTERM, SIGINT) to any thread, and then Python only runs
        # its handler once the main thread runs again; an unbounded select()
        # ignored SIGTERM for good when a connection thread caught it.
        poll = _SIGNAL_POLL if threading.current_thread() is threading.main_thread() else None
        try:
            while not self._shutting_down.is_set():
                for key, _ in selector.select(poll):
                    if key.fileobj is self._wake_reader:
                        return
                    pause = self._accept()
                    if pause:  # descriptors ran out: serve the open connections meanwhile
                        self._shutting_down.wait(pause)
        finally:
            selector.close()
            self._close_wakeup()
            self._stopped.set()

    def _close_wakeup(self) -> None:
        self._wake_reader.close()
        self._wake_writer.close()

    def shutdown(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Stop accepting, close every connection with ``code`` and join all threads.

        Returns within about ``close_timeout`` plus a second, however many
        connections are open: every connection is sent its close frame in one
        pass (dropped if it cannot take it at once), those whose closing
        handshake has not ended by ``close_timeout`` are dropped, and their
        threads are given a second to end. No thread is started.
        """
        if self._shutting_down.is_set():
            self._stopped.wait(self.close_timeout)
            return
        with self._lock:
            self._close_with = (code, reason)
            self._shutting_down.set()
            serving = self._serving
        if serving:
            try:
                self._wake_writer.send(b"\0")
            except OSError:  # the accept loop ended already (Ctrl-C) and closed it
                pass
            if not self._stopped.wait(self.close_timeout):
                self.logger.warning("the accept loop did not stop")
        else:
            self._close_wakeup()
        try:
            self.socket.close()
        finally:
            self._close_all(code, reason)
            self.logger.info("server stopped")

    def _close_all(self, code: int, reason: str) -> None:
        """Close every connection within ``close_timeout``, then wait a moment for the threads."""
        deadline = time.monotonic() + self.close_timeout
        connections = self.connections
        for connection in connections:
            connection.close_nowait(code, reason)
        dropped = 0
        for connection in connections:
            if not connection.wait_closed(max(0.0, deadline - time.monotonic())):
                connection._abort()  # its reader ends and closes the socket
                dropped += 1
        if dropped:
            self.logger.info(
                "%d connections dropped: no closing handshake within %.1f s",
                dropped,
                self.close_timeout,
            )
        deadline = time.monotonic() + _JOIN_AFTER_CLOSE
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        still = sum(thread.is_alive() for thread in threads)
        if still:
            # Handlers that go on after their connection closed, or handshakes
            # that have not timed out yet: daemon threads, not waited for.
            self.logger.warning("%d connection threads still running after shutdown", still)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # Connections -------------------------------------------------------------------

    def _accept(self) -> float:
        """Accept one connection and start its thread; seconds to pause accepting."""
        try:
            sock, address = self.socket.accept()
        except OSError as error:  # descriptors ran out, the peer gave up, the socket closed
            return self._accept_errors.failed(error)
        self._accept_errors.succeeded()
        with self._lock:
            busy = self.max_connections is not None and len(self._threads) >= self.max_connections
            if not busy:
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(sock, address),
                    name=f"wscodec-conn-{address}",
                )
                thread.daemon = True
                self._threads.add(thread)
        if busy:
            self.logger.warning("refusing %s: %d connections open", address, self.max_connections)
            self._refuse(sock, reject(503, "too many connections", [("Retry-After", "1")]))
            return 0.0
        try:
            thread.start()
        except RuntimeError as error:  # a pids limit, TasksMax, memory: refuse this one
            with self._lock:
                self._threads.discard(thread)
                count = len(self._threads)
            self.logger.error(
                "refusing %s: cannot start a thread (%s) with %d connection threads running",
                address,
                error,
                count,
            )
            self._refuse(sock, reject(503, "server overloaded", [("Retry-After", "1")]))
        return 0.0

    def _refuse(self, sock: socket.socket, response: Response) -> None:
        try:
            sock.settimeout(1.0)
            sock.sendall(response.serialize())
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            sock.close()

    def _serve_connection(self, sock: socket.socket, address: Any) -> None:
        try:
            self._schedule_as_batch(address)
            connection = self._handshake(sock, address)
            if connection is not None:
                self._run_handler(connection)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _schedule_as_batch(self, address: Any) -> None:
        # The calling thread's own policy (pid 0), which the threads it starts
        # (its connection's background reader) inherit.
        if self.batch_scheduling:
            try:
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            except OSError as error:  # refused by a sandbox: the default policy is fine
                self.logger.debug("%s: SCHED_BATCH refused: %s", address, error)

    def _handshake(self, sock: socket.socket, address: Any) -> Optional[ServerConnection]:
        """Read the request and answer it; the open connection, or None."""
        deadline = None if self.open_timeout is None else time.monotonic() + self.open_timeout
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.open_timeout)
            if self.ssl is not None:
                sock = self.ssl.wrap_socket(sock, server_side=True)
            request, leftover = self._read_request(sock, deadline)
        except InvalidRequest as error:
            self.logger.info("%s: bad handshake request: %s", address, error)
            self._refuse(sock, reject(error.status, error.message, error.headers))
            return None
        except (OSError, ssl_module.SSLError, TimeoutError) as error:
            self.logger.info("%s: handshake not completed: %s", address, error)
            sock.close()
            return None
        if self._shutting_down.is_set():
            self._refuse(sock, reject(503, "server shutting down"))
            return None

        protocol = self.new_protocol()
        connection = ServerConnection(sock, protocol, request=request, **self._connection_options)  # type: ignore[arg-type]
        try:
            response = self._respond(connection, request)
        except InvalidRequest as error:
            self.logger.info("%s: handshake refused: %s", address, error)
            self._refuse(sock, reject(error.status, error.message, error.headers))
            return None
        except Exception:
            self.logger.exception("%s: error while processing the handshake", address)
            self._refuse(sock, reject(500, "internal server error"))
            return None
        connection.response = response
        try:
            sock.sendall(response.serialize())
        except OSError as error:
            self.logger.info("%s: could not send the handshake response: %s", address, error)
            sock.close()
            return None
        if response.status != 101:
            self._close_quietly(sock)  # process_request answered over plain HTTP
            return None
        with self._lock:
            # shutdown() closes the connections it finds; one whose handshake
            # ended after shutdown() began is closed here, with the same code.
            late = self._close_with if self._shutting_down.is_set() else None
            if late is None:
                self._connections.add(connection)
        try:
            connection.start(leftover)  # closes with 1013 if a thread cannot start
        except RuntimeError as error:
            with self._lock:
                self._connections.discard(connection)
            self.logger.error("%s: refused with 1013: %s", address, error)
            return None
        if late is not None:
            connection.close(*late)
            return None
        self.logger.info("%s: connection open %s", address, request.path)
        return connection

    def _read_request(
        self, sock: socket.socket, deadline: Optional[float]
    ) -> Tuple[Request, bytes]:
        reader = HTTPReader("request")
        while True:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("opening handshake timed out")
                sock.settimeout(remaining)
            data = sock.recv(_MAX_READ)
            if not data:
                raise ConnectionResetError("connection closed during the handshake")
            request = reader.feed(data)
            if request is not None:
                assert isinstance(request, Request)
                return request, reader.leftover

    def _respond(self, connection: ServerConnection, request: Request) -> Response:
        response, extension, upgrade = self.negotiate(connection, request)
        if not upgrade:
            return response
        if extension is not None:
            connection.protocol.enable_deflate(extension)
        if self.process_response is not None:
            response = self.process_response(connection, request, response) or response
        return response

    @staticmethod
    def _close_quietly(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()

    def _run_handler(self, connection: ServerConnection) -> None:
        try:
            self.handler(connection)
        except ConnectionClosed as closed:  # the peer went away: not the handler's fault
            self.logger.info("%s: %s", connection.remote_address, closed)
        except Exception:
            self.logger.exception("%s: handler failed", connection.remote_address)
            connection.close(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            connection.close()
        finally:
            connection.wait_closed(self.close_timeout)
            with self._lock:
                self._connections.discard(connection)


def serve(
    handler: Handler,
    host: Optional[str] = "127.0.0.1",
    port: int = 8765,
    *,
    sock: Optional[socket.socket] = None,
    backlog: int = 128,
    reuse_port: bool = False,
    **options: Any,
) -> Server:
    """Create a threaded WebSocket server listening on ``host:port``.

    Call :meth:`Server.serve_forever` to accept connections, and
    :meth:`Server.shutdown` (or leave the ``with`` block) to stop. Each
    connection runs ``handler(connection)`` in a thread of its own.

    Options, with their defaults:

    - ``ssl=None``: an :class:`ssl.SSLContext` to serve ``wss://``.
    - ``subprotocols=None``, ``select_subprotocol=None``: subprotocol negotiation.
    - ``origins=None``: allowed ``Origin`` values (include ``None`` to allow
      requests without one); others get 403.
    - ``process_request=None``: ``f(connection, request)`` may return a
      :class:`~wscodec.handshake.Response` to answer instead of upgrading
      (authentication, health checks, static files).
    - ``process_response=None``: ``f(connection, request, response)`` may
      change or replace the 101 response; ``extra_headers`` are added to it.
    - ``compression="deflate"``: permessage-deflate when the client offers it,
      as :data:`~wscodec.deflate.SERVER_DEFAULT` (no context takeover for what
      the server sends); a :class:`~wscodec.deflate.DeflateOptions` to tune
      it, None to disable.
    - ``open_timeout=10``: seconds for the opening handshake.
    - ``max_connections=512`` (:data:`DEFAULT_MAX_CONNECTIONS`): beyond it, new
      connections get 503; None for no limit. Each connection runs
      :data:`THREADS_PER_CONNECTION` threads; a connection whose threads cannot
      be started (a pids limit) gets 503, or 1013 once its handshake is done.
    - ``max_size=2**20``: largest message accepted (1009 above).
    - ``max_fragments=2**17``: most frames one message may arrive in (1009 above).
    - ``max_queue=16``: received messages buffered before reading pauses.
    - ``fragment_size=None``: split outgoing messages into frames of this size.
    - ``ping_interval=20``, ``ping_timeout=20``: keepalive (None disables).
    - ``close_timeout=10``: seconds to wait for the closing handshake.
    - ``write_timeout=30``, ``write_limit=4 MiB``: bounds on a peer that does
      not read; ``write_timeout`` is a deadline for each whole write, however
      slowly the peer reads, after which the connection is dropped.
    - ``batch_scheduling=True``: on Linux the connection threads run under
      ``SCHED_BATCH``. Only one thread runs Python at a time (the GIL); under
      the default policy a thread woken by its socket preempts the one
      holding the GIL, only to wait for it and switch back. ``SCHED_BATCH``
      threads do not preempt on waking; on a CPU kept busy by other
      processes a woken thread may wait out the running one's time slice
      (milliseconds) instead. False leaves the policy alone.
    - ``logger``: defaults to the ``wscodec.server`` logger.
    """
    if sock is not None:
        return Server(handler, sock, **options)
    sock = listen(host, port, backlog=backlog, reuse_port=reuse_port)
    try:
        return Server(handler, sock, **options)
    except BaseException:  # a bad option: the socket is ours to close
        sock.close()
        raise
