"""The servers ``wscodec serve`` runs, as factories a worker process can call.

Each factory takes the listening socket (and picklable options) and returns
a server with ``serve_forever()`` and ``shutdown()``, so that it works in one
process and under :mod:`wscodec.workers` alike. Every 101 response carries an
``X-Wscodec-Worker`` header with the serving process's pid, which shows how
connections spread over the workers.

- ``demo``: the chat demo (page on ``/``, WebSocket on ``/ws``);
- ``echo``: every message is sent back to its sender;
- ``relay``: every text message is published to the broker and so sent to
  every connection of every worker and node (the fan-out benchmark's server).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from typing import Any, Callable, Dict, List, Optional

from .brokers import Broker, broker_from_url
from .protocol import CloseCode
from .sync.broadcast import broadcast
from .sync.server import Server, ServerConnection, serve

__all__ = ["APPS", "BrokerOwningServer", "app_factory", "demo_app", "echo_app", "relay_app"]

logger = logging.getLogger("wscodec.apps")

#: The header naming the process that accepted a WebSocket connection.
WORKER_HEADER = "X-Wscodec-Worker"

#: The channel the relay app publishes on.
RELAY_CHANNEL = "relay"


def _worker_headers() -> List[Any]:
    return [(WORKER_HEADER, str(os.getpid()))]


class BrokerOwningServer:
    """A server and the broker made for it: shutting down the server closes both."""

    def __init__(self, server: Any, broker: Broker) -> None:
        self.server = server
        self.broker = broker

    @property
    def port(self) -> int:
        return int(self.server.port)

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`."""
        self.server.serve_forever()

    def shutdown(self) -> None:
        """Close every connection with 1001, then the broker."""
        try:
            self.server.shutdown()
        finally:
            self.broker.close()


def demo_app(
    sock: socket.socket, *, broker_url: Optional[str] = None, server: str = "asyncio"
) -> BrokerOwningServer:
    """The chat demo on ``sock``, its room carried by the broker ``broker_url`` names;
    ``server`` is ``"asyncio"`` or ``"threaded"`` (:func:`~wscodec.demo.serve_demo`)."""
    from .demo import serve_demo

    broker = broker_from_url(broker_url)
    try:
        demo = serve_demo(
            None,
            0,
            server=server,
            sock=sock,
            broker=broker,
            extra_headers=_worker_headers(),
            open_timeout=5.0,
            close_timeout=2.0,
        )
    except BaseException:
        broker.close()
        raise
    return BrokerOwningServer(demo, broker)


def _echo(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


def echo_app(sock: socket.socket, *, max_size: Optional[int] = 2**24) -> Server:
    """Send every message back to its sender."""
    return serve(
        _echo,
        sock=sock,
        max_size=max_size,
        extra_headers=_worker_headers(),
        close_timeout=2.0,
    )


def relay_app(
    sock: socket.socket, *, broker_url: Optional[str] = None, **options: Any
) -> BrokerOwningServer:
    """Publish every text message on the broker; send what it carries to every connection.

    Binary messages are refused with 1003 (brokers carry text).
    """
    broker = broker_from_url(broker_url)

    def handler(connection: ServerConnection) -> None:
        for message in connection:
            if not isinstance(message, str):
                connection.close(CloseCode.UNSUPPORTED_DATA, "text messages only")
                return
            broker.publish(RELAY_CHANNEL, message)

    options.setdefault("close_timeout", 2.0)
    options.setdefault("extra_headers", _worker_headers())
    try:
        server = serve(handler, sock=sock, **options)
    except BaseException:
        broker.close()
        raise

    def deliver(message: str) -> None:
        broadcast(server.connections, message)

    broker.subscribe(RELAY_CHANNEL, deliver)
    return BrokerOwningServer(server, broker)


#: ``wscodec serve --app NAME``.
APPS: Dict[str, Callable[..., Any]] = {"demo": demo_app, "echo": echo_app, "relay": relay_app}


def app_factory(name: str, **options: Any) -> Callable[[socket.socket], Any]:
    """A picklable factory for ``--app name`` with its options."""
    return functools.partial(APPS[name], **options)
