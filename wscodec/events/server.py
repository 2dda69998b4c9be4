"""An event-driven server: a few selector loops serve every connection.

The threaded server (:func:`wscodec.serve`) gives each connection a thread
and a blocking API, like ``websockets.sync``. Under the GIL, every message
then wakes a thread that must win the GIL back: with many busy connections
the server spends its time switching threads. This server runs ``threads``
selector loops (one is enough for small messages; the codec releases the GIL
on large ones, so a second loop uses the second core) and calls a handler's
methods from the loop that owns the connection::

    import threading

    import wscodec


    class Echo(wscodec.EventHandler):
        def on_message(self, connection, message):
            connection.send(message)


    with wscodec.serve_events(Echo, "127.0.0.1", 0) as server:  # port 0: any free port
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with wscodec.connect(f"ws://127.0.0.1:{server.port}/") as client:
            client.send("Hello")
            print(client.recv(timeout=5))

A handler must not block: it runs on the loop that serves its neighbours.
``send()``, ``ping()`` and ``close()`` may be called from any thread (calls
from other threads are handed to the connection's loop). Writes never
block: what the socket does not take is buffered, and a peer that lets more
than ``write_limit`` bytes pile up behind the message being written, or does
not take what is buffered within ``write_timeout`` seconds of when the
backlog began, is disconnected (1006).

When ``accept()`` fails for want of file descriptors (EMFILE, ENFILE) or
kernel memory, each loop stops watching the listening socket for a short
backoff (:class:`~wscodec.serving.AcceptErrors`, the policy both servers
share: the burst is logged once), serving the connections it has meanwhile.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, List, Optional, Tuple

from ..connection import (
    Connection,
)
from ..handshake import (
    Request,
    Response,
)
from ..protocol import CloseCode
from ..serving import AcceptErrors, ServerBase, listen
from .connection import EventConnection, EventHandler, HandlerFactory
from .loop import Loop

__all__ = ["EventConnection", "EventHandler", "EventServer", "serve_events"]


class EventServer(ServerBase):
    """A listening socket served by selector loops; made by :func:`serve_events`."""

    def __init__(
        self,
        handler_factory: HandlerFactory,
        sock: socket.socket,
        *,
        threads: int = 1,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        write_limit: int = 2**22,
        write_timeout: Optional[float] = 30.0,
        **options: Any,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        super().__init__(sock, **options)  # the handshake options and limits
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        #: How often the loops look for connections due a ping or late with a pong.
        self.keepalive_period = (
            None if ping_interval is None else min(ping_interval, ping_timeout or ping_interval) / 2
        )
        self.handler_factory = handler_factory
        sock.setblocking(False)
        self.write_limit = write_limit
        #: Seconds a connection's unsent bytes may wait, counted from when
        #: the backlog began (not restarted by partial sends); None: no limit.
        self.write_timeout = write_timeout
        #: Whether accepted sockets are TCP ones (TCP_NODELAY is set on those).
        self.tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        #: What to do when accept() fails: back off when out of descriptors, log once a burst.
        self.accept_errors = AcceptErrors(self.logger)
        self.stopping = False
        self.close_with: Tuple[int, str] = (CloseCode.GOING_AWAY, "server shutting down")
        self._loops = [Loop(self, index) for index in range(threads)]
        self._slots_lock = threading.Lock()
        self._open = 0
        self._stopped = threading.Event()
        self._serving = False

    @property
    def connections(self) -> List[EventConnection]:
        """The connections open now (a snapshot)."""
        return [c for loop in self._loops for c in list(loop.connections) if c.protocol is not None]

    def serve_forever(self) -> None:
        """Run the loops until :meth:`shutdown` (or Ctrl-C, which shuts down).

        Every loop runs in a thread of its own, even a single one: glibc
        gives the main thread a heap that it trims back to the system when
        large blocks are freed, so a loop in the main thread paid fresh page
        faults for every large message (1 MiB echo: 2.5x slower).
        """
        # Each loop's end is an Event, not Thread.join(): a KeyboardInterrupt
        # that lands inside join() makes threading.py (3.9-3.12: its
        # bpo-45274 handling) release the running thread's state lock and mark
        # it stopped, so the join after it returned at once and the process
        # exited before the loops had sent their close frames (1006, not 1001).
        finished = [threading.Event() for _ in self._loops]
        workers = [
            threading.Thread(
                target=_run_loop, args=(loop, done), name=f"wscodec-loop-{loop.index}", daemon=True
            )
            for loop, done in zip(self._loops, finished)
        ]
        self._serving = True
        try:
            # Started inside the try: a Ctrl-C while they start still shuts down.
            for worker in workers:
                worker.start()
            for done in finished:
                while not done.wait(0.5):  # a bounded wait lets Ctrl-C through
                    pass
        except BaseException:
            self._stop(*self.close_with)
            deadline = time.monotonic() + self.close_timeout + 5.0
            for done in finished:
                done.wait(max(0.0, deadline - time.monotonic()))
            raise
        finally:
            self.socket.close()
            self._stopped.set()

    def shutdown(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Stop accepting, close every connection with ``code``, and wait for the loops."""
        self._stop(code, reason)
        if self._serving:
            self._stopped.wait(self.close_timeout + 5.0)
        else:
            self.socket.close()

    def _stop(self, code: int, reason: str) -> None:
        self.close_with = (code, reason)
        self.stopping = True
        for loop in self._loops:
            loop.wake()

    def __enter__(self) -> EventServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.stopping:
            self.shutdown()

    # Used by the loops -----------------------------------------------------------

    def reserve_slot(self) -> bool:
        with self._slots_lock:
            if self.max_connections is not None and self._open >= self.max_connections:
                return False
            self._open += 1
            return True

    def release_slot(self) -> None:
        with self._slots_lock:
            self._open -= 1

    def respond(
        self, connection: EventConnection, request: Request
    ) -> Tuple[Response, Optional[Connection]]:
        """The response to a handshake request, and the protocol if it upgrades."""
        response, extension, upgrade = self.negotiate(connection, request)
        if not upgrade:
            return response, None
        protocol = self.new_protocol()
        if extension is not None:
            protocol.enable_deflate(extension)
        return response, protocol


def _run_loop(loop: Loop, done: threading.Event) -> None:
    """A loop thread's target: run ``loop``, then say it ended."""
    try:
        loop.run()
    finally:
        done.set()


def serve_events(
    handler_factory: HandlerFactory,
    host: Optional[str] = "127.0.0.1",
    port: int = 8765,
    *,
    sock: Optional[socket.socket] = None,
    backlog: int = 128,
    reuse_port: bool = False,
    **options: Any,
) -> EventServer:
    """Create an event-driven WebSocket server listening on ``host:port``.

    ``handler_factory()`` makes the :class:`EventHandler` of each connection
    (a subclass of it is a factory). Call :meth:`EventServer.serve_forever`
    to run and :meth:`EventServer.shutdown` to stop (1001 to every client).

    Options, with their defaults (as :func:`wscodec.serve` where they share
    a name): ``threads=1`` selector loops; ``subprotocols``,
    ``select_subprotocol``, ``origins``, ``extra_headers``;
    ``process_request=None`` (``f(connection, request)`` may return a
    response to answer instead of upgrading); ``compression="deflate"``
    (:data:`~wscodec.deflate.SERVER_DEFAULT`);
    ``open_timeout=10``; ``max_connections=None`` (503 beyond);
    ``max_size=2**20`` and ``max_fragments=2**17`` (1009 above); ``fragment_size=None``;
    ``ping_interval=20``, ``ping_timeout=20`` (keepalive: a pong later than
    that fails the connection with 1011; None disables); ``close_timeout=10``;
    ``write_limit=4 MiB`` (a peer that lets more pile up behind a message is dropped);
    ``write_timeout=30`` (a peer that has not taken what is buffered within
    that many seconds of when the backlog began is dropped, however much it
    reads meanwhile; None disables);
    ``logger`` (``wscodec.server``). No TLS: put a TLS terminator in front,
    or use :func:`wscodec.serve`.
    """
    if sock is None:
        sock = listen(host, port, backlog=backlog, reuse_port=reuse_port)
    return EventServer(handler_factory, sock, **options)
