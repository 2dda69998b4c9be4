"""What both servers share: the listening socket, handshake options, negotiation.

:class:`~wscodec.sync.server.Server` (a thread per connection) and
:class:`~wscodec.events.server.EventServer` (selector loops) differ in how they run
connections, not in what they agree to during the opening handshake.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import Any, Callable, Optional, Sequence, Tuple

from . import deflate
from .connection import Connection, Role
from .deflate import Compression
from .handshake import HeaderItems, Request, Response, SubprotocolSelector, accept
from .protocol import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["ACCEPT_BACKOFF", "AcceptErrors", "ServerBase", "listen"]

#: Seconds a server stops calling ``accept()`` after it failed for want of a
#: resource (descriptors, buffers, memory), so that it does not spin.
ACCEPT_BACKOFF = 0.1
#: How often a burst of such failures that goes on is logged again, in seconds.
ACCEPT_REMIND_EVERY = 60.0
# accept() errors that mean the process or the system ran out of something:
# waiting helps, retrying at once only spins.
_EXHAUSTED = frozenset(
    code for code in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM) if code is not None
)

# f(connection, request) -> a response to send instead of upgrading, or None.
ProcessRequest = Callable[[Any, Request], Optional[Response]]


class ServerBase:
    """The listening socket, handshake options and message limits of a server."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        subprotocols: Optional[Sequence[str]] = None,
        select_subprotocol: Optional[SubprotocolSelector] = None,
        origins: Optional[Sequence[Optional[str]]] = None,
        process_request: Optional[ProcessRequest] = None,
        extra_headers: HeaderItems = None,
        compression: Compression = "deflate",
        open_timeout: Optional[float] = 10.0,
        max_connections: Optional[int] = None,
        max_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
        max_fragments: Optional[int] = DEFAULT_MAX_FRAGMENTS,
        fragment_size: Optional[int] = None,
        close_timeout: float = 10.0,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self.socket = sock
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.origins = origins
        self.process_request = process_request
        self.extra_headers = extra_headers
        self.compression = deflate.resolve(compression, server=True)
        self.open_timeout = open_timeout
        self.max_connections = max_connections
        self.max_size = max_size
        self.max_fragments = max_fragments
        self.fragment_size = fragment_size
        self.close_timeout = close_timeout
        self.logger = logger or logging.getLogger("wscodec.server")

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def new_protocol(self, stream_fragments: bool = False) -> Connection:
        """The sans-I/O protocol of a server-side connection, with this server's limits."""
        return Connection(
            Role.SERVER,
            max_message_size=self.max_size,
            max_fragments=self.max_fragments,
            fragment_size=self.fragment_size,
            stream_fragments=stream_fragments,
        )

    def negotiate(
        self, connection: Any, request: Request
    ) -> Tuple[Response, Optional[deflate.PerMessageDeflate], bool]:
        """Answer a handshake request: ``(response, extension, upgrade)``.

        ``upgrade`` is False when ``process_request`` answered over plain
        HTTP. Sets ``connection.subprotocol``. Raises
        :class:`~wscodec.InvalidRequest` for a request to refuse.
        """
        if self.process_request is not None:
            early = self.process_request(connection, request)
            if early is not None:
                return early, None, False
        response, extension = self.upgrade(connection, request)
        return response, extension, True

    def upgrade(
        self, connection: Any, request: Request
    ) -> Tuple[Response, Optional[deflate.PerMessageDeflate]]:
        """The 101 response to ``request`` and the compression it agreed to.

        :meth:`negotiate` without ``process_request`` (for a caller that runs
        that hook itself). Sets ``connection.subprotocol``; raises
        :class:`~wscodec.InvalidRequest` for a request to refuse.
        """
        response, subprotocol, extension = accept(
            request,
            subprotocols=self.subprotocols,
            select_subprotocol=self.select_subprotocol,
            origins=self.origins,
            extra_headers=self.extra_headers,
            compression=self.compression,
        )
        connection.subprotocol = subprotocol
        return response, extension


def listen(
    host: Optional[str], port: int, *, backlog: int = 128, reuse_port: bool = False
) -> socket.socket:
    """A TCP socket listening on ``host:port`` (IPv6 when ``host`` has a colon)."""
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    # IPPROTO_TCP, as asyncio's own sockets: its transports set TCP_NODELAY on
    # the connections accepted from a socket made so (and only then).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host or "", port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class AcceptErrors:
    """The accept-error policy every server shares: log once per burst, back off, go on.

    ``accept()`` on a listening socket that is readable fails in two ways:

    - for want of a resource: ``EMFILE`` (the process's descriptor limit),
      ``ENFILE`` (the system's), ``ENOBUFS``, ``ENOMEM``. The waiting client
      stays in the backlog, so the socket stays readable and retrying at once
      spins at 100% CPU. :meth:`failed` returns :data:`ACCEPT_BACKOFF`: the
      caller stops accepting that long (and serves its open connections
      meanwhile). The first failure of a burst is logged as an error, a burst
      that goes on every :data:`ACCEPT_REMIND_EVERY` seconds, and its end
      (the next accept that works) as a warning with the count;
    - for that one connection only (``ECONNABORTED``: the client reset
      first; ``EPERM``: a firewall; ``EAGAIN``: another thread took it):
      :meth:`failed` returns 0, accept again at once; logged at debug level.

    Usage, in an accept loop::

        import logging
        import socket

        from wscodec.serving import AcceptErrors

        errors = AcceptErrors(logging.getLogger("example"))
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        try:
            sock, address = listener.accept()
        except OSError as error:  # here BlockingIOError: nobody is waiting
            pause = errors.failed(error)  # seconds not to accept; 0.0: go on
        else:
            errors.succeeded()

    Thread-safe: several loops may share one instance (and one listener).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        backoff: float = ACCEPT_BACKOFF,
        remind_every: float = ACCEPT_REMIND_EVERY,
    ) -> None:
        self.logger = logger
        self.backoff = backoff
        self.remind_every = remind_every
        self._lock = threading.Lock()
        self._burst_started: Optional[float] = None  # monotonic time, during a burst
        self._failures = 0
        self._logged_at = 0.0

    @property
    def in_burst(self) -> bool:
        """Whether accept() is failing for want of a resource (until the next success)."""
        return self._burst_started is not None

    def failed(self, error: OSError) -> float:
        """Record a failed ``accept()``: the seconds to stop accepting (0.0: retry now)."""
        if error.errno not in _EXHAUSTED:
            self.logger.debug("accept() failed: %s", error)
            return 0.0
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            if self._burst_started is None:
                self._burst_started = self._logged_at = now
                first = True
            elif now - self._logged_at >= self.remind_every:
                self._logged_at = now
                first = False
            else:
                return self.backoff
            failures, since = self._failures, now - self._burst_started
        if first:
            self.logger.error(
                "cannot accept connections: %s; retrying every %.1f s, open connections "
                "are still served",
                error,
                self.backoff,
            )
        else:
            self.logger.error(
                "still cannot accept connections: %s (%d failures in %.0f s)",
                error,
                failures,
                since,
            )
        return self.backoff

    def succeeded(self) -> None:
        """Record an ``accept()`` that worked: ends (and logs the end of) a burst."""
        if self._burst_started is None:  # the usual case, without the lock
            return
        with self._lock:
            if self._burst_started is None:
                return
            failures, since = self._failures, time.monotonic() - self._burst_started
            self._burst_started = None
            self._failures = 0
        self.logger.warning(
            "accepting connections again after %d failed accept() calls in %.1f s",
            failures,
            since,
        )
