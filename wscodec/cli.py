"""The ``wscodec`` command (also ``python -m wscodec``).

Subcommands:

- ``wscodec`` or ``wscodec demo``: the live chat demo, page and WebSocket on one port;
- ``wscodec echo``: a bare echo server, for benchmarks and conformance suites;
- ``wscodec serve``: the demo (or ``--app echo|relay``) from ``--workers``
  processes, fanned out across them through ``--broker redis://...``;
- ``wscodec connect URI``: an interactive client; lines typed are sent,
  messages received are printed after ``< ``;
- ``wscodec info``: version, backend and build details.

Errors a user can cause (a port in use, a bad URI, a refused connection) are
one ``wscodec: error: ...`` line on stderr and a non-zero exit status: 1 for
a failure at run time, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import errno
import logging
import platform
import signal
import socket
import ssl
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Union

from . import __version__, _backend
from .events.server import EventConnection, EventHandler, EventServer, serve_events
from .exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from .sync.client import connect
from .sync.connection import Data, SyncConnection
from .sync.server import Server, ServerConnection, serve

__all__ = ["CommandError", "build_parser", "cpu_features", "info", "main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Exit statuses.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

logger = logging.getLogger("wscodec.cli")


class CommandError(Exception):
    """A failure to report as one line, with the exit status to use."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


# Error messages ----------------------------------------------------------------------

_ERRNO_TEXT = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "address not available on this machine",
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def describe_os_error(error: OSError) -> str:
    """A short lower-case description of a socket error."""
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    text = _ERRNO_TEXT.get(error.errno or 0) or error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def host_port(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# wscodec info ----------------------------------------------------------------------

_X86_FEATURES = ["sse2", "ssse3", "sse4_2", "avx2", "avx512f", "avx512bw"]
_ARM_FEATURES = ["asimd", "sve", "sve2"]


def cpu_features() -> List[str]:
    """The SIMD features of this CPU that matter to the kernels (Linux only; else [])."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    return [f for f in _X86_FEATURES + _ARM_FEATURES if f in flags]
    except OSError:
        pass
    return []


def _kernel_isa(machine: str) -> str:
    if machine.lower() in ("x86_64", "amd64"):
        return "SSE2, the x86-64 baseline"
    if machine.lower() in ("aarch64", "arm64"):
        return "NEON, the AArch64 baseline"
    return f"the {machine} baseline"


def info(stream: Optional[TextIO] = None) -> int:
    """Print the version, the active backend, why the compiled one is not in use, and the CPU."""
    out = stream or sys.stdout
    print(f"wscodec {__version__}", file=out)
    print(f"python {sys.version.split()[0]} ({sys.implementation.name})", file=out)
    print(f"backend: {_backend.BACKEND}", file=out)
    compiled = _backend.compiled_codec
    if compiled is None:
        print(f"compiled module: missing: {_backend.compiled_error}", file=out)
    else:
        print(f"compiled module: {compiled.__file__}", file=out)
        if _backend.BACKEND == "cython":  # the pure twin never releases the GIL
            thresholds = getattr(compiled, "NOGIL_THRESHOLDS", {"mask": compiled.NOGIL_THRESHOLD})
            sizes = ", ".join(f"{name} {size} bytes" for name, size in thresholds.items())
            print(f"GIL released from: {sizes}", file=out)
    if _backend.BACKEND == "cython":
        twins = _backend.twins_in_use()
        print(f"compiled protocol: {', '.join(twins) or 'none (not built)'}", file=out)
    if _backend.EXTENSION_ERROR and _backend.EXTENSION_ERROR != _backend.compiled_error:
        print(f"compiled module not in use: {_backend.EXTENSION_ERROR}", file=out)
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None:  # Python 3.13+: False on a free-threaded build
        print(f"GIL enabled: {gil_enabled()}", file=out)
    machine = platform.machine() or "unknown"
    features = cpu_features()
    print(f"cpu: {machine}" + (f" ({' '.join(features)})" if features else ""), file=out)
    kernels = None if compiled is None else getattr(compiled, "KERNELS", None)
    if compiled is None:
        print("kernels: pure Python, no CPU-specific code", file=out)
    elif _backend.BACKEND == "python":
        # The compiled module is loaded but not used: its kernel levels would mislead.
        print(
            f"kernels: pure Python, no CPU-specific code ({_backend.EXTENSION_ERROR}; "
            "the compiled kernels are not in use)",
            file=out,
        )
    elif kernels is not None:
        chosen = ", ".join(f"{name} {path}" for name, path in kernels.items())
        used = [name for name, present in compiled.cpu_features().items() if present]
        print(f"kernels use: {chosen} (chosen at run time)", file=out)
        print(f"SIMD levels built in: {', '.join(compiled.SIMD_LEVELS)}", file=out)
        print(f"CPU features the kernels can use: {', '.join(used) or 'none'}", file=out)
    else:
        print(f"kernels use: portable word loops for {_kernel_isa(machine)}", file=out)
    return EXIT_OK


# Servers ---------------------------------------------------------------------------


def _listen(host: str, port: int, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except OSError as error:
        where = host_port(host, port)
        raise CommandError(f"cannot listen on {where}: {describe_os_error(error)}") from None


def run_until_interrupted(server: Any, stream: TextIO, banner: Sequence[str] = ()) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, then close every connection with 1001.

    The signals only set a flag that the main thread polls: no
    KeyboardInterrupt is raised at an arbitrary point (inside a lock or a
    join), so the shutdown always runs in full. ``banner`` is printed once
    the signals are handled: whoever reads it and presses Ctrl-C gets the
    clean shutdown (printed before, a Ctrl-C could beat the handlers).
    """
    thread = threading.Thread(target=server.serve_forever, name="wscodec-accept", daemon=True)
    stopping: List[int] = []

    def request_stop(signum: int, frame: Any) -> None:
        stopping.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        thread.start()
        for line in banner:
            print(line, file=stream, flush=True)
        while thread.is_alive() and not stopping:
            time.sleep(0.1)
        status = EXIT_OK if stopping else EXIT_FAILURE  # or the accept loop died by itself
        count = len(server.connections)
        print(f"shutting down: closing {count} connection(s) with 1001", file=stream, flush=True)
        server.shutdown()
        thread.join(5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("stopped", file=stream, flush=True)
    return status


def url_host(host: str) -> str:
    """The host to put in a URL to reach a server listening on ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def demo(args: argparse.Namespace) -> int:
    """``wscodec demo``: the chat page and its WebSocket endpoint on one port."""
    from .demo import WS_PATH, serve_demo

    if args.workers > 1:  # scale-out (issue 11): the supervisor runs the demo
        args.app = "demo"
        return serve_workers(args)
    broker = _broker(args.broker)
    server = _listen(
        args.host,
        args.port,
        lambda: serve_demo(
            args.host,
            args.port,
            server=args.demo_server,
            broker=broker,
            allowed_origins=args.origin,
            open_timeout=5.0,
            close_timeout=2.0,
        ),
    )
    base = f"{url_host(args.host)}:{server.port}"
    banner = (
        f"wscodec {__version__} demo chat, backend: {_backend.BACKEND}, server: {args.demo_server}",
        f"open http://{base}/ in a browser (WebSocket endpoint: ws://{base}{WS_PATH})",
        "press Ctrl-C to stop",
    )
    return run_until_interrupted(server, sys.stdout, banner)


def echo_handler(connection: ServerConnection) -> None:
    """Send every message back as it came (text as text, binary as binary)."""
    for message in connection:
        connection.send(message)


async def echo_coroutine(connection: Any) -> None:
    """The asyncio twin of :func:`echo_handler`."""
    async for message in connection:
        await connection.send(message)


def run_asyncio_server(
    args: argparse.Namespace, kind: str, handler: Callable[[Any], Any], options: Dict[str, Any]
) -> int:
    """Serve ``handler`` on :mod:`wscodec.asyncio` until Ctrl-C or SIGTERM (then 1001)."""
    import asyncio

    from .asyncio import serve as serve_asyncio

    async def main() -> int:
        try:
            server = await serve_asyncio(handler, args.host, args.port, **options)
        except OSError as error:
            where = host_port(args.host, args.port)
            raise CommandError(f"cannot listen on {where}: {describe_os_error(error)}") from None
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def request_stop() -> None:
            if not stop.done():
                stop.set_result(None)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, request_stop)
        port = server.sockets[0].getsockname()[1]
        flavour = "uvloop" if args.uvloop else "asyncio"
        print(
            f"wscodec {__version__} {kind} on ws://{url_host(args.host)}:{port}/,"
            f" backend: {_backend.BACKEND}, event loop: {flavour}"
        )
        print("press Ctrl-C to stop", flush=True)
        await stop
        count = len(server.connections)
        print(f"shutting down: closing {count} connection(s) with 1001", flush=True)
        server.close()
        await server.wait_closed()
        print("stopped", flush=True)
        return EXIT_OK

    if args.uvloop:
        import uvloop

        return int(uvloop.run(main()))
    return asyncio.run(main())


class EchoHandler(EventHandler):
    """The event-driven twin of :func:`echo_handler`."""

    def on_message(self, connection: EventConnection, message: Data) -> None:
        connection.send(message)


def echo(args: argparse.Namespace) -> int:
    """``wscodec echo``: a bare echo server on any path."""
    max_size = None if args.max_size == 0 else args.max_size
    options: Dict[str, Any] = {"max_size": max_size, "close_timeout": 2.0}
    if args.asyncio or args.uvloop:
        return run_asyncio_server(args, "echo server", echo_coroutine, options)
    server: Union[Server, EventServer] = _listen(
        args.host,
        args.port,
        (lambda: serve_events(EchoHandler, args.host, args.port, **options))
        if args.events
        else (lambda: serve(echo_handler, args.host, args.port, **options)),
    )
    base = f"{url_host(args.host)}:{server.port}"
    kind = "event-driven echo server" if args.events else "echo server"
    banner = (
        f"wscodec {__version__} {kind} on ws://{base}/, backend: {_backend.BACKEND}",
        "press Ctrl-C to stop",
    )
    return run_until_interrupted(server, sys.stdout, banner)


# wscodec serve: worker processes and a broker (issue 11) ---------------------------


def _broker(url: Optional[str]) -> Any:
    """The broker ``--broker`` names, or a one-line error."""
    from .brokers import broker_from_url

    try:
        return broker_from_url(url)
    except (ValueError, ImportError) as error:
        raise CommandError(str(error), EXIT_USAGE) from None


def serve_workers(args: argparse.Namespace) -> int:
    """``wscodec serve``: ``--app`` from ``--workers`` processes, fanned out by ``--broker``."""
    from .apps import app_factory
    from .workers import Supervisor

    _broker(args.broker).close()  # a bad URL or a missing redis package fails here, once
    options: dict[str, Any] = {}
    if args.app in ("demo", "relay"):
        options["broker_url"] = args.broker
    if args.app == "demo":
        options["server"] = getattr(args, "demo_server", "asyncio")
    supervisor = Supervisor(
        app_factory(args.app, **options),
        args.host,
        args.port,
        workers=args.workers,
        shutdown_timeout=5.0,
        stream=sys.stdout,
    )
    _listen(args.host, args.port, supervisor.start)
    scheme = "http" if args.app == "demo" else "ws"
    print(
        f"wscodec {__version__} {args.app} on {scheme}://{url_host(args.host)}:{supervisor.port}/ "
        f"with {args.workers} worker(s), broker: {args.broker or 'local'}",
        flush=True,
    )
    if args.workers > 1 and not args.broker and args.app != "echo":
        print("note: without --broker each worker fans out to its own connections only")
    print("press Ctrl-C to stop", flush=True)
    supervisor.run()
    return EXIT_OK


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: not a number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"invalid count {count}: at least 1")
    return count


def _size(text: str) -> int:
    """A byte count for ``--max-size``: a whole number, 0 or more."""
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: not a whole number") from None
    if size < 0:
        raise argparse.ArgumentTypeError(f"invalid size {size}: negative (0 means no limit)")
    return size


def _add_scale_options(parser: argparse.ArgumentParser, workers: int) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        default=workers,
        metavar="N",
        help=f"processes accepting on the port, restarted if they die (default {workers})",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        default=None,
        help="fan-out backend: redis://HOST:PORT/DB shares rooms across workers and "
        "machines (default: in-process)",
    )


# wscodec connect -------------------------------------------------------------------


def _render(message: Data) -> str:
    if isinstance(message, str):
        return f"< {message}"
    return f"< (binary, {len(message)} bytes) {message.hex()}"


def _open(uri: str, timeout: float) -> SyncConnection:
    try:
        return connect(uri, open_timeout=timeout)
    except InvalidURI as error:
        raise CommandError(f"invalid URI: {error}", EXIT_USAGE) from None
    except InvalidStatus as error:
        response = error.response
        raise CommandError(
            f"cannot connect to {uri}: the server answered HTTP {response.status} "
            f"{response.reason} instead of switching to WebSocket"
        ) from None
    except InvalidHandshake as error:
        raise CommandError(f"cannot connect to {uri}: {error}") from None
    except (OSError, TimeoutError) as error:
        raise CommandError(f"cannot connect to {uri}: {describe_os_error(error)}") from None


def client(args: argparse.Namespace, stdin: Optional[TextIO] = None) -> int:
    """``wscodec connect URI``: send stdin's lines, print what comes back.

    At the end of input the client waits until nothing has arrived for
    ``--linger`` seconds (so replies to the last lines are printed), at most
    ten times that, then closes with 1000. Exits 0 on a normal close (1000 or 1001), 1 otherwise.
    """
    source = stdin or sys.stdin
    connection = _open(args.uri, args.timeout)
    print(f"connected to {args.uri}; type messages, end with Ctrl-D", file=sys.stderr, flush=True)
    last_activity = [time.monotonic()]

    def pump() -> None:
        try:
            for line in source:
                connection.send(line.rstrip("\r\n"))
                last_activity[0] = time.monotonic()
            # Until nothing arrived for --linger seconds, but no more than ten
            # times that: a server that never stops talking must not keep us.
            give_up = time.monotonic() + 10 * args.linger
            while time.monotonic() < give_up and time.monotonic() - last_activity[0] < args.linger:
                if connection.wait_closed(0.05):
                    return
            connection.close()
        except (ConnectionClosed, OSError, ValueError):
            return  # the connection (or stdin) closed under us

    sender = threading.Thread(target=pump, name="wscodec-stdin", daemon=True)
    sender.start()
    try:
        while True:
            try:
                message = connection.recv(timeout=0.25)
            except TimeoutError:
                continue
            except ConnectionClosed:
                break
            last_activity[0] = time.monotonic()
            print(_render(message), flush=True)
    except KeyboardInterrupt:
        connection.close()
    code, reason = connection.close_code, connection.close_reason
    described = f"{code}" + (f" ({reason})" if reason else "")
    if code in (1000, 1001):
        print(f"connection closed: {described}", file=sys.stderr, flush=True)
        return EXIT_OK
    raise CommandError(f"connection closed: {described}")


# The parser ------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: not between 0 and 65535")
    return port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on, 0 for any free one (default {DEFAULT_PORT})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``wscodec`` command."""
    parser = argparse.ArgumentParser(
        prog="wscodec",
        description="A fast and strict WebSocket (RFC 6455) library. "
        "Without a command, runs the live chat demo.",
    )
    parser.add_argument("--version", action="version", version=f"wscodec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo_parser = commands.add_parser(
        "demo",
        help="the live chat demo (the default)",
        description="Serve a chat room: the page over HTTP on / and its WebSocket on /ws, "
        "on one port. Ctrl-C closes every connection with 1001 and stops.",
    )
    _add_listen_options(demo_parser)
    _add_scale_options(demo_parser, workers=1)
    demo_parser.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept WebSockets from pages of ORIGIN, e.g. https://chat.example.com "
        "behind a proxy (repeatable; default: only the host and port listened on)",
    )
    server_kind = demo_parser.add_mutually_exclusive_group()
    server_kind.add_argument(
        "--asyncio",
        dest="demo_server",
        action="store_const",
        const="asyncio",
        help="serve on the asyncio server: one event loop for every member (the default)",
    )
    server_kind.add_argument(
        "--threaded",
        dest="demo_server",
        action="store_const",
        const="threaded",
        help="serve on the threaded server: a thread per connection",
    )
    demo_parser.set_defaults(run=demo, demo_server="asyncio")

    serve_parser = commands.add_parser(
        "serve",
        help="an app from worker processes, fanned out through a broker",
        description="Serve --app (demo: the chat; echo; relay: every text message to "
        "every connection) from --workers processes on one port, restarting those that "
        "die; --broker redis://... fans messages out across workers and machines. "
        "Ctrl-C or SIGTERM stops every worker.",
    )
    _add_listen_options(serve_parser)
    serve_parser.add_argument(
        "--app", choices=["demo", "echo", "relay"], default="demo", help="(default demo)"
    )
    _add_scale_options(serve_parser, workers=1)
    serve_parser.set_defaults(run=serve_workers)

    echo_parser = commands.add_parser(
        "echo",
        help="a bare echo server",
        description="Send every message back to its sender, on any path "
        "(for benchmarks and conformance suites). Ctrl-C stops.",
    )
    _add_listen_options(echo_parser)
    echo_parser.add_argument(
        "--max-size",
        type=_size,
        default=2**24,
        metavar="BYTES",
        help="largest message accepted, 0 for no limit (default 16 MiB)",
    )
    flavour = echo_parser.add_mutually_exclusive_group()
    flavour.add_argument(
        "--events",
        action="store_true",
        help="serve from one event loop (serve_events) instead of a thread per connection",
    )
    flavour.add_argument(
        "--asyncio",
        action="store_true",
        help="serve with wscodec.asyncio on asyncio's event loop",
    )
    flavour.add_argument(
        "--uvloop",
        action="store_true",
        help="serve with wscodec.asyncio on uvloop (implies --asyncio)",
    )
    echo_parser.set_defaults(run=echo)

    connect_parser = commands.add_parser(
        "connect",
        help="an interactive client",
        description="Connect to a WebSocket server. Each line of input is sent as a text "
        "message; each message received is printed after '< '. At the end of input "
        "(Ctrl-D) the connection closes normally.",
    )
    connect_parser.add_argument("uri", metavar="URI", help="ws://HOST:PORT/PATH or wss://...")
    connect_parser.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="time allowed to connect (default 10)",
    )
    connect_parser.add_argument(
        "--linger",
        type=_positive,
        default=0.5,
        metavar="SECONDS",
        help="after the end of input, close once nothing arrived for this long, "
        "or after ten times this long at most (default 0.5)",
    )
    connect_parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    connect_parser.set_defaults(run=client)

    info_parser = commands.add_parser(
        "info",
        help="version, backend and build details",
        description="Print the version, the active backend, whether the compiled module "
        "loaded (and why not), and the CPU features the kernels use.",
    )
    info_parser.set_defaults(run=lambda args: info())
    return parser


def _with_default_command(argv: List[str]) -> List[str]:
    """``wscodec`` and ``wscodec --port 9000`` mean ``wscodec demo ...``."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["demo", *argv]
    return argv


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; its exit status."""
    parser = build_parser()
    args = parser.parse_args(_with_default_command(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = args.run(args)
    except CommandError as error:
        print(f"wscodec: error: {error}", file=sys.stderr, flush=True)
        return error.status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return status
