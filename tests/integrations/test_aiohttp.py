"""aiohttp with wscodec installed: its own client and server over 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from tests.peers import (
    BAD_OPCODE,
    INVALID_UTF8,
    SIZES,
    installed,
    payload,
    raw_client_close_code,
    require,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("aiohttp", "aiohttp.web", "aiohttp._websocket.writer")


async def start_server():
    from aiohttp import WSMsgType, web

    async def handler(request):
        ws = web.WebSocketResponse(max_msg_size=2**21)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def test_echo_text_binary():
    import aiohttp

    async def main():
        runner, port = await start_server()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"ws://127.0.0.1:{port}/", max_msg_size=2**21) as ws:
                    for size in SIZES:
                        for text in (True, False):
                            message = payload(size, text)
                            await (ws.send_str(message) if text else ws.send_bytes(message))
                            reply = await ws.receive(timeout=10)
                            assert reply.data == message
        finally:
            await runner.cleanup()

    with installed("aiohttp") as ad:
        asyncio.run(main())
        # The client masks every frame it sends (empty payloads are not masked).
        assert ad.calls["websocket_mask"] >= 2 * (len(SIZES) - 1)


def server_close(wire):
    async def main():
        runner, port = await start_server()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, raw_client_close_code, port, wire
            )
        finally:
            await runner.cleanup()

    return asyncio.run(main())


@pytest.mark.parametrize("wire", [INVALID_UTF8, BAD_OPCODE], ids=["utf8", "opcode"])
def test_server_errors_unchanged(wire):
    without = server_close(wire)
    with installed("aiohttp"):
        with_adapter = server_close(wire)
    assert with_adapter == without
    assert with_adapter[0] == (1007 if wire is INVALID_UTF8 else 1002)


def test_mask_in_place():
    from aiohttp._websocket import writer

    data = bytearray(b"hello world")
    with installed("aiohttp") as ad:
        assert writer.websocket_mask(b"\1\2\3\4", data) is None
        assert ad.calls["websocket_mask"] == 1
    assert data == bytes(c ^ (1, 2, 3, 4)[i % 4] for i, c in enumerate(b"hello world"))
