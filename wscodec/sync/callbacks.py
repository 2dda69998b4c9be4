"""An event-callback client in the style of the browser's WebSocket API.

::

    import threading

    from wscodec import CallbackClient, serve


    def echo(connection):
        for message in connection:
            connection.send(message)


    def on_message(client, message):
        print("received", message)
        client.close()


    with serve(echo, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = CallbackClient(
            f"ws://127.0.0.1:{server.port}/",
            on_open=lambda client: client.send("hi"),
            on_message=on_message,
        )
        client.run_forever()  # until closed; or client.start() for a background thread

Callbacks: ``on_open(client)``, ``on_message(client, message)``,
``on_error(client, exception)`` and ``on_close(client, code, reason)``; like
``onclose`` in a browser, ``on_close`` always runs last, with 1006 when the
connection could not be opened or dropped without a close frame.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from ..exceptions import ConnectionClosed
from ..protocol import CloseCode
from .client import ClientConnection, connect
from .connection import Data

__all__ = ["CallbackClient"]

logger = logging.getLogger("wscodec.client")


class CallbackClient:
    """A client that calls functions on open, message, error and close."""

    def __init__(
        self,
        uri: str,
        *,
        on_open: Optional[Callable[[CallbackClient], Any]] = None,
        on_message: Optional[Callable[[CallbackClient, Data], Any]] = None,
        on_error: Optional[Callable[[CallbackClient, BaseException], Any]] = None,
        on_close: Optional[Callable[[CallbackClient, int, str], Any]] = None,
        **connect_options: Any,
    ) -> None:
        self.uri = uri
        self.on_open = on_open
        self.on_message = on_message
        self.on_error = on_error
        self.on_close = on_close
        self.connect_options = connect_options
        self.connection: Optional[ClientConnection] = None
        self._thread: Optional[threading.Thread] = None

    def run_forever(self) -> None:
        """Connect and dispatch events until the connection closes."""
        code, reason = int(CloseCode.ABNORMAL_CLOSURE), ""
        try:
            self.connection = connect(self.uri, **self.connect_options)
            self._call(self.on_open)
            while True:
                message = self.connection.recv()
                self._call(self.on_message, message)
        except ConnectionClosed as closed:
            code, reason = closed.code, closed.reason
        except Exception as error:
            self._call(self.on_error, error)
            if self.connection is not None:
                self.connection.close(CloseCode.INTERNAL_ERROR, "client error")
                code = self.connection.close_code or code
                reason = self.connection.close_reason
        self._call(self.on_close, code, reason)

    def start(self) -> threading.Thread:
        """Run :meth:`run_forever` in a daemon thread; returns the thread."""
        self._thread = threading.Thread(target=self.run_forever, name="wscodec-callbacks")
        self._thread.daemon = True
        self._thread.start()
        return self._thread

    def send(self, message: Data) -> None:
        if self.connection is None:
            raise RuntimeError("not connected yet; send from on_open or later")
        self.connection.send(message)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        if self.connection is not None:
            self.connection.close(code, reason)

    def _call(self, callback: Optional[Callable[..., Any]], *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(self, *args)
        except Exception as error:
            logger.exception("error in a wscodec callback")
            if callback is not self.on_error and self.on_error is not None:
                try:
                    self.on_error(self, error)
                except Exception:
                    logger.exception("error in on_error")
