"""The server side of ``python -m benchmarks connections``: one echo server per process.

    python -m benchmarks.connections.server KIND off|on [--trace]

Prints ``PORT n``, then answers one command a line on stdin with one JSON
line: ``measure`` (RSS, traced heap, threads, connections held),
``broadcast SIZE COUNT`` (COUNT binary messages of SIZE bytes to every
connection, the way the library offers: its broadcast function where it has
one, a loop of sends otherwise), ``stop``. Every server echoes binary
messages and answers pings; keepalive pings are off and nothing limits the
number of connections.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

from .limits import raise_nofile, rss, thread_count

ASYNCIO_KINDS = ("wscodec-asyncio", "websockets", "aiohttp", "picows")
THREAD_KINDS = ("wscodec-events", "wscodec-threaded")
KINDS = ("wscodec-events", "wscodec-asyncio", "websockets", "aiohttp", "picows", "wscodec-threaded")
#: Servers that cannot negotiate permessage-deflate.
NO_DEFLATE = ("picows",)


def _report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _measure(trace: bool, held: Callable[[], int]) -> None:
    import tracemalloc

    traced = tracemalloc.get_traced_memory()[0] if trace else 0
    _report(rss=rss(), traced=traced, threads=thread_count(), held=held())


# Servers that run in threads: the event-driven one and the threaded one -------------


def _serve_in_thread(kind: str, compress: bool, trace: bool) -> int:
    import wscodec
    from wscodec import EventHandler, serve, serve_events
    from wscodec.events import broadcast as events_broadcast

    compression = "deflate" if compress else None
    options: Dict[str, Any] = dict(
        compression=compression, ping_interval=None, max_connections=None, backlog=4096
    )
    server: Any
    if kind == "wscodec-events":

        class Echo(EventHandler):
            def on_message(self, connection: Any, message: Any) -> None:
                connection.send(message)

        server = serve_events(Echo, "127.0.0.1", 0, **options)
        send_all: Callable[[List[Any], bytes], int] = events_broadcast
    else:

        def echo(connection: Any) -> None:
            for message in connection:
                connection.send(message)

        server = serve(echo, "127.0.0.1", 0, **options)
        send_all = wscodec.broadcast
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _report_port(server.socket.getsockname()[1])
    for line in sys.stdin:
        words = line.split()
        if words[0] == "measure":
            _measure(trace, lambda: len(server.connections))
        elif words[0] == "broadcast":
            size, count = int(words[1]), int(words[2])
            members = server.connections
            started = time.monotonic()
            sent = sum(send_all(members, _message(size, i)) for i in range(count))
            _report(started=started, returned=time.monotonic(), sent=sent)
        else:
            break
    server.shutdown()
    return 0


def _message(size: int, index: int) -> bytes:
    return index.to_bytes(4, "big") + b"x" * (size - 4)


def _report_port(port: int) -> None:
    print(f"PORT {port}", flush=True)


# asyncio servers, on uvloop ------------------------------------------------------


async def _serve_asyncio(kind: str, compress: bool, trace: bool) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    members: Set[Any] = set()
    tasks: Set[Any] = set()  # the broadcasts under way (the loop keeps weak references)

    async def echo(connection: Any) -> None:
        async for message in connection:
            await connection.send(message)

    send_all: Callable[[bytes], Any]
    if kind in ("wscodec-asyncio", "websockets"):
        if kind == "wscodec-asyncio":
            from wscodec.asyncio import broadcast, serve
        else:
            from websockets.asyncio.server import broadcast, serve  # type: ignore[no-redef]
        options: Dict[str, Any] = {"ping_interval": None, "max_size": 2**20}
        if not compress:
            options["compression"] = None
        server: Any = await serve(echo, "127.0.0.1", 0, backlog=4096, **options)
        port = next(iter(server.sockets)).getsockname()[1]
        held: Callable[[], int] = lambda: len(server.connections)  # noqa: E731

        def send_all(message: bytes) -> Any:
            broadcast(server.connections, message)

    elif kind == "aiohttp":
        from aiohttp import WSMsgType, web

        async def handler(request: Any) -> Any:
            connection = web.WebSocketResponse(compress=compress, autoping=True)
            await connection.prepare(request)
            members.add(connection)
            try:
                async for message in connection:
                    if message.type is WSMsgType.BINARY:
                        await connection.send_bytes(message.data)
            finally:
                members.discard(connection)
            return connection

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        held = lambda: len(members)  # noqa: E731

        async def send_all(message: bytes) -> None:  # aiohttp has no broadcast: a loop of sends
            for connection in list(members):
                await connection.send_bytes(message)

    else:
        from picows import WSListener, WSMsgType, ws_create_server

        class Echo(WSListener):  # type: ignore[misc]
            def on_ws_connected(self, transport: Any) -> None:
                members.add(transport)

            def on_ws_disconnected(self, transport: Any) -> None:
                members.discard(transport)

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()
                elif frame.msg_type == WSMsgType.PING:
                    transport.send_pong(frame.get_payload_as_bytes())
                elif frame.msg_type == WSMsgType.BINARY:
                    transport.send(WSMsgType.BINARY, frame.get_payload_as_bytes())

        server = await ws_create_server(lambda request: Echo(), "127.0.0.1", 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]
        held = lambda: len(members)  # noqa: E731

        def send_all(message: bytes) -> Any:  # picows has no broadcast: a loop of sends
            for transport in list(members):
                transport.send(WSMsgType.BINARY, message)

    async def broadcast_command(size: int, count: int) -> None:
        sent = held()
        started = time.monotonic()
        for index in range(count):
            result = send_all(_message(size, index))
            if result is not None:
                await result
        _report(started=started, returned=time.monotonic(), sent=sent * count)

    def command() -> None:
        words = sys.stdin.readline().split()
        if words and words[0] == "measure":
            _measure(trace, held)
        elif words and words[0] == "broadcast":
            tasks.add(loop.create_task(broadcast_command(int(words[1]), int(words[2]))))
        elif not stop.done():
            stop.set_result(None)

    loop.add_reader(sys.stdin.fileno(), command)
    _report_port(port)
    await stop


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connections.server")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("compression", choices=("off", "on"))
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    raise_nofile(int(os.environ.get("WSCODEC_BENCH_NOFILE", "0")) or 1024)
    if args.trace:
        import tracemalloc

        tracemalloc.start()
    compress = args.compression == "on"
    if args.kind in THREAD_KINDS:
        return _serve_in_thread(args.kind, compress, args.trace)
    import uvloop

    uvloop.run(_serve_asyncio(args.kind, compress, args.trace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
