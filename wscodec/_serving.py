"""What both servers share: the listening socket, handshake options, negotiation.

:class:`~wscodec.server.Server` (a thread per connection) and
:class:`~wscodec.reactor.EventServer` (selector loops) differ in how they run
connections, not in what they agree to during the opening handshake.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable, Optional, Sequence, Tuple

from . import deflate
from .connection import Connection, Role
from .deflate import Compression
from .handshake import HeaderItems, Request, Response, SubprotocolSelector, accept

__all__ = ["ServerBase", "listen"]

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
        max_size: Optional[int] = 2**20,
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
        self.compression = deflate.resolve(compression)
        self.open_timeout = open_timeout
        self.max_connections = max_connections
        self.max_size = max_size
        self.fragment_size = fragment_size
        self.close_timeout = close_timeout
        self.logger = logger or logging.getLogger("wscodec.server")

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def new_protocol(self) -> Connection:
        """The sans-I/O protocol of a server-side connection, with this server's limits."""
        return Connection(
            Role.SERVER, max_message_size=self.max_size, fragment_size=self.fragment_size
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
        response, subprotocol, extension = accept(
            request,
            subprotocols=self.subprotocols,
            select_subprotocol=self.select_subprotocol,
            origins=self.origins,
            extra_headers=self.extra_headers,
            compression=self.compression,
        )
        connection.subprotocol = subprotocol
        return response, extension, True


def listen(
    host: Optional[str], port: int, *, backlog: int = 128, reuse_port: bool = False
) -> socket.socket:
    """A TCP socket listening on ``host:port`` (IPv6 when ``host`` has a colon)."""
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
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
