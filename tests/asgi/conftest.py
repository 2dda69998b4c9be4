"""uvicorn serving ASGI apps with wscodec's protocol class, on a test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from typing import Any, AsyncIterator

from tests.asyncio.conftest import run  # noqa: F401  (the asyncio/uvloop fixture)

if sys.version_info < (3, 10):
    # uvicorn 0.50+, whose --ws plug point and test suite this targets, needs 3.10.
    collect_ignore_glob = ["test_*.py"]
else:
    import uvicorn

    from wscodec.asgi.uvicorn import WebSocketProtocol


@contextlib.asynccontextmanager
async def serving(app: Any, http: str = "httptools", **options: Any) -> AsyncIterator[Any]:
    """Serve ``app`` under uvicorn with ``--ws`` wscodec; yields the ``uvicorn.Server``.

    Its port is ``server.port``. Leaving the block shuts uvicorn down as
    Ctrl-C would (connections get 1012).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    options.setdefault("lifespan", "off")
    options.setdefault("log_level", logging.WARNING)
    config = uvicorn.Config(app, ws=WebSocketProtocol, http=http, **options)
    server = uvicorn.Server(config)
    server.port = sock.getsockname()[1]  # type: ignore[attr-defined]
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it did not start
            await asyncio.sleep(0.01)
        yield server
    finally:
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
