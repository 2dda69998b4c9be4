"""Sending without blocking: the ``send_nowait()`` side of a :class:`SyncConnection`.

A message the socket takes at once is written in the caller's thread
(:meth:`NowaitSending.send_now`); otherwise it waits in the connection's
outbox for a short-lived drain thread. What a frame's first write left over
goes out before any other frame, so frames never interleave.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any, List

from ..connection import _OPEN, Connection
from ..exceptions import ConnectionClosed
from ..sockets import can_send_without_waiting, send_without_waiting
from .messages import Data, Outbox
from .threads import start_library_thread

__all__ = ["NowaitSending"]


class NowaitSending:
    """The non-blocking send path, mixed into :class:`~wscodec.sync.connection.SyncConnection`."""

    # Set by SyncConnection.__init__.
    socket: socket.socket
    protocol: Connection
    logger: logging.Logger
    remote_address: Any
    id: uuid.UUID
    write_limit: int
    _mutex: threading.Lock
    _message_lock: threading.Lock
    _done: threading.Event
    _outbox: Outbox
    _unsent: List[memoryview]
    _write_shut: bool

    if TYPE_CHECKING:

        def send(self, message: Any) -> None: ...

        def _abort(self) -> None: ...

        def _flush(self) -> None: ...

    def send_nowait(self, message: Data) -> bool:
        """Queue a message without blocking; False if the connection is not open.

        A thread of its own writes the queue out. A peer that does not read
        while more than ``write_limit`` bytes wait is disconnected (1006): one
        slow reader must not hold up the sender, nor grow memory without bound.
        """
        if self.protocol.state is not _OPEN or self._done.is_set():
            return False
        if self._outbox.idle() and self.send_now(message):
            return True
        start = self._outbox.put(message)
        if start is None:
            self.logger.warning(
                "%s: more than %d bytes wait to be written; dropping the connection",
                self.remote_address,
                self.write_limit,
            )
            self._abort()
            return False
        if start:
            drain = threading.Thread(target=self._drain, name=f"wscodec-drain-{self.id}")
            drain.daemon = True
            try:
                start_library_thread(drain)
            except RuntimeError as error:  # no thread to write with: as if the queue overflowed
                self.logger.warning(
                    "%s: cannot start a thread to write (%s); dropping the connection",
                    self.remote_address,
                    error,
                )
                self._outbox.clear()
                self._abort()
                return False
        return True

    def send_now(self, message: Data) -> bool:
        """Write ``message`` at once if that needs no waiting; whether it was sent.

        False, with nothing sent, while another thread writes, when the socket
        cannot be written without waiting (TLS), or when the connection is not
        open: queue the message then (as :meth:`send_nowait` does). True once
        the frame is handed to the socket; if the socket took only part of it,
        a thread of the connection's own writes the rest, before any other
        frame. This is how :meth:`send_nowait` and :func:`wscodec.broadcast`
        reach a peer that keeps up without starting a thread per message.
        """
        if not can_send_without_waiting(self.socket):
            return False
        if not self._message_lock.acquire(False):  # a fragmented message is being sent
            return False
        try:
            if not self._mutex.acquire(False):
                return False
            try:
                if (
                    self._unsent
                    or self._write_shut
                    or self.protocol.state is not _OPEN
                    or self._done.is_set()
                ):
                    return False
                if isinstance(message, str):
                    self.protocol.send_text(message)
                else:
                    self.protocol.send_binary(message)
                try:
                    self._unsent = send_without_waiting(self.socket, self._outgoing())
                except OSError as error:
                    self.logger.info(
                        "%s: write failed (%s); dropping the connection", self.remote_address, error
                    )
                    self._abort()
                    return True  # as a write that failed later: the reader sees the end
            finally:
                self._mutex.release()
        finally:
            self._message_lock.release()
        if self._unsent:
            writer = threading.Thread(target=self._write_unsent, name=f"wscodec-write-{self.id}")
            writer.daemon = True
            try:
                start_library_thread(writer)
            except RuntimeError:
                self._abort()  # nobody to finish the frame: the connection cannot go on
        return True

    def _drain(self) -> None:
        while True:
            message = self._outbox.take()
            if message is None:
                return
            try:
                self.send(message)
            except (ConnectionClosed, OSError):
                self._outbox.clear()
                return

    def _outgoing(self) -> List[Any]:
        """What to write next, in order: a frame's unsent tail, then what the protocol made."""
        buffers = self.protocol.buffers_to_send()
        if self._unsent:
            buffers = self._unsent + buffers
            self._unsent = []
        return buffers

    def _write_unsent(self) -> None:
        """A short-lived thread's target: write the tail send_now() left."""
        with self._mutex:
            try:
                self._flush()
            except (ConnectionClosed, OSError):
                pass
