"""``python -m benchmarks memory``: what an open connection costs each asyncio server.

Two figures per server, compression off and with the library's default:

- **tracemalloc per connection**, measured as websockets' documentation does
  (``docs/topics/memory.rst``): the server process traces its allocations,
  20 clients connect and each does two round trips, and the traced memory
  that appeared is divided by 20;
- **RSS per idle connection** at scale: the growth of the server's resident
  memory once ``--idle`` (10,000) clients are connected and have done one
  round trip each, divided by their number (tracemalloc off).

Every server runs in a process of its own, on uvloop; the clients are raw
sockets driven by the sync codec in this process, so they cost the server
nothing but their connections.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import socket
import subprocess
import sys
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple

from wscodec import FrameParser, Opcode, encode_frame

SERVERS = ("wscodec-asyncio", "websockets-asyncio", "picows-websockets", "aiohttp", "picows")
# The bare ASGI echo under uvicorn with each --ws (benchmarks/asgi_apps.py).
ASGI_SERVERS = ("uvicorn-wscodec", "uvicorn-websockets-sansio", "uvicorn-wsproto")
COMPRESSION = ("off", "default")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MESSAGE = b"x" * 64


# The server side (a child process) ------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _serve(kind: str, compression: str, trace: bool) -> None:
    import asyncio
    import tracemalloc

    compress = compression == "default"
    if trace:
        tracemalloc.start()
    stop = asyncio.get_running_loop().create_future()

    async def echo(connection: Any) -> None:
        async for message in connection:
            await connection.send(message)

    if kind in ASGI_SERVERS:
        from .asgi_apps import start

        _, port = await start(kind, compression=compress, backlog=4096)
    elif kind in ("wscodec-asyncio", "websockets-asyncio", "picows-websockets"):
        if kind == "wscodec-asyncio":
            from wscodec.asyncio import serve
        elif kind == "websockets-asyncio":
            from websockets.asyncio.server import serve  # type: ignore[no-redef]
        else:
            from picows.websockets import serve  # type: ignore[no-redef]
        options: Dict[str, Any] = {"ping_interval": None}
        if not compress:
            options["compression"] = None
        server = await serve(echo, "127.0.0.1", 0, **options)
        port = next(iter(server.sockets)).getsockname()[1]
    elif kind == "aiohttp":
        from aiohttp import WSMsgType, web

        async def handler(request: Any) -> Any:
            connection = web.WebSocketResponse(compress=compress)
            await connection.prepare(request)
            async for message in connection:
                if message.type is WSMsgType.BINARY:
                    await connection.send_bytes(message.data)
            return connection

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    else:
        from picows import WSListener, WSMsgType, ws_create_server

        class Echo(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()
                elif frame.msg_type == WSMsgType.BINARY:
                    transport.send(WSMsgType.BINARY, frame.get_payload_as_bytes())

        server = await ws_create_server(lambda request: Echo(), "127.0.0.1", 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]

    loop = asyncio.get_running_loop()

    def command() -> None:
        line = sys.stdin.readline().strip()
        if line == "measure":
            traced = tracemalloc.get_traced_memory()[0] if trace else 0
            print(json.dumps({"traced": traced, "rss": _rss()}), flush=True)
        elif not stop.done():
            stop.set_result(None)

    loop.add_reader(sys.stdin.fileno(), command)
    print(f"PORT {port}", flush=True)
    await stop


def serve_main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory --serve")
    parser.add_argument("kind", choices=SERVERS + ASGI_SERVERS)
    parser.add_argument("compression", choices=COMPRESSION)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(_serve(args.kind, args.compression, args.trace))
    return 0


# The client side -------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, compression: str, trace: bool) -> None:
        command = [sys.executable, "-m", "benchmarks.memory", "--serve", kind, compression]
        if trace:
            command.append("--trace")
        env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=_ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"{kind} did not start")
        self.port = int(line.split()[1])

    def measure(self) -> Dict[str, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("measure\n")
        self.process.stdin.flush()
        result: Dict[str, int] = json.loads(self.process.stdout.readline())
        return result

    def stop(self) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
            self.process.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def _handshake(port: int, compression: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    extension = (
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        if compression
        else ""
    )
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extension}\r\n"
    ).encode()


class Client:
    """A raw client: handshake, then binary round trips, compressed if agreed."""

    def __init__(self, port: int, compression: bool, message: bytes = _MESSAGE) -> None:
        self.message = message
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(_handshake(port, compression))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        head, _, self.leftover = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode())
        self.deflate = b"permessage-deflate" in head.lower()
        self.compressor = zlib.compressobj(wbits=-15) if self.deflate else None
        self.parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x40)

    def round_trip(self) -> None:
        if self.compressor is not None:
            payload = self.compressor.compress(self.message)
            payload += self.compressor.flush(zlib.Z_SYNC_FLUSH)
            frame = encode_frame(Opcode.BINARY, payload[:-4], mask=os.urandom(4), rsv1=True)
        else:
            frame = encode_frame(Opcode.BINARY, self.message, mask=os.urandom(4))
        self.sock.sendall(frame)
        frames = self.parser.feed(self.leftover)
        self.leftover = b""
        while not frames:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during a round trip")
            frames = self.parser.feed(chunk)

    def close(self) -> None:
        self.sock.close()


def per_connection_traced(kind: str, compression: str, count: int = 20) -> float:
    server = Server(kind, compression, trace=True)
    try:
        warm = Client(server.port, compression == "default")  # imports, first-use caches
        warm.round_trip()
        warm.round_trip()
        before = server.measure()["traced"]
        clients = [Client(server.port, compression == "default") for _ in range(count)]
        for client in clients:
            client.round_trip()
            client.round_trip()
        time.sleep(0.2)
        after = server.measure()["traced"]
        for client in [*clients, warm]:
            client.close()
        return (after - before) / count
    finally:
        server.stop()


def per_connection_rss(kind: str, compression: str, count: int) -> float:
    server = Server(kind, compression, trace=False)
    clients: List[Client] = []
    try:
        warm = Client(server.port, compression == "default")
        warm.round_trip()
        before = server.measure()["rss"]
        for index in range(count):
            client = Client(server.port, compression == "default")
            client.round_trip()
            clients.append(client)
            if (index + 1) % 2500 == 0:
                print(f"    {kind} {compression}: {index + 1} connections", flush=True)
        time.sleep(0.5)
        after = server.measure()["rss"]
        return (after - before) / count
    finally:
        for client in clients:
            client.close()
        server.stop()


def available() -> Tuple[List[str], Dict[str, str]]:
    import importlib.util

    kinds, notes = [], {}
    for kind in SERVERS + ASGI_SERVERS:
        module = {"websockets-asyncio": "websockets", "picows-websockets": "picows"}.get(
            kind, kind.split("-")[0]
        )
        if importlib.util.find_spec(module) is None:
            notes[kind] = "not installed"
        else:
            kinds.append(kind)
    return kinds, notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idle", type=int, default=10000, help="connections for the RSS figure")
    parser.add_argument("--servers", default=None, help="comma-separated, default: all")
    parser.add_argument("--json", default=None, help="write the results here too")


def run(args: argparse.Namespace) -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.idle + 100 > hard:
        print(f"--idle {args.idle} needs {args.idle + 100} descriptors; the limit is {hard}")
        return 2
    kinds, notes = available()
    if args.servers:
        kinds = [k for k in args.servers.split(",") if k in kinds]
    results: Dict[str, Dict[str, Dict[str, Optional[float]]]] = {}
    for kind in kinds:
        results[kind] = {}
        for compression in COMPRESSION:
            print(f"  {kind}, compression {compression}", flush=True)
            traced = per_connection_traced(kind, compression)
            rss = per_connection_rss(kind, compression, args.idle) if args.idle else None
            results[kind][compression] = {"traced": traced, "rss": rss}
    print()
    print("per connection (KiB): tracemalloc after 2 round trips (20 connections),")
    print(f"and RSS growth with {args.idle} idle connections")
    print()
    print("| server | compression off: traced | off: RSS | default: traced | default: RSS |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, by in results.items():
        cells = []
        for compression in COMPRESSION:
            for key in ("traced", "rss"):
                value = by[compression][key]
                cells.append("-" if value is None else f"{value / 1024:.1f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    for ours_kind, reference_kind in (
        ("wscodec-asyncio", "websockets-asyncio"),
        ("uvicorn-wscodec", "uvicorn-websockets-sansio"),
    ):
        reference, ours = results.get(reference_kind), results.get(ours_kind)
        if reference and ours:
            print()
            for compression in COMPRESSION:
                for key in ("traced", "rss"):
                    a, b = ours[compression][key], reference[compression][key]
                    if a is not None and b:
                        print(
                            f"{ours_kind} / {reference_kind}, {key}, "
                            f"compression {compression}: {a / b:.2f}x"
                        )
    for kind, why in notes.items():
        print(f"{kind}: {why}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return serve_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks memory", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
