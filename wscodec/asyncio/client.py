"""The asyncio WebSocket client, in the shape of ``websockets.asyncio.client``. ::

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

``async for websocket in connect(uri)`` reconnects, with an exponential
backoff, after a failure that may be transient (refused, reset, timed out, or
an HTTP 500, 502, 503 or 504).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl as ssl_module
from typing import Any, AsyncIterator, Dict, Generator, Optional, Sequence, Tuple, Union

from .. import deflate
from .._version import __version__
from ..connection import Connection, Role
from ..deflate import Compression
from ..exceptions import InvalidResponse, InvalidStatus
from ..handshake import HeaderItems, HTTPReader, Request, Response, build_request, check_response
from ..protocol import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE
from ..uri import parse_uri
from .connection import AsyncConnection

__all__ = ["ClientConnection", "connect", "unix_connect"]

USER_AGENT = f"wscodec/{__version__}"
# HTTP statuses after which reconnecting may succeed (the server restarts).
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class ClientConnection(AsyncConnection):
    """The client side of a connection, as returned by :func:`connect`."""

    __slots__ = ("_compression", "_key", "_protocol_options", "_reader", "_subprotocols", "opened")

    is_client = True

    def __init__(
        self,
        request: Request,
        key: str,
        *,
        subprotocols: Optional[Sequence[str]],
        compression: Optional[deflate.DeflateOptions],
        protocol_options: Dict[str, Any],
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.request = request
        self._key = key
        self._subprotocols = subprotocols
        self._compression = compression
        self._protocol_options = protocol_options
        self._reader: Optional[HTTPReader] = HTTPReader("response")
        self.opened: Optional[asyncio.Future[None]] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self._loop is not None and self.request is not None
        self.opened = self._loop.create_future()
        self.transport.write(self.request.serialize())  # type: ignore[union-attr]

    def handshake_data(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:
            return
        assert self.opened is not None
        try:
            response = reader.feed(data)
            if response is None:
                return
            assert isinstance(response, Response)
            self.response = response
            self._reader = None
            if response.status != 101:
                response.body = reader.leftover
                raise InvalidStatus(response)
            self.subprotocol, extension = check_response(
                response, self._key, self._subprotocols, self._compression
            )
        except Exception as error:
            self._reader = None
            if not self.opened.done():
                self.opened.set_exception(error)
            self.transport.abort()  # type: ignore[union-attr]
            return
        if self.opened.done():  # connect() gave up (open_timeout) and aborted
            return
        protocol = Connection(Role.CLIENT, deflate=extension, **self._protocol_options)
        self.open(protocol, reader.leftover)
        self.opened.set_result(None)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(
                InvalidResponse("the server closed the connection during the handshake")
            )


class connect:
    """Open a WebSocket connection to ``uri`` (``ws://`` or ``wss://``).

    ``await connect(uri)`` returns the :class:`ClientConnection` once the
    opening handshake is over; ``async with connect(uri) as websocket``
    closes it at the end; ``async for websocket in connect(uri)`` reconnects
    after transient failures.

    Raises :class:`~wscodec.InvalidURI` for a bad URI, :class:`OSError`
    when the server cannot be reached, :class:`TimeoutError` when the
    handshake takes longer than ``open_timeout``,
    :class:`~wscodec.InvalidStatus` when the server answers another status
    than 101 and :class:`~wscodec.InvalidResponse` when its answer breaks
    RFC 6455.

    Options, with their defaults: ``origin``, ``subprotocols``,
    ``additional_headers``, ``user_agent_header``, ``compression="deflate"``,
    ``open_timeout=10``, ``ping_interval=20``, ``ping_timeout=20``,
    ``close_timeout=10``, ``max_size=1 MiB``, ``max_fragments=2**17``,
    ``max_queue=16``, ``write_limit=32 KiB``, ``write_timeout=30``,
    ``fragment_size=None``, ``ssl`` (a context for ``wss://``; one is made
    by default), ``server_hostname``, ``sock`` (a connected socket) and
    ``logger``; any other keyword goes to :meth:`loop.create_connection`.
    """

    #: Reconnection delays of ``async for``, in seconds: the first is drawn
    #: between 0 and BACKOFF_INITIAL, the next start at BACKOFF_MIN and grow by
    #: BACKOFF_FACTOR up to BACKOFF_MAX (websockets' values).
    BACKOFF_INITIAL = 5.0
    BACKOFF_MIN = 3.1
    BACKOFF_FACTOR = 1.618
    BACKOFF_MAX = 90.0

    def __init__(
        self,
        uri: str,
        *,
        origin: Optional[str] = None,
        subprotocols: Optional[Sequence[str]] = None,
        additional_headers: HeaderItems = None,
        user_agent_header: Optional[str] = USER_AGENT,
        compression: Compression = "deflate",
        open_timeout: Optional[float] = 10.0,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        close_timeout: Optional[float] = 10.0,
        max_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
        max_fragments: Optional[int] = DEFAULT_MAX_FRAGMENTS,
        max_queue: Union[int, Tuple[int, Optional[int]], None] = 16,
        write_limit: int = 2**15,
        write_timeout: Optional[float] = 30.0,
        fragment_size: Optional[int] = None,
        ssl: Optional[ssl_module.SSLContext] = None,
        server_hostname: Optional[str] = None,
        logger: Optional[logging.Logger] = None,
        unix_path: Optional[str] = None,
        **create_connection: Any,
    ) -> None:
        self.uri = uri
        self.target = parse_uri(uri)  # InvalidURI at once, not at the first await
        self.origin = origin
        self.subprotocols = subprotocols
        self.additional_headers = additional_headers
        self.user_agent_header = user_agent_header
        self.compression = deflate.resolve(compression)
        self.open_timeout = open_timeout
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.unix_path = unix_path
        self.logger = logger or logging.getLogger("wscodec.client")
        self.create_connection = create_connection
        self.protocol_options = dict(
            max_message_size=max_size,
            max_fragments=max_fragments,
            fragment_size=fragment_size,
            stream_fragments=True,  # for recv_streaming()
        )
        self.connection_options = dict(
            max_queue=max_queue,
            write_limit=write_limit,
            write_timeout=write_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            logger=self.logger,
        )
        self.connection: Optional[ClientConnection] = None

    async def _create(self) -> ClientConnection:
        target = self.target
        request, key = build_request(
            target.host,
            target.port,
            target.path,
            secure=target.secure,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extra_headers=self.additional_headers,
            user_agent=self.user_agent_header,
            compression=self.compression,
        )

        def factory() -> ClientConnection:
            return ClientConnection(
                request,
                key,
                subprotocols=self.subprotocols,
                compression=self.compression,
                protocol_options=self.protocol_options,
                **self.connection_options,  # type: ignore[arg-type]
            )

        loop = asyncio.get_running_loop()
        options = dict(self.create_connection)
        if target.secure:
            options["ssl"] = (
                self.ssl if self.ssl is not None else ssl_module.create_default_context()
            )
            options["server_hostname"] = self.server_hostname or target.host
        elif self.ssl is not None:
            raise ValueError("ssl given for a ws:// URI; use wss://")
        if self.unix_path is not None:
            opening = loop.create_unix_connection(factory, self.unix_path, **options)
        elif "sock" in options:
            opening = loop.create_connection(factory, **options)
        else:
            opening = loop.create_connection(factory, target.host, target.port, **options)
        try:
            connection = await asyncio.wait_for(self._open(opening), self.open_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"opening handshake with {self.uri} timed out") from None
        self.logger.debug("connected to %s", self.uri)
        return connection

    @staticmethod
    async def _open(opening: Any) -> ClientConnection:
        connection: ClientConnection
        _, connection = await opening
        assert connection.opened is not None
        try:
            await connection.opened
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    async def __aenter__(self) -> ClientConnection:
        self.connection = await self._create()
        return self.connection

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        delays: Optional[Generator[float, None, None]] = None
        while True:
            try:
                connection = await self._create()
            except Exception as error:
                if not _transient(error):
                    raise
                if delays is None:
                    delays = self._backoff()
                delay = next(delays)
                self.logger.info(
                    "connecting to %s failed (%s); retrying in %.1f s", self.uri, error, delay
                )
                await asyncio.sleep(delay)
                continue
            delays = None
            try:
                yield connection
            finally:
                await connection.close()

    def _backoff(self) -> Generator[float, None, None]:
        yield random.random() * self.BACKOFF_INITIAL
        delay = self.BACKOFF_MIN
        while True:
            yield delay
            delay = min(delay * self.BACKOFF_FACTOR, self.BACKOFF_MAX)


def _transient(error: Exception) -> bool:
    if isinstance(error, InvalidStatus):
        return error.response.status in _TRANSIENT_STATUSES
    return isinstance(error, (OSError, TimeoutError, asyncio.TimeoutError, socket.gaierror))


def unix_connect(path: str, uri: Optional[str] = None, **options: Any) -> connect:
    """:func:`connect` over the Unix socket at ``path``; ``uri`` defaults to ``ws://localhost/``."""
    return connect(uri or "ws://localhost/", unix_path=path, **options)
