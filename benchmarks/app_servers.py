"""Each adapted library's own echo server, one per process, for ``benchmarks adapters``.

    python -m benchmarks.app_servers LIB [--adapter] [--lifetime SECONDS]

Starts LIB's echo server on a free port of 127.0.0.1, prints ``PORT <n>`` once
it listens and serves until stdin closes or ``--lifetime`` passes (the
protocol of ``benchmarks/echo_servers.py``). With ``--adapter`` wscodec's
adapter for the library is installed first, before anything imports the
library, the way an application would do it at start-up.

Each server is written the way the library's README leads: websockets,
tornado, aiohttp, autobahn and uvicorn on asyncio (uvloop when installed),
ws4py on its wsgiref server with its own websocket manager, flask-sock on
werkzeug's threaded server, wsproto (sans-I/O) on blocking sockets with a
thread per connection. websocket-client has no server: its client is timed
against wscodec's event-driven server (compiled), which no adapter touches.
Every server echoes each binary message whole, with no size limit, no pings
and no permessage-deflate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
from typing import Any, Callable, Dict, Optional

from .asgi_apps import bare_echo
from .echo_servers import announce, async_wait_for_stop, wait_for_stop

#: Library name (as the benchmark names it) -> the wscodec adapter it needs.
ADAPTER_OF = {
    "websockets": "websockets",
    "wsproto": "wsproto",
    "websocket-client": "websocket_client",
    "tornado": "tornado",
    "aiohttp": "aiohttp",
    "autobahn": "autobahn",
    "ws4py": "ws4py",
    "uvicorn-wsproto": "wsproto",
    "flask-sock": "wsproto",
}
RECEIVE_BYTES = 65536  # what the sans-I/O loops read per recv() (wsproto's stack)
MAX_SIZE = 1 << 24


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


async def serve_websockets(lifetime: float) -> None:
    from websockets.asyncio.server import serve

    async def echo(connection: Any) -> None:
        async for message in connection:
            await connection.send(message)

    options = dict(compression=None, ping_interval=None, max_size=None)
    async with serve(echo, "127.0.0.1", 0, **options) as server:  # type: ignore[arg-type]
        announce(next(iter(server.sockets)).getsockname()[1])
        await async_wait_for_stop(lifetime)


def serve_wsproto(lifetime: float) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Message,
        Request,
        TextMessage,
    )

    def handle(sock: socket.socket) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        parts: list = []
        with sock:
            while True:
                data = sock.recv(RECEIVE_BYTES)
                if not data:
                    return
                ws.receive_data(data)
                out = []
                for event in ws.events():
                    if isinstance(event, Request):
                        out.append(ws.send(AcceptConnection()))
                    elif isinstance(event, (BytesMessage, TextMessage)):
                        parts.append(event.data)
                        if event.message_finished:
                            whole = parts[0] if len(parts) == 1 else type(parts[0])().join(parts)
                            parts = []
                            out.append(ws.send(Message(data=whole)))
                    elif isinstance(event, CloseConnection):
                        sock.sendall(ws.send(event.response()))
                        return
                if out:
                    sock.sendall(b"".join(out))

    listener = listening_socket()

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    announce(listener.getsockname()[1])
    wait_for_stop(lifetime)


def serve_wscodec_events(lifetime: float) -> None:
    import wscodec

    class Echo(wscodec.EventHandler):
        def on_message(self, connection: Any, message: Any) -> None:
            connection.send(message)

    server = wscodec.serve_events(Echo, "127.0.0.1", 0, compression=None, max_size=None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    announce(server.port)
    wait_for_stop(lifetime)
    server.shutdown()


async def serve_tornado(lifetime: float) -> None:
    import tornado.web
    import tornado.websocket

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message: Any) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

    app = tornado.web.Application([("/", Echo)], websocket_max_message_size=MAX_SIZE)
    server = app.listen(0, "127.0.0.1")
    announce(next(iter(server._sockets.values())).getsockname()[1])
    await async_wait_for_stop(lifetime)
    server.stop()


async def serve_aiohttp(lifetime: float) -> None:
    from .echo_servers import serve_aiohttp as serve

    await serve("aiohttp", lifetime)


async def serve_autobahn(lifetime: float) -> None:
    from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol

    class Echo(WebSocketServerProtocol):  # type: ignore[misc]
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(payload, isBinary)

    factory = WebSocketServerFactory()
    factory.protocol = Echo
    factory.setProtocolOptions(autoPingInterval=0, perMessageCompressionAccept=lambda _: None)
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    announce(server.sockets[0].getsockname()[1])
    await async_wait_for_stop(lifetime)
    server.close()


def serve_ws4py(lifetime: float) -> None:
    from wsgiref.simple_server import make_server

    from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
    from ws4py.server.wsgiutils import WebSocketWSGIApplication
    from ws4py.websocket import EchoWebSocket

    server = make_server(
        "127.0.0.1",
        0,
        server_class=WSGIServer,
        handler_class=WebSocketWSGIRequestHandler,
        app=WebSocketWSGIApplication(handler_cls=EchoWebSocket),
    )
    server.initialize_websockets_manager()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    announce(server.server_port)
    wait_for_stop(lifetime)
    server.server_close()


def serve_uvicorn(lifetime: float) -> None:
    import uvicorn

    config = uvicorn.Config(
        bare_echo,
        ws="wsproto",
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_max_size=MAX_SIZE,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    listener = listening_socket()
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    announce(listener.getsockname()[1])
    wait_for_stop(lifetime)
    server.should_exit = True


def serve_flask_sock(lifetime: float) -> None:
    from flask import Flask
    from flask_sock import Sock
    from werkzeug.serving import make_server

    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": None, "max_message_size": None}
    sock = Sock(app)

    @sock.route("/")
    def echo(ws: Any) -> None:
        while True:
            ws.send(ws.receive())

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    announce(server.server_port)
    wait_for_stop(lifetime)


SERVERS: Dict[str, Callable[[float], Any]] = {
    "websockets": serve_websockets,
    "wsproto": serve_wsproto,
    "websocket-client": serve_wscodec_events,
    "tornado": serve_tornado,
    "aiohttp": serve_aiohttp,
    "autobahn": serve_autobahn,
    "ws4py": serve_ws4py,
    "uvicorn-wsproto": serve_uvicorn,
    "flask-sock": serve_flask_sock,
}


def run_async(coroutine: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def block_modules() -> None:
    """Make the modules named in ``WSCODEC_BENCH_BLOCK`` (comma-separated) unimportable.

    ``benchmarks adapters`` blocks wsaccel by default: websocket-client masks
    with it when it imports, and none of the libraries installs it, so the
    libraries are timed as ``pip install LIB`` gives them.
    """
    for name in os.environ.get("WSCODEC_BENCH_BLOCK", "").split(","):
        if name.strip():
            sys.modules[name.strip()] = None  # type: ignore[assignment]


def install_adapter(library: str) -> None:
    """Install wscodec's adapter for ``library`` (before the library is used)."""
    from wscodec import integrations

    integrations.install(ADAPTER_OF[library])


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_servers")
    parser.add_argument("library", choices=sorted(SERVERS))
    parser.add_argument("--adapter", action="store_true", help="install wscodec's adapter first")
    parser.add_argument("--lifetime", type=float, default=3600.0)
    args = parser.parse_args(argv)
    block_modules()
    # websocket-client's server is wscodec's own: there is nothing to adapt on this side.
    if args.adapter and args.library != "websocket-client":
        install_adapter(args.library)
    result = SERVERS[args.library](args.lifetime)
    if asyncio.iscoroutine(result):
        run_async(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
