"""The ASGI echo apps of the benchmarks, and uvicorn serving them with each ``--ws``.

Two apps: a bare ASGI echo (the protocol class's own cost, with nothing on
top) and a Starlette ``WebSocketEndpoint`` echo (what a Starlette or FastAPI
user runs). uvicorn serves them with uvloop and httptools, and one of three
WebSocket implementations: wscodec's (:mod:`wscodec.asgi.uvicorn`) and
uvicorn's own ``websockets-sansio`` (its default) and ``wsproto``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable, Dict, Tuple

#: uvicorn's ``--ws`` value for each implementation.
WS_IMPLEMENTATIONS = {
    "wscodec": "wscodec.asgi.uvicorn:WebSocketProtocol",
    "websockets-sansio": "websockets-sansio",
    "wsproto": "wsproto",
}
#: Server kinds: ``uvicorn-IMPL`` serves the bare app, ``starlette-IMPL`` the endpoint.
KINDS = tuple(f"{app}-{ws}" for app in ("uvicorn", "starlette") for ws in WS_IMPLEMENTATIONS)


async def bare_echo(scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
    """Echo every message as it came (text as text, binary as binary)."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def starlette_echo() -> Any:
    """A Starlette app whose ``/`` is an echoing ``WebSocketEndpoint``."""
    from starlette.applications import Starlette
    from starlette.endpoints import WebSocketEndpoint
    from starlette.routing import WebSocketRoute

    class Echo(WebSocketEndpoint):  # type: ignore[misc]
        encoding = None  # the message as it came: str or bytes

        async def on_receive(self, websocket: Any, data: Any) -> None:
            if isinstance(data, str):
                await websocket.send_text(data)
            else:
                await websocket.send_bytes(data)

    return Starlette(routes=[WebSocketRoute("/", Echo)])


def split_kind(kind: str) -> Tuple[str, str]:
    """``starlette-websockets-sansio`` -> (``starlette``, ``websockets-sansio``)."""
    app, _, ws = kind.partition("-")
    if app not in ("uvicorn", "starlette") or ws not in WS_IMPLEMENTATIONS:
        raise ValueError(f"unknown ASGI server kind {kind!r}")
    return app, ws


async def start(kind: str, *, compression: bool = False, **options: Any) -> Tuple[Any, int]:
    """Start uvicorn for ``kind`` on a free port of 127.0.0.1; ``(server, port)``.

    No size limit and no keepalive pings, as every benchmark server;
    permessage-deflate only with ``compression``. Stop it with
    ``server.should_exit = True`` and await ``server.task``.
    """
    import uvicorn

    app_name, ws = split_kind(kind)
    app = bare_echo if app_name == "uvicorn" else starlette_echo()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        ws=WS_IMPLEMENTATIONS[ws],
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_max_size=2**31,
        ws_ping_interval=None,
        ws_per_message_deflate=compression,
        **options,
    )
    server = uvicorn.Server(config)
    server.task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))  # type: ignore[attr-defined]
    while not server.started:
        if server.task.done():  # type: ignore[attr-defined]
            server.task.result()  # type: ignore[attr-defined]
            raise RuntimeError(f"{kind} stopped before it started")
        await asyncio.sleep(0.01)
    return server, sock.getsockname()[1]
