"""A Starlette app under uvicorn with ``--ws`` wscodec, in Debian's chromium (headless)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.demo.test_browser import ARTIFACTS, browser  # noqa: F401  (the chromium fixture)
from wscodec.asgi.uvicorn import WebSocketProtocol

pytestmark = pytest.mark.timeout(120)

PAGE = """<!doctype html>
<title>wscodec under uvicorn</title>
<h1>Starlette on uvicorn, WebSocket by wscodec</h1>
<pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  log("open, extensions: " + ws.extensions);
  ws.send("hello from chromium");
  ws.send(new Uint8Array(100000).fill(7).buffer);
};
ws.onmessage = (event) => {
  if (typeof event.data === "string") log("text: " + event.data);
  else log("binary: " + event.data.byteLength + " bytes, sum " +
           new Uint8Array(event.data).reduce((a, b) => a + b, 0));
  if (typeof event.data !== "string") ws.close(4000, "done");
};
ws.onclose = (event) => log("closed: " + event.code + " " + event.reason);
</script>
"""


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def shout(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(text.upper())
    data = await websocket.receive_bytes()
    await websocket.send_bytes(data)
    message = await websocket.receive()
    assert message["type"] == "websocket.disconnect", message
    shout.closed_with = (message["code"], message.get("reason"))  # type: ignore[attr-defined]


app = Starlette(routes=[Route("/", page), WebSocketRoute("/ws", shout)])


@pytest.fixture
def uvicorn_in_a_thread() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, ws=WebSocketProtocol, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            thread.join(0.01)
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_a_starlette_app_in_chromium(browser, uvicorn_in_a_thread):  # noqa: F811
    port = uvicorn_in_a_thread
    tab = browser.new_page()
    tab.goto(f"http://127.0.0.1:{port}/")
    tab.wait_for_function(
        "document.getElementById('log').textContent.includes('closed:')", timeout=15_000
    )
    lines = tab.inner_text("#log").splitlines()
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "asgi-starlette-chromium.png"))
    assert lines[0].startswith("open, extensions: permessage-deflate"), lines
    assert "server_no_context_takeover" in lines[0]
    assert lines[1:] == [
        "text: HELLO FROM CHROMIUM",
        f"binary: 100000 bytes, sum {7 * 100000}",
        "closed: 4000 ",  # our close reply carries the code (RFC 6455 5.5.1), not the reason
    ]
    assert shout.closed_with == (4000, "done")  # type: ignore[attr-defined]
