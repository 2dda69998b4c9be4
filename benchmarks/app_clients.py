"""Each adapted library's own echo client, for ``benchmarks adapters``.

    python -m benchmarks.app_clients LIB --port P --clients N --size BYTES --seconds S
        [--warmup W] [--adapter] [--server-pid PID]

Opens N connections with LIB's own client to ``ws://127.0.0.1:P/``; each sends
one binary message of BYTES bytes, waits for its echo and sends the next.
Round trips that complete inside the window of S seconds (after W seconds of
warm-up) are counted. Prints one JSON object with the same keys as
``benchmarks/loadgen.py``. With ``--adapter`` wscodec's adapter for LIB is
installed before the library is imported.

asyncio clients (websockets, tornado, aiohttp, autobahn) run one task per
connection on uvloop when it is installed; websocket-client and wsproto one
thread per connection on blocking sockets; ws4py its threaded client, which
answers each echo from its reader thread. The first echo of every connection
is compared with what was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from .app_servers import (
    ADAPTER_OF,
    MAX_SIZE,
    RECEIVE_BYTES,
    block_modules,
    install_adapter,
    run_async,
)
from .loadgen import machine_busy, proc_cpu, self_cpu


class Window:
    """The timed window, and the CPU used by this process and the server inside it."""

    def __init__(self, warmup: float, seconds: float, server_pid: int) -> None:
        self.warmup = warmup
        self.seconds = seconds
        self.begin()
        self.server_pid = server_pid
        self.counts: List[int] = []
        self.errors: List[BaseException] = []
        self._before: Optional[Tuple[float, Optional[float], Any]] = None
        self._after: Optional[Tuple[float, Optional[float], Any]] = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Open the window ``warmup`` seconds from now (once the connections are open)."""
        self.start = time.monotonic() + self.warmup
        self.end = self.start + self.seconds

    def snapshot(self) -> Tuple[float, Optional[float], Any]:
        return self_cpu(), proc_cpu(self.server_pid) if self.server_pid else None, machine_busy()

    def tick(self, now: float) -> None:
        """Take the CPU snapshots as the window opens and closes (any thread may call)."""
        if self._before is None and now >= self.start:
            with self._lock:
                if self._before is None:
                    self._before = self.snapshot()
        if self._after is None and now >= self.end:
            with self._lock:
                if self._after is None:
                    self._after = self.snapshot()

    def result(self, clients: int, size: int) -> Dict[str, Any]:
        if self.errors:
            raise self.errors[0]
        seconds = self.end - self.start
        before, after = self._before, self._after
        if before is None or after is None:
            raise RuntimeError("the clients stopped before the window closed")

        def used(index: int) -> Optional[float]:
            first, last = before[index], after[index]
            return None if first is None or last is None else (last - first) / seconds

        busy = None
        if before[2] is not None and after[2] is not None:
            busy = (after[2][0] - before[2][0]) / seconds
        total = sum(self.counts)
        return {
            "clients": clients,
            "size": size,
            "round_trips": total,
            "seconds": seconds,
            "round_trips_per_s": total / seconds,
            "server_cpu_cores": used(1),
            "loadgen_cpu_cores": used(0),
            "machine_busy_cores": busy,
        }


def check_echo(sent: bytes, got: Any) -> None:
    if bytes(got) != sent:
        raise ValueError(f"the echo is not the message sent ({len(got)} != {len(sent)} bytes)")


# -- asyncio clients: open(url) -> (send, recv, close) ------------------------------

Opened = Tuple[Callable[[bytes], Awaitable[Any]], Callable[[], Awaitable[Any]], Callable]


async def open_websockets(url: str) -> Opened:
    from websockets.asyncio.client import connect

    ws = await connect(url, compression=None, max_size=None, ping_interval=None)
    return ws.send, ws.recv, ws.close


async def open_tornado(url: str) -> Opened:
    import tornado.websocket

    ws = await tornado.websocket.websocket_connect(url, max_message_size=MAX_SIZE)

    async def close() -> None:
        ws.close()

    return (lambda data: ws.write_message(data, binary=True)), ws.read_message, close


async def open_aiohttp(url: str) -> Opened:
    import aiohttp

    session = aiohttp.ClientSession()
    ws = await session.ws_connect(url, max_msg_size=0, compress=0, autoping=False)

    async def receive() -> Any:
        return (await ws.receive()).data

    async def close() -> None:
        await ws.close()
        await session.close()

    return ws.send_bytes, receive, close


async def open_autobahn(url: str) -> Opened:
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    loop = asyncio.get_running_loop()
    opened: asyncio.Future = loop.create_future()

    class Client(WebSocketClientProtocol):  # type: ignore[misc]
        echo_waiter: Optional[asyncio.Future] = None

        def onOpen(self) -> None:
            opened.set_result(self)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            if self.echo_waiter is not None and not self.echo_waiter.done():
                self.echo_waiter.set_result(payload)

    factory = WebSocketClientFactory(url)
    factory.protocol = Client
    factory.setProtocolOptions(autoPingInterval=0)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    await loop.create_connection(factory, "127.0.0.1", port)
    client = await opened

    async def send(data: bytes) -> None:
        client.echo_waiter = loop.create_future()
        client.sendMessage(data, isBinary=True)

    async def recv() -> Any:
        return await client.echo_waiter

    async def close() -> None:
        client.sendClose()

    return send, recv, close


ASYNC_CLIENTS: Dict[str, Callable[[str], Awaitable[Opened]]] = {
    "websockets": open_websockets,
    "tornado": open_tornado,
    "aiohttp": open_aiohttp,
    "autobahn": open_autobahn,
}


async def run_async_clients(library: str, url: str, clients: int, payload: bytes, window: Window):
    connections = [await ASYNC_CLIENTS[library](url) for _ in range(clients)]
    window.counts = [0] * clients
    window.begin()

    async def drive(index: int, send: Any, recv: Any) -> None:
        check_echo(payload, await send_recv(send, recv))
        while True:
            await send(payload)
            await recv()
            now = time.monotonic()
            window.tick(now)
            if now >= window.end:
                return
            if now >= window.start:
                window.counts[index] += 1

    async def send_recv(send: Any, recv: Any) -> Any:
        await send(payload)
        return await recv()

    await asyncio.gather(*(drive(i, s, r) for i, (s, r, _) in enumerate(connections)))
    for _, _, close in connections:
        try:
            await asyncio.wait_for(close(), 2)
        except Exception:
            pass


# -- threaded clients ---------------------------------------------------------------


def open_websocket_client(url: str) -> Tuple[Callable[[bytes], Any], Callable[[], Any], Callable]:
    import websocket

    ws = websocket.create_connection(url)
    return ws.send_binary, ws.recv, ws.close


def open_wsproto(url: str) -> Tuple[Callable[[bytes], Any], Callable[[], Any], Callable]:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Message, Request

    port = int(url.rsplit(":", 1)[1].strip("/"))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=f"127.0.0.1:{port}", target="/")))
    accepted = False
    while not accepted:
        ws.receive_data(sock.recv(RECEIVE_BYTES))
        accepted = any(isinstance(e, AcceptConnection) for e in ws.events())

    def send(data: bytes) -> None:
        sock.sendall(ws.send(Message(data=data)))

    def recv() -> bytes:
        parts: List[bytes] = []
        while True:
            ws.receive_data(sock.recv(RECEIVE_BYTES))
            for event in ws.events():
                if isinstance(event, BytesMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        return parts[0] if len(parts) == 1 else b"".join(parts)

    return send, recv, sock.close


THREADED_CLIENTS = {"websocket-client": open_websocket_client, "wsproto": open_wsproto}


def run_threaded_clients(library: str, url: str, clients: int, payload: bytes, window: Window):
    connections = [THREADED_CLIENTS[library](url) for _ in range(clients)]
    window.counts = [0] * clients
    window.begin()

    def drive(index: int, send: Callable, recv: Callable) -> None:
        try:
            send(payload)
            check_echo(payload, recv())
            while True:
                send(payload)
                recv()
                now = time.monotonic()
                window.tick(now)
                if now >= window.end:
                    return
                if now >= window.start:
                    window.counts[index] += 1
        except BaseException as error:
            window.errors.append(error)

    threads = [
        threading.Thread(target=drive, args=(i, s, r), daemon=True)
        for i, (s, r, _) in enumerate(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(window.end - time.monotonic() + 30)
    for _, _, close in connections:
        try:
            close()
        except Exception:
            pass


def run_ws4py_clients(url: str, clients: int, payload: bytes, window: Window) -> None:
    """ws4py's threaded client: each echo is answered from the client's reader thread."""
    from ws4py.client.threadedclient import WebSocketClient

    window.counts = [0] * clients
    finished = threading.Semaphore(0)

    class Client(WebSocketClient):  # type: ignore[misc]
        index = 0
        checked = False

        def opened(self) -> None:
            self.send(payload, binary=True)

        def received_message(self, message: Any) -> None:
            try:
                if not self.checked:
                    check_echo(payload, message.data)
                    self.checked = True
                now = time.monotonic()
                window.tick(now)
                if now >= window.end:
                    finished.release()
                    return
                if now >= window.start:
                    window.counts[self.index] += 1
                self.send(payload, binary=True)
            except BaseException as error:
                window.errors.append(error)
                finished.release()

    pool = []
    for index in range(clients):
        client = Client(url)
        client.index = index
        pool.append(client)
    window.start = window.end = float("inf")  # opened() sends as each connection opens
    for client in pool:
        client.connect()
    window.begin()
    deadline = window.end + 30
    for _ in pool:
        if not finished.acquire(timeout=max(0.1, deadline - time.monotonic())):
            raise TimeoutError("ws4py clients still waiting for echoes at the time limit")
    for client in pool:
        try:
            client.close()
        except Exception:
            pass


def run(library: str, port: int, clients: int, size: int, seconds: float, warmup: float, pid: int):
    url = f"ws://127.0.0.1:{port}/"
    payload = os.urandom(size)
    window = Window(warmup, seconds, pid)
    if library in ASYNC_CLIENTS:
        run_async(run_async_clients(library, url, clients, payload, window))
    elif library == "ws4py":
        run_ws4py_clients(url, clients, payload, window)
    else:
        run_threaded_clients(library, url, clients, payload, window)
    return window.result(clients, size)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_clients", description=__doc__)
    choices = sorted([*ASYNC_CLIENTS, *THREADED_CLIENTS, "ws4py"])
    parser.add_argument("library", choices=choices)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--adapter", action="store_true")
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args(argv)
    block_modules()
    if args.adapter:
        install_adapter(args.library)
    assert args.library in ADAPTER_OF
    result = run(
        args.library, args.port, args.clients, args.size, args.seconds, args.warmup, args.server_pid
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
