"""Several worker processes serving one port, under a supervisor.

One threaded server is bounded by one interpreter. :func:`run` starts
``workers`` processes that accept connections on the same ``host:port``,
each running its own server, and supervises them::

    from wscodec import serve
    from wscodec.workers import run

    def echo(connection):
        for message in connection:
            connection.send(message)

    def make_server(sock):  # runs in each worker, with its listening socket
        return serve(echo, sock=sock)

    def main():  # call it under ``if __name__ == "__main__":``: workers are spawned
        run(make_server, "0.0.0.0", 8765, workers=4)  # until SIGTERM or Ctrl-C

How the port is shared: on Linux each worker opens its own listening socket
with ``SO_REUSEPORT`` and the kernel spreads new connections over them; the
supervisor keeps the port reserved with a bound socket that does not listen
(so ``port=0`` picks one free port for everyone). Elsewhere, or with
``reuse_port=False``, the supervisor opens one listening socket and every
worker inherits it and accepts on it.

Supervision: a worker that dies is replaced after a delay that doubles while
workers keep dying young (``min_restart_delay`` to ``max_restart_delay``).
SIGTERM or SIGINT (Ctrl-C) sends SIGTERM to every worker, which closes its
connections with 1001 and exits; workers still running after
``shutdown_timeout`` seconds are killed. A worker whose supervisor disappears
(even killed with SIGKILL) notices within half a second and shuts down too,
so no worker is left behind.

Workers are started with :mod:`multiprocessing`'s ``spawn`` method, so
``app_factory`` must be picklable: a module-level function, or a
:func:`functools.partial` of one. Each worker has its own memory: use a
:class:`~wscodec.brokers.redis.RedisBroker` to fan messages out across them.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Protocol, TextIO

__all__ = ["AppFactory", "ServerLike", "Supervisor", "can_reuse_port", "run"]

logger = logging.getLogger("wscodec.workers")


class ServerLike(Protocol):
    """What a worker runs: :class:`wscodec.Server` and the demo's server qualify."""

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`."""

    def shutdown(self) -> None:
        """Close every connection (1001) and stop."""


#: Called in each worker with its listening socket; returns the server to run.
AppFactory = Callable[[socket.socket], ServerLike]


def can_reuse_port() -> bool:
    """Whether ``SO_REUSEPORT`` balances connections over sockets here (Linux)."""
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def _socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


# The worker side ---------------------------------------------------------------------


def _worker_main(
    app_factory: AppFactory,
    host: str,
    port: int,
    shared: Optional[socket.socket],
    backlog: int,
    ready: Any,
) -> None:
    """A worker process: serve until SIGTERM/SIGINT or until the supervisor is gone."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervisor = os.getppid()
    if shared is None:
        sock = _socket(host, port, reuse_port=True)
        sock.listen(backlog)
    else:
        sock = shared
    server = app_factory(sock)
    thread = threading.Thread(target=server.serve_forever, name="wscodec-accept", daemon=True)
    thread.start()
    ready.send(os.getpid())
    ready.close()
    while thread.is_alive() and not stop.wait(0.25):
        if os.getppid() != supervisor:
            logger.warning("worker %d: the supervisor is gone; shutting down", os.getpid())
            break
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server.shutdown()
    thread.join(10)


# The supervisor ------------------------------------------------------------------------


@dataclass
class _Slot:
    index: int
    process: Optional[Any] = None
    ready: Optional[Any] = None  # the reading end of the worker's ready pipe
    started: float = 0.0
    restart_at: Optional[float] = None
    delay: float = 0.0
    pids: List[int] = field(default_factory=list)


class Supervisor:
    """Starts ``workers`` processes serving ``host:port`` and keeps them running.

    :meth:`start` reserves the port and starts the workers; :meth:`run`
    supervises them until SIGTERM/SIGINT (or :meth:`request_stop`), then
    :meth:`stop` shuts them all down. ``stream``, when given, gets one line
    per event (worker ready, exited, stopping) for people and tests to read;
    everything is also logged through the ``wscodec.workers`` logger.
    """

    def __init__(
        self,
        app_factory: AppFactory,
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        workers: int = 2,
        reuse_port: Optional[bool] = None,
        backlog: int = 128,
        shutdown_timeout: float = 10.0,
        min_restart_delay: float = 0.5,
        max_restart_delay: float = 10.0,
        stream: Optional[TextIO] = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.app_factory = app_factory
        self.host = host
        self.requested_port = port
        self.workers = workers
        self.reuse_port = can_reuse_port() if reuse_port is None else reuse_port
        self.backlog = backlog
        self.shutdown_timeout = shutdown_timeout
        self.min_restart_delay = min_restart_delay
        self.max_restart_delay = max_restart_delay
        self.stream = stream
        self._context = multiprocessing.get_context("spawn")
        self._socket: Optional[socket.socket] = None
        self._slots = [_Slot(index) for index in range(workers)]
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._stopping = False

    @property
    def port(self) -> int:
        """The port the workers listen on (the one picked, if ``port`` was 0)."""
        if self._socket is None:
            raise RuntimeError("not started")
        return int(self._socket.getsockname()[1])

    @property
    def pids(self) -> List[int]:
        """The pids of the workers running now."""
        return [
            slot.process.pid
            for slot in self._slots
            if slot.process is not None and slot.process.is_alive()
        ]

    def start(self) -> None:
        """Reserve the port (``OSError`` if it is taken) and start every worker."""
        self._socket = _socket(self.host, self.requested_port, reuse_port=self.reuse_port)
        if not self.reuse_port:
            self._socket.listen(self.backlog)
        mode = "SO_REUSEPORT" if self.reuse_port else "one shared listening socket"
        self._say(f"starting {self.workers} worker(s) on port {self.port} ({mode})")
        for slot in self._slots:
            slot.delay = self.min_restart_delay
            self._spawn(slot)

    def request_stop(self) -> None:
        """Make :meth:`run` return (safe from a signal handler or another thread)."""
        self._stopping = True
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT or :meth:`request_stop`, then stop; 0."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: self.request_stop())
        try:
            while not self._stopping:
                self._supervise_once()
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def stop(self) -> None:
        """SIGTERM every worker, wait up to ``shutdown_timeout``, then kill the rest."""
        self._stopping = True
        running = [slot.process for slot in self._slots if slot.process is not None]
        alive = [process for process in running if process.is_alive()]
        if alive:
            self._say(f"stopping {len(alive)} worker(s)")
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + self.shutdown_timeout
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in alive:
            if process.is_alive():
                self._say(f"{process.name} (pid {process.pid}) did not stop: killing it")
                process.kill()
                process.join(5)
        for process in running:
            process.close()
        for slot in self._slots:
            slot.process = None
            if slot.ready is not None:
                slot.ready.close()
                slot.ready = None
        if self._socket is not None:
            self._socket.close()
        self._wake_reader.close()
        self._wake_writer.close()
        if running:
            self._say("stopped")

    # Internals -------------------------------------------------------------------

    def _say(self, line: str, level: int = logging.INFO) -> None:
        logger.log(level, "%s", line)
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def _spawn(self, slot: _Slot) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        shared = None if self.reuse_port else self._socket
        process = self._context.Process(
            target=_worker_main,
            args=(self.app_factory, self.host, self.port, shared, self.backlog, writer),
            name=f"wscodec-worker-{slot.index}",
            daemon=False,
        )
        process.start()
        writer.close()
        slot.process, slot.ready = process, reader
        slot.started, slot.restart_at = time.monotonic(), None

    def _supervise_once(self) -> None:
        waitables: List[Any] = [self._wake_reader]
        for slot in self._slots:
            if slot.process is not None:
                waitables.append(slot.process.sentinel)
                if slot.ready is not None:
                    waitables.append(slot.ready)
        pending = [s.restart_at for s in self._slots if s.restart_at is not None]
        timeout = 1.0
        if pending:
            timeout = max(0.0, min(min(pending) - time.monotonic(), timeout))
        multiprocessing.connection.wait(waitables, timeout)
        try:
            while self._wake_reader.recv(64):
                pass
        except OSError:
            pass
        now = time.monotonic()
        for slot in self._slots:
            if self._stopping:
                return
            self._check(slot, now)

    def _check(self, slot: _Slot, now: float) -> None:
        process = slot.process
        if process is None:
            if slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot)
            return
        if slot.ready is not None and slot.ready.poll():
            try:
                pid = slot.ready.recv()
            except (EOFError, OSError):
                pid = None
            slot.ready.close()
            slot.ready = None
            if pid is not None:
                slot.pids.append(pid)
                self._say(f"worker {slot.index} (pid {pid}) ready")
        if process.is_alive():
            return
        process.join()
        code = process.exitcode
        lived = now - slot.started
        # Crash loops back off; a worker that served a while restarts promptly.
        if lived < 5.0:
            delay = slot.delay
            slot.delay = min(slot.delay * 2, self.max_restart_delay)
        else:
            delay = slot.delay = self.min_restart_delay
        how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
        self._say(
            f"worker {slot.index} (pid {process.pid}) exited with {how}; "
            f"restarting it in {delay:.1f} s",
            logging.WARNING if self.stream is None else logging.INFO,
        )
        process.close()
        if slot.ready is not None:
            slot.ready.close()
            slot.ready = None
        slot.process = None
        slot.restart_at = now + delay


def run(
    app_factory: AppFactory,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    workers: int = 2,
    reuse_port: Optional[bool] = None,
    shutdown_timeout: float = 10.0,
    stream: Optional[TextIO] = None,
) -> int:
    """Serve ``app_factory``'s server from ``workers`` processes until SIGTERM/SIGINT.

    See the module's documentation; the other options are those of
    :class:`Supervisor`. Returns 0 once every worker has stopped.
    """
    supervisor = Supervisor(
        app_factory,
        host,
        port,
        workers=workers,
        reuse_port=reuse_port,
        shutdown_timeout=shutdown_timeout,
        stream=stream,
    )
    supervisor.start()
    return supervisor.run()
