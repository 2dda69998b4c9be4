"""uvicorn's WebSocket protocol, on wscodec's buffered asyncio connection.

uvicorn loads it with its ``--ws`` option (``Config.ws``), as it loads its own
``websockets-sansio`` and ``wsproto`` implementations:

.. code-block:: sh

    uvicorn app:app --ws wscodec.asgi.uvicorn:WebSocketProtocol

or ``uvicorn.run(app, ws=WebSocketProtocol)`` from Python.

uvicorn's HTTP protocol (httptools or h11) hands a WebSocket upgrade over by
calling :meth:`WebSocketProtocol.connection_made`, then
:meth:`~WebSocketProtocol.data_received` with the request head it rebuilt,
then ``transport.set_protocol()``. From there on the event loop reads into
wscodec's buffer and the sans-I/O :class:`~wscodec.connection.Connection`
parses it in place, exactly as under :mod:`wscodec.asyncio`.

It honours uvicorn's options: ``ws_max_size`` (1009 past it),
``ws_max_queue`` (reading pauses while that many messages wait for the
application), ``ws_ping_interval``, ``ws_ping_timeout`` and
``ws_per_message_deflate``. It logs through ``uvicorn.error`` as uvicorn's own
implementations do.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import logging
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)
from uvicorn.server import ServerState

from .. import deflate
from ..asyncio.connection import AsyncConnection
from ..connection import Connection, Role
from ..exceptions import ConnectionClosed, InvalidRequest
from ..handshake import Accepted, Headers, HTTPReader, Request, Response, accept, reject
from ..protocol import DEFAULT_MAX_FRAGMENTS, CloseCode, State

__all__ = ["WebSocketProtocol"]

Message = Dict[str, Any]

_OPEN, _CLOSED = State.OPEN, State.CLOSED
_AFTER_CLOSE = "Unexpected ASGI message '{}', after sending 'websocket.close'."
_WRITE_LIMIT = 2**16  # asyncio's default high-water mark, which uvicorn leaves as it is


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _disconnect(code: int, reason: Optional[str] = None) -> Message:
    """A ``websocket.disconnect`` event (with a reason when a close frame gave one)."""
    if reason is None:
        return {"type": "websocket.disconnect", "code": code}
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


class WebSocketProtocol(AsyncConnection):
    """A WebSocket connection under uvicorn, running one ASGI ``websocket`` scope.

    Built by uvicorn as ``WebSocketProtocol(config, server_state, app_state)``
    for each upgrade request. The application receives ``websocket.connect``,
    then answers with ``websocket.accept``, ``websocket.close`` (a 403) or
    ``websocket.http.response.start`` and ``.body`` (a response of its own).
    An application that fails before accepting gets the client a 500; after,
    the client gets close code 1011. uvicorn's :meth:`shutdown` closes with
    1012.
    """

    __slots__ = (
        "_accepted",
        "_closed_by_app",
        "_connect_delivered",
        "_deflate",
        "_disconnect",
        "_early",
        "_http_response",
        "_ping_sent_at",
        "_reader",
        "_response_sent",
        "app",
        "app_state",
        "asgi_version",
        "client",
        "config",
        "connections",
        "default_headers",
        "max_size",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
    )

    #: permessage-deflate as agreed when ``ws_per_message_deflate`` is on:
    #: uvicorn's window (12 bits) and memLevel (5), and no context takeover
    #: for what the server sends, so that an idle connection holds no
    #: compressor (about 30 KiB); each message is compressed on its own.
    #: Set ``DeflateOptions()`` in a subclass to keep the context.
    deflate_options = deflate.SERVER_DEFAULT

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: Dict[str, Any],
        _loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None:
        if not config.loaded:
            config.load()
        interval = config.ws_ping_interval
        super().__init__(
            max_queue=config.ws_max_queue,
            write_limit=_WRITE_LIMIT,
            ping_interval=interval if interval is not None and interval > 0 else None,
            ping_timeout=config.ws_ping_timeout,
            close_timeout=10.0,
            logger=logging.getLogger("uvicorn.error"),
        )
        self.config = config
        self.app = config.loaded_app
        self.app_state = app_state
        self.root_path: str = config.root_path
        self.asgi_version = config.asgi_version
        self.max_size: Optional[int] = config.ws_max_size
        self._deflate = self.deflate_options if config.ws_per_message_deflate else None
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers: List[Tuple[bytes, bytes]] = server_state.default_headers
        self.server: Optional[Tuple[str, Optional[int]]] = None
        self.client: Optional[Tuple[str, int]] = None
        self.scheme = "ws"
        self.scope: Dict[str, Any] = {}
        self._reader: Optional[HTTPReader] = HTTPReader("request")
        self._early = b""  # bytes after the request head, before the application accepted
        self._accepted: Optional[Accepted] = None  # the 101 to send if the application accepts
        self._connect_delivered = False
        self._closed_by_app = False
        self._disconnect: Optional[Message] = None  # what receive() answers once messages run out
        self._http_response: Optional[Tuple[int, Headers, bytes]] = None
        self._response_sent = False  # an HTTP response (refusal) went out instead of a 101
        self._ping_sent_at = 0.0

    # uvicorn's side: the handoff, bookkeeping and shutdown --------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connections.add(self)  # type: ignore[arg-type]
        self.server = get_local_addr(transport)  # type: ignore[arg-type]
        self.client = get_remote_addr(transport)  # type: ignore[arg-type]
        self.scheme = "wss" if is_ssl(transport) else "ws"  # type: ignore[arg-type]
        self._trace("WebSocket connection made")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        self.connections.discard(self)
        self._trace("WebSocket connection lost")
        if exc is None and self.transport is not None:
            self.transport.close()

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 (a 500 before the application accepted)."""
        transport = self.transport
        if transport is None:
            return
        self._cancel_timer()
        protocol = self.protocol
        if protocol is None:
            self._send_500()
        elif protocol.close_sent is None and protocol.state is _OPEN:
            self._set_disconnect(_disconnect(CloseCode.SERVICE_RESTART))
            protocol.send_close(CloseCode.SERVICE_RESTART)
            for buffer in protocol.buffers_to_send():
                transport.write(buffer)
        transport.close()

    def handshake_data(self, data: bytes) -> None:
        reader = self._reader
        if reader is None:  # the application is deciding: keep what comes early
            self._early += data
            return
        try:
            request = reader.feed(data)
        except InvalidRequest as error:
            self._reader = None
            self._refuse(reject(error.status, error.message, error.headers))
            return
        if request is None:
            return
        assert isinstance(request, Request)
        self._reader = None
        self._early = reader.leftover
        self.request = request
        try:
            self._accepted = accept(request, compression=self._deflate)
        except InvalidRequest as error:
            self.logger.info(
                '%s - "WebSocket %s" %d', self._client_text(), request.path, error.status
            )
            self._refuse(reject(error.status, error.message, error.headers))
            return
        self._pause_reading()  # frames wait in TCP until the application accepts
        self.scope = self._make_scope(request)
        # The scope has what the application may read of it: an idle
        # connection keeps one copy of the headers, not two.
        self.request = None
        assert self._loop is not None
        task = self._loop.create_task(self._run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _make_scope(self, request: Request) -> Dict[str, Any]:
        raw_path, _, query = request.path.partition("?")
        headers = request.headers
        subprotocols: List[str] = []
        for value in headers.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend(token.strip() for token in value.split(",") if token.strip())
        return {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path),
            "raw_path": self.root_path.encode("ascii") + raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ],
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }

    # The application ------------------------------------------------------------------

    async def _run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.asgi_receive, self.asgi_send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            if self._http_response is not None:
                self._finish_response()
            elif self.protocol is None:
                self._send_500()
            else:
                self._close_after_failure()
        else:
            if self._http_response is not None:
                self._finish_response()  # the body never came: an empty one
            elif self.protocol is None and not self._response_sent:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self._close_held:
            self._release_held_close()  # the peer closed: our reply goes out first
        if not self._closing_started and self.transport is not None:
            # The application is gone without closing: so is the connection.
            self.transport.close()

    async def asgi_receive(self) -> Message:
        """The ASGI ``receive`` callable."""
        if not self._connect_delivered:
            self._connect_delivered = True
            return {"type": "websocket.connect"}
        messages = self._messages
        if messages is None:  # refused, or not accepted yet: only the end can come
            if self._disconnect is None:
                assert self._lost is not None
                await asyncio.shield(self._lost)
            return self._disconnect_message()
        while True:
            message = messages.take()
            if message is not None:
                if type(message) is str:
                    return {"type": "websocket.receive", "text": message}
                return {"type": "websocket.receive", "bytes": message}
            if self._close_held:
                self._release_held_close()  # the application is done with what came first
            if messages.closed or self._disconnect is not None:
                return self._disconnect_message()
            await messages.wait()

    async def asgi_send(self, message: Message) -> None:
        """The ASGI ``send`` callable."""
        if self._writing_paused:
            await self._wait_writable()
        if self._lost is not None and self._lost.done():
            raise ClientDisconnected()
        kind = message["type"]
        protocol = self.protocol
        if self._http_response is not None:
            self._send_response_body(message)
        elif protocol is None:
            if self._response_sent:
                raise RuntimeError(_AFTER_CLOSE.format(kind))
            self._handshake_message(message)
        elif self._closed_by_app:
            raise RuntimeError(_AFTER_CLOSE.format(kind))
        elif kind == "websocket.send":
            data = message.get("bytes")
            try:
                if data is not None:
                    protocol.send_binary(data)
                else:
                    text = message.get("text")
                    if text is None:
                        raise RuntimeError("a 'websocket.send' message needs 'bytes' or 'text'")
                    protocol.send_text(text)
            except ConnectionClosed:
                raise ClientDisconnected() from None
            self._flush()
            if self._writing_paused:
                await self._wait_writable()
        elif kind == "websocket.close":
            code = message.get("code", CloseCode.NORMAL_CLOSURE)
            reason = message.get("reason") or ""
            if protocol.state is not _OPEN or self.transport_closed:
                raise ClientDisconnected()
            self._closed_by_app = True
            self._set_disconnect(_disconnect(code, reason))
            protocol.send_close(code, reason)
            self._flush()
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
            )

    def _handshake_message(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self.logger.info('%s - "WebSocket %s" 403', self._client_text(), self._path_text())
            self._set_disconnect(_disconnect(CloseCode.ABNORMAL_CLOSURE))
            self._refuse(reject(403, "Forbidden"))
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self.logger.info(
                '%s - "WebSocket %s" %d', self._client_text(), self._path_text(), status
            )
            headers = Headers(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", [])
            )
            self._http_response = (status, headers, b"")
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'."
            )

    def _accept(self, message: Message) -> None:
        assert self._accepted is not None and self.transport is not None
        response, extension = self._accepted.response, self._accepted.deflate
        self.logger.info('%s - "WebSocket %s" [accepted]', self._client_text(), self._path_text())
        headers = response.headers
        for name, value in (*self.default_headers, *message.get("headers", ())):
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.add("Sec-WebSocket-Protocol", subprotocol)
            self.subprotocol = subprotocol
        if self.transport.is_closing():
            return
        protocol = Connection(
            Role.SERVER, max_message_size=self.max_size, max_fragments=DEFAULT_MAX_FRAGMENTS
        )
        if extension is not None:
            protocol.enable_deflate(extension)
        self.transport.write(response.serialize())
        self._accepted = None
        early, self._early = self._early, b""
        self.open(protocol, early)
        self._resume_reading()

    def _send_response_body(self, message: Message) -> None:
        assert self._http_response is not None
        kind = message["type"]
        if kind != "websocket.http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'."
            )
        status, headers, body = self._http_response
        self._http_response = (status, headers, body + message.get("body", b""))
        if not message.get("more_body", False):
            self._finish_response()

    def _finish_response(self) -> None:
        """Send the response the application started, with the body it sent so far."""
        assert self._http_response is not None
        status, headers, body = self._http_response
        self._http_response = None
        for name, value in (
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "text/plain; charset=utf-8"),
        ):
            if name not in headers:
                headers.add(name, value)
        self._set_disconnect(_disconnect(CloseCode.ABNORMAL_CLOSURE))
        self._refuse(Response(status, headers, body, _reason_phrase(status)))

    # Answers that are not a WebSocket ---------------------------------------------------

    def _refuse(self, response: Response) -> None:
        transport = self.transport
        assert transport is not None
        self._response_sent = True
        self.response = response
        if not transport.is_closing():
            transport.write(response.serialize())
            transport.close()

    def _send_500(self) -> None:
        if self._response_sent or self.transport is None:
            return
        body = b"Internal Server Error"
        headers = Headers(
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
        )
        self._refuse(Response(500, headers, body))

    def _close_after_failure(self) -> None:
        protocol = self.protocol
        assert protocol is not None
        if protocol.state is _OPEN and protocol.close_sent is None and not self.transport_closed:
            protocol.send_close(CloseCode.INTERNAL_ERROR, "")
            self._flush()

    # Ending -----------------------------------------------------------------------------

    def _receive(self, data: Any) -> None:
        super()._receive(data)
        protocol = self.protocol
        if protocol is not None and protocol.state is not _OPEN:
            messages = self._messages
            if (
                messages is not None
                and not messages.closed
                and (protocol.close_received is not None or protocol.failure is not None)
            ):
                # The peer closed or broke the protocol: after what is queued,
                # receive() answers websocket.disconnect, without waiting for TCP.
                messages.close()

    def _set_disconnect(self, message: Message) -> None:
        self._disconnect = message
        if self._messages is not None:
            self._messages.close()  # wakes a receive() that waits; what is queued stays

    def _disconnect_message(self) -> Message:
        if self._disconnect is not None:
            return self._disconnect
        protocol = self.protocol
        if protocol is None:
            return _disconnect(CloseCode.ABNORMAL_CLOSURE)
        if protocol.failure is not None and protocol.close_sent is not None:
            sent, reason = protocol.close_sent
            return _disconnect(CloseCode.NO_STATUS_RCVD if sent is None else sent, reason)
        code = protocol.close_code
        if code is None or code == CloseCode.ABNORMAL_CLOSURE:
            return _disconnect(CloseCode.ABNORMAL_CLOSURE)
        return _disconnect(code, protocol.close_reason)

    async def _wait_writable(self) -> None:
        try:
            await self._drain()
        except ConnectionClosed:
            raise ClientDisconnected() from None

    def _shut_write(self) -> None:
        # Both close frames are out (or the connection failed): uvicorn's
        # implementations close the transport, which sends what it holds, then FIN.
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _abort(self) -> None:
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abort", None)  # test doubles may lack it
            (abort or transport.close)()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _keepalive(self) -> None:
        self._ping_sent_at = time.monotonic()
        super()._keepalive()

    # What uvicorn's own implementations expose, for tools and tests that read it -------

    @property
    def ping_sent_at(self) -> float:
        """When the last keepalive ping went out (``time.monotonic()``; 0.0 before the first)."""
        return self._ping_sent_at

    @property
    def ping_timer(self) -> Optional[asyncio.TimerHandle]:
        """The pending keepalive deadline, if any."""
        return None if self._closing_started else self._timer

    @property
    def close_timer(self) -> Optional[asyncio.TimerHandle]:
        """The deadline for the peer's close reply, while we wait for it."""
        protocol = self.protocol
        if not self._closing_started or protocol is None or protocol.state is _CLOSED:
            return None
        if self._lost is not None and self._lost.done():
            return None
        return self._timer

    # Logging ----------------------------------------------------------------------------

    def _client_text(self) -> str:
        return get_client_addr({"client": self.client})  # type: ignore[arg-type]

    def _path_text(self) -> str:
        return get_path_with_query_string(self.scope)  # type: ignore[arg-type]

    def _trace(self, text: str) -> None:
        if self.logger.level <= TRACE_LOG_LEVEL:
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%s%s", prefix, text)
