"""The asyncio WebSocket server, in the shape of ``websockets.asyncio.server``. ::

    import asyncio

    from wscodec.asyncio import connect, serve


    async def echo(websocket):  # a task per connection
        async for message in websocket:
            await websocket.send(message)


    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:  # port 0: any free port
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as websocket:
                await websocket.send("Hello")
                print(await websocket.recv())


    asyncio.run(main())

A server that runs until stopped awaits ``server.serve_forever()`` in the
``async with`` block. Each connection runs ``handler(connection)`` in a task of its own once the
opening handshake is over. The handshake options, limits and refusals are
those of the other servers (:class:`~wscodec.serving.ServerBase`).
"""

from __future__ import annotations

import asyncio
import http
import inspect
import os
import socket
import ssl as ssl_module
import sys
from typing import Any, Awaitable, Callable, Dict, Generator, Optional, Set, Tuple, Union

from .._version import __version__
from ..exceptions import ConnectionClosed, InvalidRequest
from ..handshake import HTTPReader, Request, Response, reject
from ..protocol import CloseCode
from ..serving import ServerBase, listen
from .connection import AsyncConnection

__all__ = ["Server", "ServerConnection", "basic_response", "serve", "unix_serve"]

Handler = Callable[["ServerConnection"], Awaitable[Any]]
MaybeAwaitable = Union[Optional[Response], Awaitable[Optional[Response]]]
ProcessRequest = Callable[["ServerConnection", Request], MaybeAwaitable]
ProcessResponse = Callable[["ServerConnection", Request, Response], MaybeAwaitable]

SERVER_HEADER = f"Python/{sys.version_info[0]}.{sys.version_info[1]} wscodec/{__version__}"
# Reading stops once a request head is complete, until it is answered: what
# a client sends after it (its first frames) waits in TCP, not here.
_REFUSE_LINGER = 1.0  # seconds a refused client gets to read the error response


def basic_response(status: int, text: str = "", headers: Any = None) -> Response:
    """A plain-text HTTP response for ``process_request`` to deny or to answer a health check.

    The body is ``text``, or the status's reason phrase; the connection closes after it.
    """
    return reject(status, text or http.HTTPStatus(status).phrase, headers)


class ServerConnection(AsyncConnection):
    """The server side of a connection, as passed to the handler."""

    __slots__ = ("_reader", "handler_task", "server")

    def __init__(self, server: Server) -> None:
        super().__init__(**server.connection_options)  # type: ignore[arg-type]
        self.server = server
        self._reader: Optional[HTTPReader] = HTTPReader("request")
        self.handler_task: Optional[asyncio.Task[None]] = None

    def respond(self, status: int, text: str = "") -> Response:
        """A plain-text response, for ``process_request`` (as in websockets)."""
        return basic_response(status, text)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        server._connections.add(self)
        if server.open_timeout is not None:
            assert self._loop is not None
            self._timer = self._loop.call_later(server.open_timeout, self._handshake_expired)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        self.server._connections.discard(self)

    def handshake_data(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:  # the request is complete and being answered
            return
        try:
            request = reader.feed(data)
        except InvalidRequest as error:
            self.logger.info("%s: bad handshake request: %s", self.remote_address, error)
            self._reader = None
            self._refuse(reject(error.status, error.message, error.headers))
            return
        if request is None:
            return
        assert isinstance(request, Request)
        self._reader = None
        self._pause_reading()  # until it is answered
        assert self._loop is not None
        self.request = request
        self.handler_task = self._loop.create_task(self._run(request, reader.leftover))
        self.server._handler_started(self.handler_task)

    def _handshake_expired(self) -> None:
        self._timer = None
        if self.protocol is None and self.transport is not None:
            self.logger.info("%s: opening handshake timed out", self.remote_address)
            self.transport.abort()

    def _refuse(self, response: Response) -> None:
        transport = self.transport
        assert transport is not None and self._loop is not None
        self.response = response
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport.write(response.serialize())
        try:
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        except OSError:  # the client is gone already (ENOTCONN): nothing to linger for
            transport.abort()
            return
        self._timer = self._loop.call_later(_REFUSE_LINGER, transport.abort)

    async def _run(self, request: Request, leftover: bytes) -> None:
        try:
            response = await self._answer(request, leftover)
        except InvalidRequest as error:
            self.logger.info("%s: handshake refused: %s", self.remote_address, error)
            self._refuse(reject(error.status, error.message, error.headers))
            return
        except Exception:
            self.logger.exception("%s: error while processing the handshake", self.remote_address)
            self._refuse(reject(500, "internal server error"))
            return
        if response is None:  # refused or answered over plain HTTP
            return
        self.logger.info("%s: connection open %s", self.remote_address, request.path)
        try:
            await self.server.handler(self)
        except ConnectionClosed as closed:  # the peer went away: not the handler's fault
            self.logger.info("%s: %s", self.remote_address, closed)
        except Exception:
            self.logger.exception("%s: handler failed", self.remote_address)
            await self.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            await self.close()  # 1000 once the handler returns (or is cancelled)

    async def _answer(self, request: Request, leftover: bytes) -> Optional[Response]:
        """Answer the handshake; the 101 response once the connection is open, else None."""
        server = self.server
        transport = self.transport
        assert transport is not None
        if server.closing:
            self._refuse(reject(503, "server shutting down"))
            return None
        limit = server.max_connections
        if limit is not None and len(server.connections) >= limit:
            self.logger.warning("refusing %s: %d connections open", self.remote_address, limit)
            self._refuse(reject(503, "too many connections", [("Retry-After", "1")]))
            return None
        if server.process_request is not None:
            early = await _maybe_awaited(server.process_request(self, request))
            if early is not None:
                self._refuse(early)
                return None
        response, extension = server.upgrade(self, request)
        protocol = server.new_protocol(stream_fragments=True)  # for recv_streaming()
        if extension is not None:
            protocol.enable_deflate(extension)
        if server.server_header:
            response.headers["Server"] = server.server_header
        if server.process_response is not None:
            replaced = await _maybe_awaited(server.process_response(self, request, response))
            response = replaced or response
        self.response = response
        if transport.is_closing():
            return None
        if response.status != 101:
            self._refuse(response)
            return None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport.write(response.serialize())
        self.open(protocol, leftover)
        if server.closing:  # the server began closing while this handshake ran
            await self.close(*server.close_with)
            return None
        self._resume_reading()
        return response


async def _maybe_awaited(result: MaybeAwaitable) -> Optional[Response]:
    if inspect.isawaitable(result):
        return await result
    return result


class Server(ServerBase):
    """A listening socket and the connections it accepted. Made by :func:`serve`."""

    def __init__(
        self,
        handler: Handler,
        sock: socket.socket,
        *,
        ssl: Optional[ssl_module.SSLContext] = None,
        process_request: Optional[ProcessRequest] = None,
        process_response: Optional[ProcessResponse] = None,
        server_header: Optional[str] = SERVER_HEADER,
        max_queue: Union[int, Tuple[int, Optional[int]], None] = 16,
        write_limit: int = 2**15,
        write_timeout: Optional[float] = 30.0,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        backlog: int = 128,
        create_connection: Optional[Callable[[Server], ServerConnection]] = None,
        **options: Any,
    ) -> None:
        super().__init__(sock, process_request=process_request, **options)  # type: ignore[arg-type]
        self.handler = handler
        self.create_connection = create_connection or ServerConnection
        # create_server(sock=...) calls listen() again, with 100 unless told:
        # the backlog the socket was made with would be lost.
        self.backlog = backlog
        self.ssl = ssl
        self.process_response = process_response
        self.server_header = server_header
        self.connection_options: Dict[str, Any] = dict(
            max_queue=max_queue,
            write_limit=write_limit,
            write_timeout=write_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=self.close_timeout,
            logger=self.logger,
        )
        self._connections: Set[ServerConnection] = set()
        self._server: Optional[asyncio.AbstractServer] = None
        self.closing = False
        self.close_with: Tuple[int, str] = (CloseCode.GOING_AWAY, "server shutting down")
        self._closed: Optional[asyncio.Future[None]] = None
        self._closing_task: Optional[asyncio.Task[None]] = None
        self._handlers: Set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start accepting connections (:func:`serve` does it)."""
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        self._server = await loop.create_server(
            lambda: self.create_connection(self),
            sock=self.socket,
            ssl=self.ssl,
            backlog=self.backlog,
        )
        self.logger.info("server listening on %s", _describe(self.socket))

    @property
    def sockets(self) -> Tuple[socket.socket, ...]:
        """The listening sockets."""
        if self._server is None:
            return (self.socket,)
        return tuple(self._server.sockets)  # type: ignore[attr-defined]

    @property
    def connections(self) -> Set[ServerConnection]:
        """The open connections (a snapshot): those whose handshake is over."""
        return {c for c in self._connections if c.protocol is not None}

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called (or the task is cancelled, which closes)."""
        try:
            await self.wait_closed()
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting; with ``close_connections``, close each connection with 1001.

        Returns at once; :meth:`wait_closed` waits until every connection and
        handler is done (within about ``close_timeout`` for the connections).
        """
        if self.closing:
            return
        self.closing = True
        assert self._closed is not None
        self._closing_task = asyncio.get_running_loop().create_task(self._close(close_connections))

    async def _close(self, close_connections: bool) -> None:
        if self._server is not None:
            self._server.close()
        if close_connections:
            code, reason = self.close_with
            closing = []
            for connection in list(self._connections):
                if connection.protocol is not None:
                    closing.append(connection.close(code, reason))
                elif connection.transport is not None and connection.handler_task is None:
                    connection.transport.abort()  # its request has not arrived yet
            if closing:
                await asyncio.gather(*closing, return_exceptions=True)
        if self._handlers:  # handlers may go on after their connection closed
            await asyncio.wait(list(self._handlers))
        if self._server is not None:
            await self._server.wait_closed()
        assert self._closed is not None
        if not self._closed.done():
            self._closed.set_result(None)
        self.logger.info("server closed")

    def _handler_started(self, task: asyncio.Task[None]) -> None:
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` is done."""
        assert self._closed is not None
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def _describe(sock: socket.socket) -> str:
    address = sock.getsockname()
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address)


class serve:
    """Create an asyncio WebSocket server listening on ``host:port``.

    ``await serve(...)`` returns the :class:`Server`; ``async with serve(...)
    as server`` closes it at the end of the block. ``handler(connection)`` is
    a coroutine run once per connection; when it returns the connection
    closes (1000), and when it raises, the error is logged and the connection
    closes with 1011 while the server goes on.

    Options, with their defaults (the names of ``websockets.asyncio.server``
    and of :func:`wscodec.serve`):

    - ``ssl=None``: an :class:`ssl.SSLContext` to serve ``wss://``.
    - ``sock=None``: a listening socket to use instead of ``host:port``.
    - ``backlog=128``: the listen queue (raise it for bursts of thousands of
      connections; kept when the event loop listens again).
    - ``subprotocols=None``, ``select_subprotocol=None``: subprotocol negotiation.
    - ``origins=None``: allowed ``Origin`` values; others get 403.
    - ``process_request=None``: ``f(connection, request)``, a function or a
      coroutine, may return a :class:`~wscodec.handshake.Response` to send
      instead of upgrading (``connection.respond(status, text)`` makes one).
    - ``process_response=None``: ``f(connection, request, response)`` may
      change or replace the 101 response.
    - ``server_header``: the ``Server`` header (None: none).
    - ``compression="deflate"``: permessage-deflate when the client offers it,
      as :data:`~wscodec.deflate.SERVER_DEFAULT` (no context takeover for what
      the server sends); a :class:`~wscodec.deflate.DeflateOptions` to tune
      it, None to disable.
    - ``open_timeout=10``, ``close_timeout=10``: seconds for the opening and
      the closing handshakes.
    - ``max_size=1 MiB``: largest message accepted (1009 above);
      ``max_fragments=2**17``: most frames one message may take.
    - ``max_queue=16``: messages (or fragments) waiting for ``recv()`` before
      reading pauses; it resumes at a quarter of it. A pair sets both marks.
    - ``write_limit=32 KiB``: ``send()`` waits while the transport holds more;
      ``write_timeout=30``: a peer that reads nothing for that long is dropped.
    - ``ping_interval=20``, ``ping_timeout=20``: keepalive (None disables).
    - ``logger``: defaults to the ``wscodec.server`` logger.
    - ``create_connection=None``: a :class:`ServerConnection` subclass (or
      any callable taking the server) to make each connection with, as in
      websockets.
    """

    def __init__(
        self,
        handler: Handler,
        host: Optional[str] = None,
        port: Optional[int] = None,
        *,
        sock: Optional[socket.socket] = None,
        backlog: int = 128,
        reuse_port: bool = False,
        **options: Any,
    ) -> None:
        self._handler = handler
        self._make_socket: Callable[[], socket.socket]
        if sock is not None:
            self._make_socket = lambda: sock  # type: ignore[return-value]
        else:
            self._make_socket = lambda: listen(
                host, port or 0, backlog=backlog, reuse_port=reuse_port
            )
        self._options = dict(options, backlog=backlog)
        self.server: Optional[Server] = None

    async def _create(self) -> Server:
        sock = self._make_socket()
        sock.setblocking(False)
        try:
            server = Server(self._handler, sock, **self._options)
            await server.start()
        except BaseException:
            sock.close()
            raise
        self.server = server
        return server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._create().__await__()

    async def __aenter__(self) -> Server:
        return await self._create()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def unix_serve(handler: Handler, path: str, **options: Any) -> serve:
    """:func:`serve` on a Unix socket at ``path`` (replaced if it exists)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.path.exists(path):
            os.unlink(path)
        sock.bind(path)
        sock.listen(options.get("backlog", 128))
    except BaseException:
        sock.close()
        raise
    return serve(handler, sock=sock, **options)
