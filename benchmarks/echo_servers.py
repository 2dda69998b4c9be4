"""Echo servers for ``python -m benchmarks server``, one per process.

    python -m benchmarks.echo_servers KIND [--lifetime SECONDS]

Starts the echo server KIND on a free port of 127.0.0.1, prints ``PORT <n>``
on stdout once it listens, and serves until its standard input closes (the
parent went away) or ``--lifetime`` seconds have passed, whichever comes
first. Every server echoes each message as it came (binary as binary), with
no size limit, no keepalive pings and no permessage-deflate.

``wscodec-python`` expects ``WSCODEC_NO_EXTENSIONS=1`` in its environment
(the parent sets it). ``wscodec-gil`` is the compiled backend with its
kernels never releasing the GIL, to measure what releasing it is worth.
``wscodec-events`` is the event-driven server (``wscodec.serve_events``, one
selector loop) with the compiled backend; ``wscodec-asyncio`` is
:mod:`wscodec.asyncio`'s server. ``picows`` is picows' low-level listener
(callbacks, no tasks), ``picows-websockets`` its compiled copy of the
websockets asyncio API. ``uvicorn-IMPL`` and ``starlette-IMPL`` are a bare
ASGI echo app and a Starlette endpoint under uvicorn with ``--ws IMPL``
(``benchmarks/asgi_apps.py``). Every asyncio server runs on uvloop when it is
installed; the others named ``wscodec`` are the threaded server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from typing import Any, Callable, Dict, List, Optional

from .asgi_apps import KINDS as ASGI_KINDS

KINDS = (
    "wscodec",
    "wscodec-events",
    "wscodec-python",
    "wscodec-gil",
    "wscodec-nobatch",
    "websockets-sync",
    "websockets-asyncio",
    "wscodec-asyncio",
    "aiohttp",
    "picows",
    "picows-websockets",
    *ASGI_KINDS,
)


def announce(port: int) -> None:
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


def wait_for_stop(lifetime: float) -> None:
    """Return when stdin reaches EOF or after ``lifetime`` seconds."""
    done = threading.Event()

    def watch() -> None:
        try:
            sys.stdin.buffer.read()
        except (OSError, ValueError):
            pass
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    done.wait(lifetime)


async def async_wait_for_stop(lifetime: float) -> None:
    await asyncio.get_running_loop().run_in_executor(None, wait_for_stop, lifetime)


def serve_wscodec(kind: str, lifetime: float) -> None:
    import wscodec
    from wscodec import _backend

    expected = "python" if kind == "wscodec-python" else "cython"
    if wscodec.BACKEND != expected:
        raise SystemExit(f"wscodec backend is {wscodec.BACKEND}, not {expected}")
    if kind == "wscodec-gil":
        assert _backend.compiled_codec is not None
        _backend.compiled_codec._set_nogil_thresholds(mask=1 << 62, utf8=1 << 62)

    def echo(connection: Any) -> None:
        for message in connection:
            connection.send(message)

    server = wscodec.serve(
        echo,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=None,
        max_size=None,
        batch_scheduling=kind != "wscodec-nobatch",
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    announce(server.port)
    wait_for_stop(lifetime)
    server.shutdown()


def serve_wscodec_events(kind: str, lifetime: float) -> None:
    import wscodec

    if wscodec.BACKEND != "cython":
        raise SystemExit(f"wscodec backend is {wscodec.BACKEND}, not cython")

    class Echo(wscodec.EventHandler):
        def on_message(self, connection: Any, message: Any) -> None:
            connection.send(message)

    server = wscodec.serve_events(Echo, "127.0.0.1", 0, compression=None, max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    announce(server.port)
    wait_for_stop(lifetime)
    server.shutdown()


def serve_websockets_sync(kind: str, lifetime: float) -> None:
    from websockets.sync.server import serve

    def echo(connection: Any) -> None:
        for message in connection:
            connection.send(message)

    server = serve(
        echo,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=None,
        max_size=None,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    announce(server.socket.getsockname()[1])
    wait_for_stop(lifetime)
    server.shutdown()


async def serve_websockets_asyncio(kind: str, lifetime: float) -> None:
    from websockets.asyncio.server import serve

    async def echo(connection: Any) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(
        echo,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=None,
        max_size=None,
    ) as server:
        announce(next(iter(server.sockets)).getsockname()[1])
        await async_wait_for_stop(lifetime)


async def serve_websockets_api(kind: str, lifetime: float) -> None:
    """wscodec.asyncio or picows.websockets: the websockets asyncio API."""
    if kind == "wscodec-asyncio":
        from wscodec.asyncio import serve
    else:
        from picows.websockets import serve  # type: ignore[no-redef]

    async def echo(connection: Any) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(
        echo, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None
    ) as server:
        announce(next(iter(server.sockets)).getsockname()[1])
        await async_wait_for_stop(lifetime)


async def serve_aiohttp(kind: str, lifetime: float) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: Any) -> Any:
        connection = web.WebSocketResponse(compress=False, max_msg_size=0)
        await connection.prepare(request)
        async for message in connection:
            if message.type is WSMsgType.BINARY:
                await connection.send_bytes(message.data)
            elif message.type is WSMsgType.TEXT:
                await connection.send_str(message.data)
        return connection

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    announce(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await async_wait_for_stop(lifetime)
    await runner.cleanup()


async def serve_picows(kind: str, lifetime: float) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif kind in (WSMsgType.BINARY, WSMsgType.TEXT, WSMsgType.CONTINUATION):
                transport.send(kind, frame.get_payload_as_memoryview(), frame.fin)

    server = await ws_create_server(lambda request: Echo(), "127.0.0.1", 0, max_frame_size=1 << 30)
    announce(server.sockets[0].getsockname()[1])
    await async_wait_for_stop(lifetime)
    server.close()


async def serve_asgi(kind: str, lifetime: float) -> None:
    from .asgi_apps import start

    server, port = await start(kind)
    announce(port)
    await async_wait_for_stop(lifetime)
    server.should_exit = True
    await server.task


SERVERS: Dict[str, Callable[[bool, float], Any]] = {
    "wscodec": serve_wscodec,
    "wscodec-events": serve_wscodec_events,
    "wscodec-python": serve_wscodec,
    "wscodec-gil": serve_wscodec,
    "wscodec-nobatch": serve_wscodec,
    "websockets-sync": serve_websockets_sync,
    "websockets-asyncio": serve_websockets_asyncio,
    "aiohttp": serve_aiohttp,
    "picows": serve_picows,
    "wscodec-asyncio": serve_websockets_api,
    "picows-websockets": serve_websockets_api,
    **{kind: serve_asgi for kind in ASGI_KINDS},
}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo_servers")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--lifetime", type=float, default=3600.0)
    args = parser.parse_args(argv)
    result = SERVERS[args.kind](args.kind, args.lifetime)
    if asyncio.iscoroutine(result):
        try:
            import uvloop  # every asyncio server runs on uvloop when it is installed
        except ImportError:
            asyncio.run(result)
        else:
            uvloop.run(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
