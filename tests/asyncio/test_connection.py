"""The asyncio server and client together: messages, fragments, pings, every close path."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from tests.asyncio.conftest import port_of
from tests.helpers import close_codes, raw_handshake, recv_until_closed
from wscodec import ConnectionClosedError, ConnectionClosedOK, Opcode, encode_frame
from wscodec.asyncio import ConcurrencyError, connect, serve, unix_connect, unix_serve
from wscodec.deflate import DeflateOptions

SIZES = [0, 125, 126, 65536, 2**20, 16 * 2**20]
KEY = b"\x11\x22\x33\x44"


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo(run, size, kind):
    if kind == "text":
        message = "\u00e9" * (size // 2) + "x" * (size % 2)  # size bytes in UTF-8
    else:
        message = (bytes(range(256)) * (size // 256 + 1))[:size]

    async def main():
        async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=None) as ws:
                await ws.send(message)
                assert await ws.recv() == message

    run(main)


def test_fragmented_messages_both_ways(run):
    received = []

    async def handler(websocket):
        received.append(await websocket.recv())
        pieces = [piece async for piece in websocket.recv_streaming()]
        received.append(pieces)

        async def parts():
            for part in (b"a", b"b", b"c"):
                await asyncio.sleep(0)
                yield part

        await websocket.send(parts())
        await websocket.send(["x", "y"])

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                await ws.send(["fr", "ag", "\u00e9"])
                await ws.send((b"1", b"22", b"333"))
                assert await ws.recv() == b"abc"
                pieces = [piece async for piece in ws.recv_streaming()]
                assert pieces == ["x", "y", ""]  # the last frame closes the message
                await ws.wait_closed()

    run(main)
    assert received == ["frag\u00e9", [b"1", b"22", b"333", b""]]


def test_recv_decode(run):
    async def handler(websocket):
        await websocket.send(b"caf\xc3\xa9")
        await websocket.send("caf\u00e9")
        await websocket.recv()

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                assert await ws.recv(decode=True) == "caf\u00e9"
                assert await ws.recv(decode=False) == b"caf\xc3\xa9"

    run(main)


def test_ping_resolves_to_the_latency(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                pong_waiter = await ws.ping()
                latency = await asyncio.wait_for(pong_waiter, 5)
                assert 0 < latency < 5
                named = await ws.ping("named")
                assert await asyncio.wait_for(named, 5) > 0
                await ws.pong(b"unsolicited")  # the server ignores it
                await ws.send("still open")
                assert await ws.recv() == "still open"

    run(main)


def test_keepalive_measures_latency(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=0.05) as ws:
                for _ in range(100):
                    if ws.latency:
                        break
                    await asyncio.sleep(0.02)
                assert 0 < ws.latency < 1

    run(main)


def test_normal_close_from_the_client(run):
    seen = []

    async def handler(websocket):
        try:
            await websocket.recv()
        except ConnectionClosedOK as closed:
            seen.append((closed.code, closed.reason))

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{port_of(server)}/")
            await ws.close(1000, "bye")
            assert ws.close_code == 1000
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            with pytest.raises(ConnectionClosedOK):
                await ws.send("late")

    run(main)
    assert seen == [(1000, "bye")]


def test_handler_returning_closes_with_1000(run):
    async def handler(websocket):
        await websocket.send("only message")

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                assert [message async for message in ws] == ["only message"]
                assert ws.close_code == 1000

    run(main)


def test_handler_that_raises_closes_with_1011_and_the_server_goes_on(run, caplog):
    calls = []

    async def handler(websocket):
        calls.append(None)
        if len(calls) == 1:
            raise ValueError("boom")
        await echo(websocket)

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}/"
            async with connect(uri) as ws:
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert caught.value.code == 1011
            async with connect(uri) as ws:
                await ws.send("next")
                assert await ws.recv() == "next"

    with caplog.at_level(logging.ERROR, logger="wscodec.server"):
        run(main)
    assert any("handler failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_protocol_error_closes_with_1002(run):
    """An unmasked frame from a client: 1002, and the server closes TCP."""

    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            port = port_of(server)

            def attack():
                sock = raw_handshake(port)
                sock.sendall(encode_frame(Opcode.TEXT, b"unmasked"))
                return recv_until_closed(sock)

            data = await asyncio.get_running_loop().run_in_executor(None, attack)
            return data

    data = run(main)
    assert close_codes(data) == [1002]


def test_abrupt_disconnect_is_1006_on_the_server(run):
    seen = []

    async def handler(websocket):
        try:
            await websocket.recv()
        except ConnectionClosedError as closed:
            seen.append(closed.code)

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = port_of(server)
            sock = await asyncio.get_running_loop().run_in_executor(None, raw_handshake, port)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.close()  # a reset, no close frame
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)

    run(main)
    assert seen == [1006]


def test_server_close_sends_1001_within_close_timeout(run):
    async def main():
        server = await serve(echo, "127.0.0.1", 0, close_timeout=1.0)
        clients = [await connect(f"ws://127.0.0.1:{port_of(server)}/") for _ in range(5)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        server.close()
        await server.wait_closed()
        took = loop.time() - started
        for ws in clients:
            with pytest.raises(ConnectionClosedOK) as caught:
                await ws.recv()
            assert caught.value.code == 1001
        return took

    assert run(main) < 1.5


def test_server_close_drops_a_client_that_never_answers_within_close_timeout(run):
    """A raw client that ignores the close frame: dropped after close_timeout."""

    async def main():
        server = await serve(echo, "127.0.0.1", 0, close_timeout=0.5)
        loop = asyncio.get_running_loop()
        sock = await loop.run_in_executor(None, raw_handshake, port_of(server))
        started = loop.time()
        server.close()
        await server.wait_closed()
        took = loop.time() - started
        data = await loop.run_in_executor(None, recv_until_closed, sock)
        sock.close()
        return took, data

    took, data = run(main)
    assert 0.4 < took < 1.5
    assert close_codes(data) == [1001]


def test_messages_sent_before_a_close_are_delivered_in_order(run):
    """The peer sends messages then its close in one write: all are delivered, then 1000."""
    got = []

    async def handler(websocket):
        async for message in websocket:
            got.append(message)

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = port_of(server)

            def burst():
                sock = raw_handshake(port)
                frames = b"".join(
                    encode_frame(Opcode.TEXT, f"m{i}".encode(), mask=KEY) for i in range(50)
                )
                sock.sendall(frames + encode_frame(Opcode.CLOSE, b"\x03\xe8", mask=KEY))
                return recv_until_closed(sock)

            return await asyncio.get_running_loop().run_in_executor(None, burst)

    data = run(main)
    assert got == [f"m{i}" for i in range(50)]
    assert close_codes(data) == [1000]


def test_answers_to_messages_before_a_close_go_out_before_the_close(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            port = port_of(server)

            def burst():
                sock = raw_handshake(port)
                sock.sendall(
                    encode_frame(Opcode.TEXT, b"echo me", mask=KEY)
                    + encode_frame(Opcode.CLOSE, b"\x03\xe8", mask=KEY)
                )
                return recv_until_closed(sock)

            return await asyncio.get_running_loop().run_in_executor(None, burst)

    data = run(main)
    assert b"echo me" in data
    assert data.index(b"echo me") < data.index(b"\x88\x02\x03\xe8")


def test_a_cancelled_recv_loses_no_message(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                for i in range(20):
                    waiting = asyncio.ensure_future(ws.recv())
                    await asyncio.sleep(0)
                    await ws.send(f"m{i}")
                    waiting.cancel()  # maybe before, maybe after the message came
                    try:
                        message = await waiting
                    except asyncio.CancelledError:
                        message = await asyncio.wait_for(ws.recv(), 5)
                    assert message == f"m{i}"

    run(main)


def test_recv_with_a_timeout(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.05)
                if hasattr(asyncio, "timeout"):  # 3.11+
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await ws.recv()
                await ws.send("after the timeouts")
                assert await ws.recv() == "after the timeouts"

    run(main)


def test_two_coroutines_receiving_at_once_is_an_error(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                first = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0.01)
                with pytest.raises(ConcurrencyError):
                    await ws.recv()
                await ws.send("for the first")
                assert await first == "for the first"

    run(main)


@pytest.mark.skipif(not hasattr(asyncio, "TaskGroup"), reason="asyncio.TaskGroup is 3.11+")
def test_many_clients_in_a_task_group(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}/"

            async def client(index):
                async with connect(uri) as ws:
                    await ws.send(str(index))
                    return await ws.recv()

            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(client(i)) for i in range(50)]
            return [task.result() for task in tasks]

    assert run(main) == [str(i) for i in range(50)]


def test_process_request_answers_over_http(run):
    async def health(connection, request):
        if request.path == "/healthz":
            return connection.respond(200, "OK")
        if request.headers.get("Authorization") != "Bearer good":
            return connection.respond(401, "who are you?\n")
        return None

    def add_header(connection, request, response):
        response.headers["X-Served-By"] = "wscodec.asyncio"

    async def main():
        async with serve(
            echo, "127.0.0.1", 0, process_request=health, process_response=add_header
        ) as server:
            port = port_of(server)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nOK\n")
            from wscodec import InvalidStatus

            with pytest.raises(InvalidStatus) as caught:
                await connect(f"ws://127.0.0.1:{port}/")
            assert caught.value.response.status == 401
            async with connect(
                f"ws://127.0.0.1:{port}/", additional_headers=[("Authorization", "Bearer good")]
            ) as ws:
                assert ws.response.headers["X-Served-By"] == "wscodec.asyncio"
                assert ws.response.headers["Server"].startswith("Python/")

    run(main)


def test_bad_handshake_request_gets_400(run):
    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer

    assert run(main).startswith(b"HTTP/1.1 426 ")


def test_subprotocol_and_compression_negotiated(run):
    async def handler(websocket):
        await websocket.send(websocket.subprotocol)
        await echo(websocket)

    async def main():
        async with serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}/"
            async with connect(uri, subprotocols=["other", "chat"]) as ws:
                assert ws.subprotocol == "chat"
                assert await ws.recv() == "chat"
                assert ws.protocol.deflate is not None
                await ws.send("compressible " * 1000)
                assert await ws.recv() == "compressible " * 1000
            async with connect(uri, compression=None) as ws:
                assert ws.protocol.deflate is None

    run(main)


@pytest.mark.parametrize("keep_context", [False, True])
def test_default_compression_keeps_no_compressor_between_messages(run, keep_context):
    # The server's default agrees server_no_context_takeover: after it sent a
    # compressed message, an idle connection holds no zlib compressor.
    # DeflateOptions() keeps the context, and the compressor with it.
    held = []

    async def handler(websocket):
        async for message in websocket:
            await websocket.send(message)
            held.append(websocket.protocol.deflate._compressor is not None)

    async def main():
        compression = DeflateOptions() if keep_context else "deflate"
        async with serve(handler, "127.0.0.1", 0, compression=compression) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/") as ws:
                agreed = ws.response.headers["Sec-WebSocket-Extensions"]
                for _ in range(3):
                    await ws.send("compressible " * 100)
                    assert await ws.recv() == "compressible " * 100
                return agreed

    agreed = run(main)
    assert ("server_no_context_takeover" in agreed) is not keep_context
    assert held == [keep_context] * 3


def test_unix_socket(run, tmp_path):
    path = str(tmp_path / "ws.sock")

    async def main():
        async with unix_serve(echo, path):
            async with unix_connect(path) as ws:
                await ws.send("over a unix socket")
                return await ws.recv()

    assert run(main) == "over a unix socket"


def test_async_for_connect_reconnects_after_a_refused_connection(run):
    async def main():
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there yet
        server = None

        async def start_later():
            nonlocal server
            await asyncio.sleep(0.3)
            server = await serve(echo, "127.0.0.1", port)

        starter = asyncio.ensure_future(start_later())
        attempts = connect(f"ws://127.0.0.1:{port}/")
        attempts.BACKOFF_INITIAL, attempts.BACKOFF_MIN = 0.1, 0.1
        async for ws in attempts:
            await ws.send("connected at last")
            assert await ws.recv() == "connected at last"
            break
        await starter
        server.close()
        await server.wait_closed()

    run(main)


def test_connection_attributes(run):
    async def handler(websocket):
        await websocket.send(
            repr((websocket.request.path, websocket.remote_address[0], str(websocket.state)))
        )
        await echo(websocket)

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(f"ws://127.0.0.1:{port_of(server)}/path?q=1") as ws:
                assert await ws.recv() == repr(("/path?q=1", "127.0.0.1", "State.OPEN"))
                assert ws.remote_address[1] == port_of(server)
                assert ws.local_address[0] == "127.0.0.1"
                other = await connect(f"ws://127.0.0.1:{port_of(server)}/")
                assert ws.id != other.id
                assert len(server.connections) == 2
                await other.close()
                assert ws.close_code is None and ws.close_reason == ""
            assert ws.close_code == 1000

    run(main)


def test_tls_both_ways(run):
    """wss:// between our server and our client, and our server with websockets' client."""
    import ssl

    import trustme
    import websockets.asyncio.client

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    large = b"\x01" * (2**20)

    async def main():
        async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
            uri = f"wss://127.0.0.1:{port_of(server)}/"
            async with connect(uri, ssl=client_context) as ws:
                await ws.send("over TLS")
                assert await ws.recv() == "over TLS"
                await ws.send(large)
                assert await ws.recv() == large
            async with websockets.asyncio.client.connect(uri, ssl=client_context) as ws:
                await ws.send("websockets over TLS")
                assert await ws.recv() == "websockets over TLS"

    run(main)


class FakeTransport:
    """A transport that records writes: for the data_received() path, without a socket."""

    def __init__(self):
        self.written = bytearray()
        self.closing = False

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def get_write_buffer_size(self):
        return 0

    def write(self, data):
        self.written += data

    def writelines(self, buffers):
        for data in buffers:
            self.written += data

    def is_closing(self):
        return self.closing

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def can_write_eof(self):
        return True

    def write_eof(self):
        pass

    def close(self):
        self.closing = True

    def abort(self):
        self.closing = True


def test_transports_that_do_not_buffer_use_data_received(run):
    """The proactor loop and some TLS transports call data_received(): same messages."""
    from wscodec.asyncio.client import ClientConnection
    from wscodec.handshake import HTTPReader, Request, accept, build_request

    async def main():
        request, key = build_request("127.0.0.1", 1)
        connection = ClientConnection(
            request, key, subprotocols=None, compression=None, protocol_options={}
        )
        transport = FakeTransport()
        connection.connection_made(transport)
        sent = HTTPReader("request").feed(bytes(transport.written))
        assert isinstance(sent, Request)
        response = accept(sent).response.serialize()
        frames = encode_frame(Opcode.TEXT, b"one") + encode_frame(Opcode.BINARY, b"two")
        stream = response + frames
        for start in range(0, len(stream), 7):  # in small pieces, as a transport may
            connection.data_received(stream[start : start + 7])
        await asyncio.wait_for(connection.opened, 1)
        assert await connection.recv() == "one"
        assert await connection.recv() == b"two"

    run(main)


class StdlibLikeTransport(FakeTransport, asyncio.Transport):
    """An asyncio.Transport (as the stdlib's are) that counts writelines() calls."""

    def __init__(self):
        FakeTransport.__init__(self)
        self.writelines_calls = 0

    def writelines(self, buffers):
        self.writelines_calls += 1
        FakeTransport.writelines(self, buffers)


def test_a_stdlib_transport_gets_whole_messages_through_write(run):
    """CPython 3.12.1 and 3.13.0's writelines() never calls pause_writing(): on a
    stdlib transport a message is joined and written with write(), which does."""
    from wscodec.asyncio.connection import AsyncConnection
    from wscodec.connection import Connection, Role

    async def main():
        connection = AsyncConnection(ping_interval=None)
        transport = StdlibLikeTransport()
        connection.connection_made(transport)
        connection.open(Connection(Role.SERVER))  # unmasked: a header and the payload
        await connection.send(b"\x00" * 100_000)
        assert transport.writelines_calls == 0
        assert len(transport.written) == 100_000 + 10  # a 10-byte header

    run(main)


def test_broadcast_encodes_once_and_skips_a_peer_that_does_not_keep_up(run, caplog):
    from wscodec.asyncio import broadcast

    connected = []

    async def handler(websocket):
        connected.append(websocket)
        await websocket.wait_closed()

    async def main():
        async with serve(handler, "127.0.0.1", 0, compression=None, write_limit=2**16) as server:
            port = port_of(server)
            readers = [await connect(f"ws://127.0.0.1:{port}/") for _ in range(10)]
            loop = asyncio.get_running_loop()
            stuck = await loop.run_in_executor(None, raw_handshake, port)  # never reads
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            while len(connected) < 11:
                await asyncio.sleep(0.01)
            port_of_stuck = stuck.getsockname()[1]
            slow = next(c for c in connected if c.remote_address[1] == port_of_stuck)
            for _ in range(16000):  # fill the socket buffers, then the transport's
                if slow.transport.get_write_buffer_size() > 2**16:
                    break
                slow.transport.write(b"\x82\x7e\x10\x00" + b"\0" * 4096)
                await asyncio.sleep(0)
            sent = broadcast(connected, "to everyone")
            for ws in readers:
                assert await asyncio.wait_for(ws.recv(), 5) == "to everyone"
                await ws.close()
            stuck.close()
            return sent

    with caplog.at_level(logging.WARNING, logger="wscodec.asyncio"):
        sent = run(main)
    assert sent == 10
    assert any("skipped 1 connections" in r.getMessage() for r in caplog.records)
