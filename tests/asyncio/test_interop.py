"""The asyncio server with every peer client, and the asyncio client with every peer server."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import picows
import websocket as websocket_client
import websockets.asyncio.client
import websockets.asyncio.server
from aiohttp import web

import wscodec
from tests.asyncio.conftest import port_of
from wscodec.asyncio import connect, serve

MESSAGES = ["hello", "", "\u00e9t\u00e9 " * 1000, b"\x00\xff" * 40000, b""]


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


# Peer clients against our server -------------------------------------------------


def with_our_server(run, client):
    """Serve echo on our asyncio server and run ``client(uri)`` against it."""

    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            return await client(f"ws://127.0.0.1:{port_of(server)}/")

    return run(main)


def test_websockets_client(run):
    async def client(uri):
        async with websockets.asyncio.client.connect(uri) as ws:
            answers = []
            for message in MESSAGES:
                await ws.send(message)
                answers.append(await ws.recv())
            latency = await asyncio.wait_for(await ws.ping(), 5)
            return answers, latency

    answers, latency = with_our_server(run, client)
    # websockets times pings with loop.time(), which on uvloop is the time its
    # loop iteration began: 0.0 on loopback.
    assert answers == MESSAGES and latency >= 0


def test_aiohttp_client(run):
    async def client(uri):
        answers = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(uri, compress=15) as ws:
                for message in MESSAGES:
                    if isinstance(message, str):
                        await ws.send_str(message)
                    else:
                        await ws.send_bytes(message)
                    answers.append((await ws.receive()).data)
                await ws.close()
                return answers, ws.close_code

    answers, code = with_our_server(run, client)
    assert answers == MESSAGES and code == 1000


class PicowsClient(picows.WSListener):
    def __init__(self):
        self.received = []
        self.closed_with = None

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == picows.WSMsgType.CLOSE:
            self.closed_with = frame.get_close_code()
            transport.disconnect()
        elif frame.msg_type == picows.WSMsgType.TEXT:
            self.received.append(frame.get_payload_as_utf8_text())
        else:
            self.received.append(frame.get_payload_as_bytes())


def test_picows_client(run):
    async def client(uri):
        transport, listener = await picows.ws_connect(PicowsClient, uri)
        for message in MESSAGES:
            if isinstance(message, str):
                transport.send(picows.WSMsgType.TEXT, message.encode())
            else:
                transport.send(picows.WSMsgType.BINARY, message)
        for _ in range(500):
            if len(listener.received) == len(MESSAGES):
                break
            await asyncio.sleep(0.01)
        transport.send_close(picows.WSCloseCode.OK)
        await asyncio.wait_for(transport.wait_disconnected(), 5)
        return listener.received, listener.closed_with

    received, code = with_our_server(run, client)
    assert received == MESSAGES and code == picows.WSCloseCode.OK


def test_websocket_client_and_our_sync_client(run):
    def websocket_client_session(uri):
        ws = websocket_client.create_connection(uri)
        answers = []
        for message in MESSAGES:
            if isinstance(message, str):
                ws.send(message)
            else:
                ws.send_binary(message)
            answers.append(ws.recv())
        ws.close()
        return answers

    def sync_client_session(uri):
        with wscodec.connect(uri) as ws:
            answers = []
            for message in MESSAGES:
                ws.send(message)
                answers.append(ws.recv(timeout=5))
            return answers

    async def client(uri):
        loop = asyncio.get_running_loop()
        return await asyncio.gather(
            loop.run_in_executor(None, websocket_client_session, uri),
            loop.run_in_executor(None, sync_client_session, uri),
        )

    from_websocket_client, from_sync_client = with_our_server(run, client)
    assert from_websocket_client == MESSAGES
    assert from_sync_client == MESSAGES


# Our client against peer servers -------------------------------------------------


async def our_client_session(uri, **options):
    async with connect(uri, **options) as ws:
        answers = []
        for message in MESSAGES:
            await ws.send(message)
            answers.append(await ws.recv())
        latency = await asyncio.wait_for(await ws.ping(), 5)
    return answers, latency, ws.close_code


def test_against_websockets_server(run):
    async def main():
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            return await our_client_session(f"ws://127.0.0.1:{port}/")

    answers, latency, code = run(main)
    assert answers == MESSAGES and latency > 0 and code == 1000


def test_against_aiohttp_server(run):
    async def handler(request):
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def main():
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            return await our_client_session(f"ws://127.0.0.1:{port}/")
        finally:
            await runner.cleanup()

    answers, latency, code = run(main)
    assert answers == MESSAGES and latency > 0 and code == 1000


class PicowsEcho(picows.WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type == picows.WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_bytes())


def test_against_picows_server(run):
    async def main():
        server = await picows.ws_create_server(
            lambda request: PicowsEcho(), "127.0.0.1", 0, enable_auto_pong=False
        )
        port = server.sockets[0].getsockname()[1]
        try:
            # picows has no permessage-deflate, and messages here come in one frame each.
            return await our_client_session(f"ws://127.0.0.1:{port}/")
        finally:
            server.close()

    answers, latency, code = run(main)
    assert answers == MESSAGES and latency > 0 and code == 1000


def test_against_our_threaded_server(run):
    def threaded_echo(connection):
        for message in connection:
            connection.send(message)

    server = wscodec.serve(threaded_echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers, latency, code = run(lambda: our_client_session(f"ws://127.0.0.1:{server.port}/"))
    finally:
        server.shutdown()
        thread.join(10)
    assert answers == MESSAGES and latency > 0 and code == 1000
