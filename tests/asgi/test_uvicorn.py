"""Starlette and FastAPI apps under uvicorn with ``--ws`` wscodec, against real clients."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import websockets
from fastapi import FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.asgi.conftest import serving
from tests.helpers import (
    bomb_server,
    close_codes,
    raw_handshake,
    read_response,
    recv_until_closed,
)
from wscodec import ConnectionClosed, ConnectionClosedError, Opcode, encode_frame
from wscodec.asyncio import connect

KEY = b"\x11\x22\x33\x44"
events: list = []  # what the apps saw, for the tests to check


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                events.append(("disconnect", message.get("code"), message.get("reason")))
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as disconnect:  # pragma: no cover - receive() returns it above
        events.append(("disconnect", disconnect.code, disconnect.reason))


async def chat(websocket: WebSocket) -> None:
    """Accepts with the first subprotocol offered, closes with 4001 when told "bye"."""
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None)
    try:
        while True:
            text = await websocket.receive_text()
            if text == "bye":
                await websocket.close(4001, "see you")
                return
            if text == "fail":
                raise RuntimeError("the application failed")
            await websocket.send_text(text.upper())
    except WebSocketDisconnect as disconnect:
        events.append(("disconnect", disconnect.code, disconnect.reason))


async def private(websocket: WebSocket) -> None:
    if websocket.query_params.get("token") != "secret":
        await websocket.send_denial_response(PlainTextResponse("no entry", status_code=403))
        return
    await websocket.accept()
    await websocket.send_text("welcome")
    await websocket.close()


async def fail_before_accepting(websocket: WebSocket) -> None:
    raise RuntimeError("the application failed before accepting")


starlette_app = Starlette(
    routes=[
        WebSocketRoute("/echo", echo),
        WebSocketRoute("/chat", chat),
        WebSocketRoute("/private", private),
        WebSocketRoute("/broken", fail_before_accepting),
    ]
)

fastapi_app = FastAPI()


@fastapi_app.websocket("/items/{name}")
async def items(websocket: FastAPIWebSocket, name: str) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_json({"item": name, "message": message})


def url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


@pytest.fixture(autouse=True)
def no_events():
    events.clear()


@pytest.mark.parametrize("size", [0, 125, 126, 2**16, 2**20, 16 * 2**20])
def test_starlette_echo_text_and_binary(run, size):
    async def main():
        async with serving(starlette_app) as server:
            async with connect(url(server, "/echo"), max_size=None) as ws:
                binary = bytes(range(256)) * (size // 256) + bytes(size % 256)
                text = "é" * (size // 2) + "a" * (size % 2)
                await ws.send(binary)
                assert await ws.recv() == binary
                await ws.send(text)
                assert await ws.recv() == text

    run(main)


def test_fragmented_messages_and_the_websockets_client(run):
    async def main():
        async with serving(starlette_app) as server:
            async with websockets.connect(url(server, "/echo")) as ws:
                await ws.send(["frag", "mented"])  # three frames, one message
                assert await ws.recv() == "fragmented"
                await ws.send([b"\x00", b"\x01\x02"])
                assert await ws.recv() == b"\x00\x01\x02"

    run(main)


def test_fastapi_route_with_a_path_parameter(run):
    async def main():
        async with serving(fastapi_app) as server:
            async with connect(url(server, "/items/pen")) as ws:
                await ws.send("hello")
                assert await ws.recv() == '{"item":"pen","message":"hello"}'

    run(main)


def test_the_subprotocol_the_app_picks_is_the_one_agreed(run):
    async def main():
        async with serving(starlette_app) as server:
            async with connect(url(server, "/chat"), subprotocols=["v2", "v1"]) as ws:
                assert ws.subprotocol == "v2"
                await ws.send("hi")
                assert await ws.recv() == "HI"

    run(main)


def test_a_denial_response_reaches_the_client_with_its_body(run):
    async def main():
        async with serving(starlette_app) as server:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url(server, "/private")):
                    pass
            async with websockets.connect(url(server, "/private?token=secret")) as ws:
                welcome = await ws.recv()
            return refused.value.response, welcome

    response, welcome = run(main)
    assert response.status_code == 403
    assert response.body == b"no entry"
    assert welcome == "welcome"


def test_close_codes_both_ways(run):
    async def main():
        async with serving(starlette_app) as server:
            async with connect(url(server, "/chat")) as ws:
                await ws.send("bye")
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                by_app = (ws.close_code, ws.close_reason)
            async with connect(url(server, "/chat")) as ws:
                await ws.close(4002, "later")
            for _ in range(100):
                if events:
                    break
                await asyncio.sleep(0.01)
            return by_app

    assert run(main) == (4001, "see you")
    assert events == [("disconnect", 4002, "later")]


def test_an_app_failing_after_accepting_closes_with_1011_before_with_500(run, capfd):
    async def main():
        async with serving(starlette_app) as server:
            async with connect(url(server, "/chat")) as ws:
                await ws.send("fail")
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                after = ws.close_code
            with pytest.raises(websockets.InvalidStatus) as before:
                async with websockets.connect(url(server, "/broken")):
                    pass
            return after, before.value.response.status_code

    assert run(main) == (1011, 500)
    assert capfd.readouterr().err.count("Exception in ASGI application") == 2


def test_an_abrupt_disconnect_reaches_the_app_as_1006(run):
    async def main():
        async with serving(starlette_app) as server:
            ws = await connect(url(server, "/chat"))
            await ws.send("x")
            assert await ws.recv() == "X"
            ws.transport.abort()
            for _ in range(200):
                if events:
                    break
                await asyncio.sleep(0.01)

    run(main)
    assert events == [("disconnect", 1006, "")]


def test_shutdown_closes_open_connections_with_1012(run):
    async def main():
        clients = []
        async with serving(starlette_app) as server:
            for _ in range(5):
                clients.append(await connect(url(server, "/echo")))
            for ws in clients:
                await ws.send("still here")
                assert await ws.recv() == "still here"
            started = time.monotonic()
        took = time.monotonic() - started
        for ws in clients:
            await asyncio.wait_for(ws.wait_closed(), 5)
        return [ws.close_code for ws in clients], took

    codes, took = run(main)
    assert codes == [1012] * 5
    assert took < 5, f"shutdown took {took:.1f} s"
    assert sorted(events) == [("disconnect", 1012, None)] * 5


def test_a_thousand_clients_lose_and_reorder_nothing(run):
    clients, messages = 1000, 20

    async def main():
        async with serving(starlette_app, ws_ping_interval=None, backlog=2048) as server:

            async def client(number):
                async with connect(url(server, "/echo"), compression=None, open_timeout=30) as ws:
                    sent = [f"{number}:{i}" for i in range(messages)]
                    for message in sent:
                        await ws.send(message)
                    return sent, [await ws.recv() for _ in sent]

            return await asyncio.gather(*(client(n) for n in range(clients)))

    results = run(main)
    assert len(results) == clients
    for sent, received in results:
        assert received == sent


def test_a_client_that_never_reads_cannot_grow_the_servers_memory(run):
    """The app's send waits once the transport holds 64 KiB; what is queued stays bounded."""
    size = 2**16
    seen = {"sent": 0, "buffered": []}

    async def flood(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"\0" * size})
                seen["sent"] += 1
        except OSError:
            pass

    async def main():
        async with serving(flood, ws_per_message_deflate=False) as server:
            loop = asyncio.get_running_loop()
            sock = await loop.run_in_executor(None, lambda: _small_window(server.port))
            for _ in range(20):
                await asyncio.sleep(0.1)
                for protocol in server.server_state.connections:
                    seen["buffered"].append(protocol.transport.get_write_buffer_size())
            stalled_at = seen["sent"]
            await asyncio.sleep(0.5)
            sock.close()
            return stalled_at

    stalled_at = run(main)
    # The sends stop once the socket buffers and 64 KiB of transport buffer are full.
    assert seen["sent"] - stalled_at <= 1
    assert max(seen["buffered"]) <= 2**16 + size + 64, max(seen["buffered"])
    assert stalled_at * size < 16 * 2**20, f"{stalled_at} messages went out to a reader of none"


def _small_window(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return sock


def test_a_decompression_bomb_closes_with_1009_in_bounded_memory(run):
    async def main():
        async with serving(starlette_app, ws_max_size=2**20) as server:
            return await bomb_server(server.port, "/echo")

    data, peak = run(main)
    assert close_codes(data) == [1009]
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 200 MiB bomb"


def test_keepalive_pings_are_sent_and_answered_or_not_sent(run):
    async def main():
        async with serving(starlette_app, ws_ping_interval=0.05, ws_ping_timeout=5) as server:
            async with connect(url(server, "/echo"), ping_interval=None) as ws:
                await asyncio.sleep(0.3)
                [protocol] = server.server_state.connections
                assert protocol.ping_sent_at > 0
                assert not protocol.transport.is_closing()
                await ws.send("alive")
                assert await ws.recv() == "alive"
        async with serving(starlette_app, ws_ping_interval=None) as server:
            async with connect(url(server, "/echo"), ping_interval=None):
                await asyncio.sleep(0.2)
                [protocol] = server.server_state.connections
                assert protocol.ping_timer is None
                assert protocol.ping_sent_at == 0.0

    run(main)


def test_a_bad_upgrade_request_gets_the_status_that_says_why(run):
    async def main():
        async with serving(starlette_app) as server:

            def request():
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                sock.sendall(
                    b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 8\r\n\r\n"
                )
                response = read_response(sock)
                sock.close()
                return response

            return await asyncio.get_running_loop().run_in_executor(None, request)

    response = run(main)
    assert response.status == 426
    assert response.headers.get("Sec-WebSocket-Version") == "13"


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_both_of_uvicorns_http_protocols_hand_over(run, http):
    async def main():
        async with serving(starlette_app, http=http) as server:
            async with connect(url(server, "/echo")) as ws:
                await ws.send("over")
                assert await ws.recv() == "over"

    run(main)


def test_compression_is_agreed_without_server_context_and_holds_no_compressor(run):
    async def main():
        async with serving(starlette_app) as server:
            async with websockets.connect(url(server, "/echo")) as ws:
                agreed = ws.response.headers["Sec-WebSocket-Extensions"]
                for text in ["hello, hello, hello"] * 3:
                    await ws.send(text)
                    assert await ws.recv() == text
                [protocol] = server.server_state.connections
                extension = protocol.protocol.deflate
                return agreed, extension._compressor, extension.local_no_context_takeover

    agreed, compressor, no_context = run(main)
    assert "server_no_context_takeover" in agreed
    assert no_context and compressor is None


def test_a_peer_close_gets_its_reply_when_the_app_returns_without_reading(run):
    """The reply to a close that came after unread messages is not lost with the app."""
    released = asyncio.Event()

    async def ignore(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await released.wait()  # messages and the close arrive meanwhile, unread

    async def main():
        async with serving(ignore) as server:

            def client():
                sock = raw_handshake(server.port)
                sock.sendall(encode_frame(Opcode.TEXT, b"unread", mask=KEY))
                sock.sendall(encode_frame(Opcode.CLOSE, b"\x03\xe8", mask=KEY))
                return sock

            loop = asyncio.get_running_loop()
            sock = await loop.run_in_executor(None, client)
            await asyncio.sleep(0.2)
            released.set()
            data = await loop.run_in_executor(None, recv_until_closed, sock)
            sock.close()
            return data

    assert close_codes(run(main)) == [1000]
