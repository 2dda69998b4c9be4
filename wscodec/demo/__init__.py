"""The live demo: a chat room served by wscodec's asyncio server (or its threaded one).

::

    from wscodec.demo import serve_demo

    with serve_demo("127.0.0.1", 0) as server:  # port 0: any free port
        print(f"the chat is on http://127.0.0.1:{server.port}/")
        # server.serve_forever() would serve it until Ctrl-C; leaving the block stops it

One port serves both the page (plain HTTP on ``/``, ``/app.js`` and
``/style.css``) and the chat's WebSocket endpoint on ``/ws``.

Beyond the chat's own limits (:class:`ChatLimits`), the server admits at most
``max_connections`` (256) connections, and ``max_connections_per_address``
(16) from one IP address, counted from the moment each is accepted: more get
503 at once, so one address's idle sockets cannot fill every slot. A browser's
WebSocket is accepted only from a page of this server (:class:`OriginPolicy`).

Here: the chat (``chat.py``, ``limits.py``), the page (``static.py``, ``static/``),
the servers (``on_asyncio.py``, ``threaded.py``) and the origin policy.
May import the core, the flavours, ``serving`` and the brokers; only the CLI and the apps import it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import urllib.parse
from typing import Any, Dict, FrozenSet, Iterable, Optional, Tuple, Union

from ..asyncio.server import Server as AsyncioServer
from ..asyncio.server import serve as serve_asyncio
from ..brokers import Broker, LocalBroker
from ..handshake import Request, Response, reject
from ..serving import listen
from .chat import ChatApp, ChatLimits, FanoutBudget, Room
from .limits import AddressCounter
from .on_asyncio import AsyncChatApp, AsyncioDemoServer, LoopBroker, LoopOutbox, _DemoConnection
from .static import StaticFiles
from .threaded import PerAddressServer, ThreadedDemoServer

__all__ = [
    "WS_PATH",
    "Broker",
    "AsyncChatApp",
    "AsyncioDemoServer",
    "ChatApp",
    "ChatLimits",
    "DemoServer",
    "FanoutBudget",
    "LocalBroker",
    "OriginPolicy",
    "Room",
    "StaticFiles",
    "ThreadedDemoServer",
    "serve_demo",
]

#: Where the page connects its WebSocket.
WS_PATH = "/ws"

logger = logging.getLogger("wscodec.demo")

#: What :func:`serve_demo` returns: the same interface on either server.
DemoServer = Union[AsyncioDemoServer, ThreadedDemoServer]


_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARDS = ("", "0.0.0.0", "::")

Site = Tuple[str, int]  # (host, port) as an Origin names them: lower case, IPv6 unbracketed


def _site(origin: str) -> Optional[Tuple[str, Site]]:
    """``origin``'s scheme and (host, port), or None if it is not an http(s) origin."""
    try:
        parts = urllib.parse.urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return scheme, (parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


class OriginPolicy:
    """Which pages' scripts may open the chat's WebSocket.

    Browsers send ``Origin`` with every WebSocket handshake; other pages'
    scripts must not join the chat in their visitor's name. Allowed: no
    ``Origin`` at all (not a browser: command-line clients, tests), and
    ``http://`` or ``https://`` origins naming the host and port the server
    listens on, or one of ``extra`` (full origins such as
    ``https://chat.example.com``, for a server behind a proxy).

    The ``Host`` header is not trusted: under DNS rebinding an attacker's name
    resolves to this server, and the browser sends that name as both ``Host``
    and ``Origin``. The served host is what the server was told to listen on:
    an address or name, with the loopback names when it is a loopback one.
    Behind a wildcard (``0.0.0.0``, ``::``, None) it is the address the
    connection arrived on, the loopback names for loopback connections, and
    this machine's host names; any other name needs ``extra``.
    """

    def __init__(self, host: Optional[str], port: int, extra: Iterable[str] = ()) -> None:
        self.port = port
        self.wildcard = (host or "") in _WILDCARDS
        names = {(host or "").strip("[]").lower()} - {""}
        if self.wildcard:
            names = {socket.gethostname().lower(), socket.getfqdn().lower()}
        if names & set(_LOOPBACK_NAMES) or any(_is_loopback(name) for name in names):
            names.update(_LOOPBACK_NAMES)
        self.names: FrozenSet[str] = frozenset(names)
        self.extra: FrozenSet[Tuple[str, Site]] = frozenset(
            site for site in map(_site, extra) if site is not None
        )
        unusable = [origin for origin in extra if _site(origin) is None]
        if unusable:
            raise ValueError(f"not http(s) origins: {unusable}")

    def allows(self, origin: Optional[str], local_address: Any = None) -> bool:
        """Whether a handshake with this ``Origin`` (None: absent) may proceed;
        ``local_address`` is the address the connection arrived on."""
        if origin is None:
            return True
        site = _site(origin)
        if site is None:  # "null" (a file, a sandbox), or not http(s)
            return False
        if site in self.extra:
            return True
        host, port = site[1]
        if port != self.port:
            return False
        if host in self.names:
            return True
        if self.wildcard and local_address:
            arrived = str(local_address[0]).lower()
            if arrived.startswith("::ffff:"):
                arrived = arrived[7:]
            return host == arrived or (_is_loopback(arrived) and host in _LOOPBACK_NAMES)
        return False


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


def serve_demo(
    host: Optional[str] = "127.0.0.1",
    port: int = 8765,
    *,
    server: str = "asyncio",
    limits: Optional[ChatLimits] = None,
    broker: Optional[Broker] = None,
    stats_interval: float = 1.0,
    allowed_origins: Iterable[str] = (),
    max_connections_per_address: Optional[int] = 16,
    sock: Optional[socket.socket] = None,
    backlog: int = 128,
    reuse_port: bool = False,
    **options: Any,
) -> DemoServer:
    """Listen on ``host:port`` and serve the chat page and its WebSocket endpoint.

    ``server`` is ``"asyncio"`` (the default: one event loop in a thread,
    for thousands of members) or ``"threaded"`` (a thread per connection).
    Either way the result is served already, and its ``serve_forever()`` and
    ``shutdown()`` may be called from any thread.

    ``limits`` bound what each connection may do and what may wait to be sent
    to it (:class:`ChatLimits`); ``broker`` carries the room's events
    (:class:`LocalBroker`, in this process, by default). A browser's
    WebSocket must come from a page of ``host:port`` or one of
    ``allowed_origins`` (403 otherwise; :class:`OriginPolicy`). At most
    ``max_connections`` (default 256) connections are served, and
    ``max_connections_per_address`` (default 16, None for no limit) from one
    IP address; others get 503. ``sock``, ``backlog`` and ``reuse_port`` are
    as for :func:`wscodec.serve`; other ``options`` go to the server
    (:func:`wscodec.asyncio.serve` or :func:`wscodec.serve`).
    """
    if server not in ("asyncio", "threaded"):
        raise ValueError(f"server must be 'asyncio' or 'threaded', not {server!r}")
    limits = limits or ChatLimits()
    options.setdefault("max_size", limits.max_message_bytes)
    options.setdefault("max_connections", 256)
    options.setdefault("logger", logging.getLogger("wscodec.server"))
    addresses = AddressCounter(max_connections_per_address)
    owned = sock is None
    if sock is None:
        sock = listen(host, port, backlog=backlog, reuse_port=reuse_port)
    try:
        bound_host, bound_port = sock.getsockname()[:2]
        policy = OriginPolicy(host if owned else bound_host, bound_port, allowed_origins)
        static = StaticFiles()

        def process_request(connection: Any, request: Request) -> Optional[Response]:
            if request.path.split("?", 1)[0] != WS_PATH:
                return static.response(request)
            if not policy.allows(request.headers.get("Origin"), connection.local_address):
                logger.info("refusing a WebSocket from origin %s", request.headers.get("Origin"))
                return reject(403, "cross-origin WebSocket connections are not allowed")
            return None

        broker = broker or LocalBroker()
        if server == "asyncio":
            return _serve_on_asyncio(
                sock, broker, limits, stats_interval, addresses, process_request, backlog, options
            )
        room = Room(broker, history=limits.history, limits=limits)
        app = ChatApp(room, limits, stats_interval=stats_interval)
        threaded = PerAddressServer(
            app.handle, sock, process_request=process_request, addresses=addresses, **options
        )
    except BaseException:
        if owned:
            sock.close()
        raise
    app.start()
    return ThreadedDemoServer(threaded, app)


def _serve_on_asyncio(
    sock: socket.socket,
    broker: Broker,
    limits: ChatLimits,
    stats_interval: float,
    addresses: AddressCounter,
    process_request: Any,
    backlog: int,
    options: Dict[str, Any],
) -> AsyncioDemoServer:
    async def setup() -> Tuple[AsyncioServer, AsyncChatApp]:
        loop = asyncio.get_running_loop()
        room = Room(
            LoopBroker(broker, loop), history=limits.history, limits=limits, outbox=LoopOutbox
        )
        app = AsyncChatApp(room, limits, stats_interval=stats_interval)
        try:
            served = await serve_asyncio(
                app.handle,
                sock=sock,
                process_request=process_request,
                create_connection=lambda server: _DemoConnection(server, addresses),
                backlog=backlog,
                **options,
            )
        except BaseException:
            room.close()
            raise
        return served, app

    return AsyncioDemoServer(setup, options.get("close_timeout", 10.0))
