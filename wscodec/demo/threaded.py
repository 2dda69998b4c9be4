"""The demo on the threaded server (``serve_demo(..., server="threaded")``).

A thread per connection, plus a short-lived one per member that falls
behind (:class:`~wscodec.demo.chat.ChatApp`'s outbox): simple, and fine for
a few hundred members. The asyncio server is the default
(:mod:`wscodec.demo.on_asyncio`).
"""

from __future__ import annotations

import socket
import threading
from typing import Any, List

from ..handshake import reject
from ..sync.server import Server, ServerConnection
from .chat import ChatApp
from .limits import AddressCounter

__all__ = ["ThreadedDemoServer"]


class ThreadedDemoServer:
    """A wscodec :class:`~wscodec.sync.server.Server` running the chat, and the chat itself."""

    def __init__(self, server: Server, app: ChatApp) -> None:
        self.server = server
        self.app = app

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def connections(self) -> List[ServerConnection]:
        return self.server.connections

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`."""
        self.server.serve_forever()

    def shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Close every connection with ``code`` and stop."""
        self.app.stop()
        self.server.shutdown(code, reason)

    def __enter__(self) -> ThreadedDemoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


class PerAddressServer(Server):
    """The threaded server with a per-address connection limit, counted from accept."""

    def __init__(self, *args: Any, addresses: AddressCounter, **options: Any):
        super().__init__(*args, **options)
        self.addresses = addresses

    def _serve_connection(self, sock: socket.socket, address: Any) -> None:
        key = self.addresses.take(address)
        if key is None:
            self.logger.warning(
                "refusing %s: %d connections open from its address", address, self.addresses.limit
            )
            self._refuse(
                sock, reject(503, "too many connections from your address", [("Retry-After", "1")])
            )
            with self._lock:
                self._threads.discard(threading.current_thread())
            return
        try:
            super()._serve_connection(sock, address)
        finally:
            self.addresses.give_back(key)
