"""The live demo: a chat room served by wscodec's threaded server.

::

    from wscodec.demo import serve_demo

    with serve_demo("127.0.0.1", 8765) as server:
        server.serve_forever()

One port serves both the page (plain HTTP on ``/``, ``/app.js`` and
``/style.css``) and the chat's WebSocket endpoint on ``/ws``.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, List, Optional

from ..brokers import Broker, LocalBroker
from ..handshake import Request, Response, reject
from ..server import Server, ServerConnection, serve
from .chat import ChatApp, ChatLimits, Room
from .static import StaticFiles

__all__ = [
    "WS_PATH",
    "Broker",
    "ChatApp",
    "ChatLimits",
    "DemoServer",
    "LocalBroker",
    "Room",
    "StaticFiles",
    "serve_demo",
]

#: Where the page connects its WebSocket.
WS_PATH = "/ws"

logger = logging.getLogger("wscodec.demo")


class DemoServer:
    """A wscodec :class:`~wscodec.server.Server` running the chat, and the chat itself."""

    def __init__(self, server: Server, app: ChatApp) -> None:
        self.server = server
        self.app = app

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def connections(self) -> List[ServerConnection]:
        return self.server.connections

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`."""
        self.server.serve_forever()

    def shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Close every connection with ``code`` and stop."""
        self.app.stop()
        self.server.shutdown(code, reason)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def same_origin(request: Request) -> bool:
    """Whether the request comes from a page of this server (or from no page at all).

    Browsers send ``Origin`` with every WebSocket handshake; other pages'
    scripts must not join the chat in their visitor's name.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: command-line clients, tests
    host = request.headers.get("Host") or ""
    parts = urllib.parse.urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def serve_demo(
    host: Optional[str] = "127.0.0.1",
    port: int = 8765,
    *,
    limits: Optional[ChatLimits] = None,
    broker: Optional[Broker] = None,
    stats_interval: float = 1.0,
    **options: Any,
) -> DemoServer:
    """Listen on ``host:port`` and serve the chat page and its WebSocket endpoint.

    ``limits`` bound what each connection may do (:class:`ChatLimits`);
    ``broker`` carries the room's events (:class:`LocalBroker`, in this
    process, by default). Other ``options`` go to :func:`wscodec.serve`.
    """
    limits = limits or ChatLimits()
    room = Room(broker or LocalBroker(), history=limits.history)
    app = ChatApp(room, limits, stats_interval=stats_interval)
    static = StaticFiles()

    def process_request(connection: ServerConnection, request: Request) -> Optional[Response]:
        if request.path.split("?", 1)[0] != WS_PATH:
            return static.response(request)
        if not same_origin(request):
            logger.info("refusing a WebSocket from origin %s", request.headers.get("Origin"))
            return reject(403, "cross-origin WebSocket connections are not allowed")
        return None

    options.setdefault("max_size", limits.max_message_bytes)
    options.setdefault("max_connections", 256)
    options.setdefault("logger", logging.getLogger("wscodec.server"))
    server = serve(app.handle, host, port, process_request=process_request, **options)
    app.start()
    return DemoServer(server, app)
