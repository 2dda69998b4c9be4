"""What a peer can make the asyncio server hold: each bound, measured."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import tracemalloc

from tests.asyncio.conftest import port_of
from tests.helpers import bomb_server, close_codes, raw_handshake
from wscodec import ConnectionClosedError
from wscodec.asyncio import connect, serve
from wscodec.asyncio.connection import _read_buffer
from wscodec.asyncio.server import ServerConnection
from wscodec.cli import echo_coroutine
from wscodec.handshake import reject

KEY = b"\x11\x22\x33\x44"


def test_reading_pauses_at_max_queue_and_nothing_is_lost(run):
    """A handler that does not read: the server holds max_queue messages plus one read.

    Reading pauses once max_queue messages wait; the messages of the read
    that crossed the mark are queued too (a read is at most 1 MiB, the
    loop's read buffer). The rest waits in TCP, and then in the client.
    """
    count, size = 5000, 1024
    seen = {}

    async def handler(websocket):
        await asyncio.sleep(1.0)  # the client sends as much as it can meanwhile
        seen["queued"] = len(websocket._messages)
        seen["paused"] = websocket._reading_paused
        seen["received"] = [await websocket.recv() for _ in range(count)]

    async def main():
        async with serve(handler, "127.0.0.1", 0, max_queue=16, compression=None) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/", compression=None) as ws:
                for i in range(count):
                    await ws.send(f"{i:04d}" * (size // 4))
                await ws.wait_closed()

    run(main)
    assert seen["paused"], seen["queued"]
    assert seen["queued"] <= 16 + 2**20 // size + 1, seen["queued"]
    assert seen["received"] == [f"{i:04d}" * (size // 4) for i in range(count)]


def test_a_client_that_never_reads_cannot_grow_the_servers_memory(run):
    """send() waits once write_limit bytes wait in the transport, then write_timeout drops it."""
    seen = {"buffered": 0, "sent": 0}

    async def handler(websocket):
        message = b"\0" * 65536
        started = asyncio.get_running_loop().time()
        try:
            while True:
                await websocket.send(message)
                seen["sent"] += 1
                buffered = websocket.transport.get_write_buffer_size()
                seen["buffered"] = max(seen["buffered"], buffered)
        except ConnectionClosedError as closed:
            seen["closed"] = closed.code
        seen["after"] = asyncio.get_running_loop().time() - started

    async def main():
        async with serve(
            handler, "127.0.0.1", 0, write_limit=2**16, write_timeout=0.5, compression=None
        ) as server:
            loop = asyncio.get_running_loop()
            sock = await loop.run_in_executor(None, raw_handshake, port_of(server))
            for _ in range(300):  # the client reads nothing at all
                if "after" in seen:
                    break
                await asyncio.sleep(0.01)
            sock.close()

    run(main)
    assert seen["closed"] == 1006
    # What waits in the transport: write_limit, plus the message that crossed it.
    assert seen["buffered"] <= 2**16 + 65536 + 16, seen["buffered"]
    assert 0.4 < seen["after"] < 3.0, seen


def test_a_thousand_clients_a_hundred_messages_each(run):
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0, compression=None, backlog=1024) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}/"

            async def client(index):
                async with connect(uri, compression=None, open_timeout=60) as ws:
                    for i in range(100):  # pipelined: all sent before any is read
                        await ws.send(f"{index}:{i}")
                    return [await ws.recv() for _ in range(100)]

            results = []
            for start in range(0, 1000, 100):  # within the listen backlog
                results += await asyncio.gather(*(client(i) for i in range(start, start + 100)))
            return results

    results = run(main)
    assert len(results) == 1000
    for index, answers in enumerate(results):
        assert answers == [f"{index}:{i}" for i in range(100)]


def test_a_decompression_bomb_is_refused_with_1009_in_bounded_memory(run):
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0, max_size=2**20) as server:
            return await bomb_server(port_of(server))

    data, peak = run(main)
    assert close_codes(data) == [1009]
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 200 MiB bomb"


def test_a_large_message_leaves_no_large_buffer_behind(run):
    """After a 16 MiB message the connection and the loop's read buffer are small again."""

    async def main():
        done = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            assert len(await websocket.recv()) == 16 * 2**20
            for _ in range(40):  # small messages: the read buffer shrinks back
                await websocket.recv()
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
            done.set_result(snapshot)
            await websocket.recv()

        async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/", compression=None) as ws:
                tracemalloc.start()
                try:
                    await ws.send(b"\0" * (16 * 2**20))
                    for _ in range(40):
                        await ws.send(b"small")
                        await asyncio.sleep(0.001)
                    await asyncio.wait_for(asyncio.shield(done), 10)
                    current = tracemalloc.get_traced_memory()[0]
                finally:
                    tracemalloc.stop()
                await ws.send("end")
        return current, len(_read_buffer().view)

    current, buffer_size = run(main)
    # The client's own 16 MiB message is long gone as well; what stays is
    # the loop's shared read buffer (64 KiB or 1 MiB) and small objects.
    assert current < 3 * 2**20, f"{current / 2**20:.1f} MiB still held"
    assert buffer_size <= 2**20


def test_the_listen_backlog_given_is_the_one_in_force(run):
    """create_server(sock=...) listens again (with 100 unless told): the backlog given
    to serve() must survive it, or a burst of connections waits for SYN retries."""

    def completed_handshakes(port: int, count: int) -> int:
        # The loop is blocked: the kernel completes handshakes into the accept queue
        # only while it is shorter than the backlog; it drops the SYNs past it.
        socks = []
        try:
            for _ in range(count):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                socks.append(sock)
            time.sleep(0.3)
            return sum(
                1
                for sock in socks
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and _established(sock)
            )
        finally:
            for sock in socks:
                sock.close()

    def _established(sock: socket.socket) -> bool:
        try:
            sock.getpeername()
            return True
        except OSError:
            return False

    async def main():
        async def handler(websocket):
            await websocket.wait_closed()

        async with serve(handler, "127.0.0.1", 0, backlog=1024) as server:
            return completed_handshakes(port_of(server), 400)  # blocks the loop meanwhile

    assert run(main) == 400


class GoneTransport:
    """A transport whose client reset the connection just after our response went out:
    shutting down the write side fails with ENOTCONN."""

    def __init__(self) -> None:
        self.written = b""
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        raise OSError(107, "Transport endpoint is not connected")

    def abort(self) -> None:
        self.aborted = True


def test_a_refusal_to_a_client_already_gone_is_dropped_quietly(run):
    """A 403 (or a page served by process_request) to a client that reset meanwhile:
    the connection is dropped, and nothing is raised into the handshake task (which
    logged a traceback for a plain disconnect)."""

    async def main() -> None:
        async with serve(echo_coroutine, "127.0.0.1", 0) as server:
            connection = ServerConnection(server)
            transport = GoneTransport()
            connection.transport = transport  # type: ignore[assignment]
            connection._loop = asyncio.get_running_loop()
            connection._refuse(reject(403, "no"))
            assert transport.written.startswith(b"HTTP/1.1 403")
            assert transport.aborted

    run(main)


def test_connections_have_no_nagle_delay_even_on_a_socket_of_our_own(run):
    """TCP_NODELAY on both ends, also when the server listens on a socket made
    without IPPROTO_TCP (the stdlib loop sets it only for those made with it):
    otherwise a message written while the last one waits for its ACK waits up to
    40 ms (the demo's fan-out answered in 44 ms instead of 1)."""
    nodelay: list = []

    async def handler(websocket) -> None:
        sock = websocket.transport.get_extra_info("socket")
        nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        await websocket.send("ok")

    async def main() -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        async with serve(handler, sock=listener):
            port = listener.getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/") as client:
                assert await client.recv() == "ok"
                sock = client.transport.get_extra_info("socket")
                nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    run(main)
    assert nodelay and all(nodelay), nodelay
