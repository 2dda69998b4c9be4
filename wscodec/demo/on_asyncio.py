"""The demo on the asyncio server (the default): its handler, outbox and broker bridge.

Every member is served on one event loop, in a thread of its own, so
:func:`~wscodec.demo.serve_demo` keeps the threaded server's interface
(:meth:`AsyncioDemoServer.serve_forever` and :meth:`~AsyncioDemoServer.shutdown`,
callable from any thread). A connection costs a few KiB and no thread: the
threaded demo needs three threads a member, and fell behind at 1,000 members.

Fan-out never waits for a member: each message is written to the member's
transport at once (:meth:`~wscodec.asyncio.connection.AsyncConnection.send_nowait`).
What a member has not read yet waits in that transport's buffer, bounded by
its share of the room's budget (:class:`~wscodec.demo.FanoutBudget`); a member
past it is closed with 1013 and its backlog dropped, as on the threaded server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, List, Optional, Set, Tuple

from ..asyncio.server import Server, ServerConnection
from ..brokers import Broker, Deliver, Unsubscribe
from ..exceptions import ConnectionClosed
from ..handshake import reject
from ..protocol import CloseCode
from .chat import (
    ChatLimits,
    Refused,
    Room,
    TokenBucket,
    _Outbox,
    joined,
    log_refusal,
    logger,
    read_join,
    read_message,
    send_stats,
)
from .limits import AddressCounter, FanoutBudget

__all__ = ["AsyncChatApp", "AsyncioDemoServer", "LoopBroker", "LoopOutbox"]


class LoopOutbox(_Outbox):
    """A member's outbox on the asyncio server: its transport's write buffer.

    :meth:`put` writes at once; a message that would take what waits past
    the member's share (:meth:`FanoutBudget.share`) closes it with 1013
    instead. The first message always fits an empty buffer.
    """

    def __init__(self, connection: ServerConnection, budget: FanoutBudget) -> None:
        super().__init__(connection, budget)
        self._closing: Optional[asyncio.Task[None]] = None

    def put(self, message: str) -> bool:
        """Write ``message``; False if the member is gone, or too far behind (then
        it is closed with 1013)."""
        budget = self.budget
        connection: ServerConnection = self.connection
        transport = connection.transport
        with budget.lock:
            if not self._open:
                return False
            if transport is None or transport.is_closing():
                self._discard()
                return False
            waiting = transport.get_write_buffer_size()
            overflow = waiting > 0 and waiting + len(message) > budget.share()
            if overflow:
                self._discard()
                budget.dropped += 1
        if overflow:
            logger.warning(
                "%s: %d bytes wait to be sent, too far behind; closing with 1013",
                connection.remote_address,
                waiting,
            )
            self._closing = asyncio.ensure_future(
                connection.close(CloseCode.TRY_AGAIN_LATER, "too slow: messages piled up")
            )
            return False
        try:
            connection.send_nowait(message)
        except ConnectionClosed:
            self.close()
            return False
        return True


class LoopBroker(Broker):
    """``broker`` with its events delivered on the event loop's thread.

    A room's state and its members' transports belong to the loop: an event
    published on the loop (:class:`~wscodec.brokers.LocalBroker`) is handled
    at once, one arriving on another thread (Redis's subscriber) is handed
    to the loop, in order.
    """

    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.loop = loop
        self._loop_thread = threading.get_ident()

    def publish(self, channel: str, message: str, *, keep: int = 0) -> None:
        self.broker.publish(channel, message, keep=keep)

    def subscribe(self, channel: str, callback: Deliver) -> Unsubscribe:
        def deliver(message: str) -> None:
            if threading.get_ident() == self._loop_thread:
                callback(message)
                return
            try:
                self.loop.call_soon_threadsafe(callback, message)
            except RuntimeError:  # the loop is closed: the demo is stopping
                pass

        return self.broker.subscribe(channel, deliver)

    def history(self, channel: str, limit: int) -> Optional[List[str]]:
        return self.broker.history(channel, limit)

    def close(self) -> None:
        self.broker.close()


class AsyncChatApp:
    """The WebSocket side of the demo on the asyncio server: ``handle`` is its handler.

    The same rules and room as :class:`~wscodec.demo.ChatApp`; create it, and
    call :meth:`start`, on the event loop.
    """

    def __init__(self, room: Room, limits: ChatLimits, stats_interval: float = 1.0) -> None:
        self.room = room
        self.limits = limits
        self.stats_interval = stats_interval
        self._stats_task: Optional[asyncio.Task[None]] = None

    def start(self) -> None:
        """Start sending the stats to connected clients every ``stats_interval`` seconds."""
        if self._stats_task is None:
            self._stats_task = asyncio.ensure_future(self._stats_loop())

    def stop(self) -> None:
        """Stop the stats and detach the room from its broker."""
        if self._stats_task is not None:
            self._stats_task.cancel()
        self.room.close()

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            send_stats(self.room)

    async def handle(self, connection: ServerConnection) -> None:
        """Serve one chat connection: the join, then its messages, then the leave."""
        limits, room = self.limits, self.room
        try:
            try:
                raw = await asyncio.wait_for(connection.recv(), limits.join_timeout)
            except asyncio.TimeoutError:
                raise Refused(CloseCode.POLICY_VIOLATION, "join expected") from None
            name = joined(room, connection, read_join(raw, limits), limits)
        except Refused as refused:
            await _refuse(connection, refused)
            return
        bucket = TokenBucket(limits.rate, limits.burst)
        try:
            async for raw in connection:
                text = read_message(raw, limits, bucket)
                if text and room.admit(connection):
                    room.say(name, text)
        except Refused as refused:
            await _refuse(connection, refused)
        finally:
            room.leave(connection)


async def _refuse(connection: ServerConnection, refused: Refused) -> None:
    log_refusal(connection, refused)
    await connection.close(refused.code, refused.reason)


class _DemoConnection(ServerConnection):
    """A connection counted against its IP address from accept: 503 past the limit."""

    __slots__ = ("_address", "_addresses")

    def __init__(self, server: Server, addresses: AddressCounter) -> None:
        super().__init__(server)
        self._addresses = addresses
        self._address: Optional[str] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        address = self._addresses.take(self.remote_address)
        if address is None:
            self.logger.warning(
                "refusing %s: %d connections open from its address",
                self.remote_address,
                self._addresses.limit,
            )
            self._reader = None  # no handshake: the 503 is the answer
            self._refuse(
                reject(503, "too many connections from your address", [("Retry-After", "1")])
            )
            return
        self._address = address

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        super().connection_lost(exc)
        if self._address is not None:
            self._addresses.give_back(self._address)
            self._address = None


Setup = Callable[[], Coroutine[Any, Any, Tuple[Server, AsyncChatApp]]]


class AsyncioDemoServer:
    """The demo's asyncio server and chat, on an event loop in a thread of their own.

    Made by :func:`~wscodec.demo.serve_demo`; every method may be called
    from any thread.
    """

    def __init__(self, setup: Setup, close_timeout: float) -> None:
        self._close_timeout = close_timeout
        self._loop = asyncio.new_event_loop()
        self._stopping: Optional[asyncio.Future[Tuple[int, str]]] = None
        ready: concurrent.futures.Future[Tuple[Server, AsyncChatApp]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(setup, ready), name="wscodec-demo-loop", daemon=True
        )
        self._thread.start()
        self.server, self.app = ready.result()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def connections(self) -> List[ServerConnection]:
        """The open connections (a snapshot)."""

        async def snapshot() -> Set[ServerConnection]:
            return self.server.connections

        if not self._thread.is_alive():
            return []
        try:
            return list(self.submit(snapshot()).result(5))
        except (RuntimeError, concurrent.futures.CancelledError):
            return []  # the loop stopped meanwhile

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run ``coroutine`` on the demo's event loop, from any other thread.

        For example ``server.submit(connection.close(1012, "restart")).result()``:
        the connections belong to the loop, so their coroutines run there.
        """
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (the loop runs already; this waits for it)."""
        self._thread.join()

    def shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Close every connection with ``code`` and stop (within about ``close_timeout``)."""

        def stop() -> None:
            if self._stopping is not None and not self._stopping.done():
                self._stopping.set_result((code, reason))

        try:
            self._loop.call_soon_threadsafe(stop)
        except RuntimeError:  # the loop is closed: stopped already
            pass
        self._thread.join(self._close_timeout + 10)

    def __enter__(self) -> AsyncioDemoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _run(self, setup: Setup, ready: concurrent.futures.Future[Any]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main(setup, ready))
        finally:
            self._loop.close()

    async def _main(self, setup: Setup, ready: concurrent.futures.Future[Any]) -> None:
        self._stopping = asyncio.get_running_loop().create_future()
        try:
            server, app = await setup()
        except BaseException as error:
            ready.set_exception(error)
            return
        ready.set_result((server, app))
        app.start()
        server.close_with = await self._stopping
        app.stop()
        server.close()
        await server.wait_closed()
