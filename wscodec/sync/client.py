"""The synchronous WebSocket client.

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
"""

from __future__ import annotations

import logging
import socket
import ssl as ssl_module
import time
from typing import Any, Optional, Sequence

from .. import deflate
from ..connection import Connection, Role
from ..deflate import Compression
from ..exceptions import InvalidResponse, InvalidStatus
from ..handshake import HeaderItems, HTTPReader, Response, build_request, check_response
from ..protocol import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE
from ..uri import WebSocketURI, parse_uri
from .connection import SyncConnection

__all__ = ["ClientConnection", "WebSocketURI", "connect", "parse_uri"]

_MAX_BODY = 65536


class ClientConnection(SyncConnection):
    """The client side of a connection, as returned by :func:`connect`."""


def connect(
    uri: str,
    *,
    sock: Optional[socket.socket] = None,
    ssl: Optional[ssl_module.SSLContext] = None,
    server_hostname: Optional[str] = None,
    origin: Optional[str] = None,
    subprotocols: Optional[Sequence[str]] = None,
    additional_headers: HeaderItems = None,
    user_agent: Optional[str] = "wscodec",
    compression: Compression = "deflate",
    open_timeout: Optional[float] = 10.0,
    max_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
    max_fragments: Optional[int] = DEFAULT_MAX_FRAGMENTS,
    max_queue: int = 16,
    fragment_size: Optional[int] = None,
    ping_interval: Optional[float] = 20.0,
    ping_timeout: Optional[float] = 20.0,
    close_timeout: float = 10.0,
    write_timeout: float = 30.0,
    write_limit: int = 2**22,
    logger: Optional[logging.Logger] = None,
) -> ClientConnection:
    """Open a WebSocket connection to ``uri`` and return it once the handshake is done.

    Raises :class:`~wscodec.InvalidURI` for a bad URI, :class:`OSError` (for
    example :class:`ConnectionRefusedError`) when the server cannot be
    reached, :class:`TimeoutError` when the handshake takes longer than
    ``open_timeout``, :class:`~wscodec.InvalidStatus` when the server answers
    with another status than 101 and :class:`~wscodec.InvalidResponse` when
    its answer breaks RFC 6455. ``compression="deflate"`` offers
    permessage-deflate (None: don't). The other options are those of
    :func:`wscodec.serve`.
    """
    target = parse_uri(uri)
    deflate_options = deflate.resolve(compression)
    logger = logger or logging.getLogger("wscodec.client")
    deadline = None if open_timeout is None else time.monotonic() + open_timeout
    if sock is None:
        sock = socket.create_connection((target.host, target.port), timeout=open_timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(open_timeout)
        if target.secure:
            context = ssl if ssl is not None else ssl_module.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=server_hostname or target.host)
        request, key = build_request(
            target.host,
            target.port,
            target.path,
            secure=target.secure,
            origin=origin,
            subprotocols=subprotocols,
            extra_headers=additional_headers,
            user_agent=user_agent,
            compression=deflate_options,
        )
        sock.sendall(request.serialize())
        reader = HTTPReader("response")
        response = None
        while response is None:
            _set_remaining(sock, deadline)
            data = sock.recv(4096)
            if not data:
                raise InvalidResponse("the server closed the connection during the handshake")
            response = reader.feed(data)
        assert isinstance(response, Response)
        if response.status != 101:
            response.body = _read_body(sock, response, reader.leftover, deadline)
            raise InvalidStatus(response)
        subprotocol, extension = check_response(response, key, subprotocols, deflate_options)
    except socket.timeout:
        sock.close()
        raise TimeoutError(f"opening handshake with {uri} timed out") from None
    except BaseException:
        sock.close()
        raise
    protocol = Connection(
        Role.CLIENT,
        max_message_size=max_size,
        max_fragments=max_fragments,
        fragment_size=fragment_size,
        deflate=extension,
    )
    connection = ClientConnection(
        sock,
        protocol,
        request=request,
        response=response,
        subprotocol=subprotocol,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        write_timeout=write_timeout,
        write_limit=write_limit,
        logger=logger,
    )
    connection.start(reader.leftover)
    logger.debug("connected to %s", uri)
    return connection


def _set_remaining(sock: socket.socket, deadline: Optional[float]) -> None:
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("opening handshake timed out")
        sock.settimeout(remaining)


def _read_body(sock: Any, response: Response, body: bytes, deadline: Optional[float]) -> bytes:
    """Up to 64 KiB of an error response's body, for the exception to carry."""
    try:
        length = min(int(response.headers.get("Content-Length") or 0), _MAX_BODY)
    except ValueError:
        length = 0
    try:
        while len(body) < length:
            _set_remaining(sock, deadline)
            data = sock.recv(length - len(body))
            if not data:
                break
            body += data
    except OSError:
        pass
    return body[:length] if length else body
