"""Each peer library with and without its wscodec adapter, in one process.

    python benchmarks/adapters.py [--budget 0.3] [--only websockets,wsproto]

For every installed peer the same workload runs twice, first on the library
as shipped and then with ``wscodec.integrations.<lib>.install()`` in place:
small-frame parse and serialise rates through the library's own code, its
masking/UTF-8 hooks on large payloads, and an echo round trip over loopback.
Each figure is the best of three timed runs of about ``--budget`` seconds
(rounds per second; MB/s for the large-payload kernels). The whole run stays
within a couple of minutes. Set ``WSCODEC_NO_EXTENSIONS=1`` to measure the
pure-Python backend.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import wscodec
from wscodec import integrations

SMALL = b"x" * 16
BIG = os.urandom(1 << 20)
TEXT = ("wscodec é€ " * 6000).encode()[: 64 * 1024 - 2]
KEY = b"\x37\xfa\x21\x3d"
BUDGET = 0.3

Workload = Tuple[str, Callable[[], Callable[[], Any]], float, str]


def rate(make: Callable[[], Callable[[], Any]], per_call: float) -> float:
    """Units per second of ``make()()`` (best of 3 runs of about BUDGET seconds)."""
    call = make()
    best = 0.0
    for _ in range(3):
        calls = 0
        start = time.perf_counter()
        while True:
            call()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= BUDGET / 3:
                break
        best = max(best, calls * per_call / elapsed)
    return best


# -- websockets ----------------------------------------------------------------


def websockets_workloads() -> List[Workload]:
    from websockets.protocol import CLIENT, SERVER, Protocol, State

    client = Protocol(CLIENT, state=State.OPEN)
    for _ in range(1000):
        client.send_binary(SMALL)
    wire = b"".join(client.data_to_send())

    def parse() -> Callable[[], Any]:
        def run() -> None:
            server = Protocol(SERVER, state=State.OPEN, max_size=None)
            server.receive_data(wire)
            assert len(server.events_received()) == 1000

        return run

    def serialise() -> Callable[[], Any]:
        proto = Protocol(CLIENT, state=State.OPEN)

        def run() -> None:
            for _ in range(100):
                proto.send_binary(SMALL)
            proto.data_to_send()

        return run

    def echo(message: Any, rounds: int) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            from websockets.sync.client import connect
            from websockets.sync.server import serve

            def handler(ws: Any) -> None:
                for m in ws:
                    ws.send(m)

            server = serve(handler, "127.0.0.1", 0, max_size=None, compression=None)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            port = server.socket.getsockname()[1]
            stack = contextlib.ExitStack()
            ws = stack.enter_context(
                connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None)
            )
            _cleanup.append(lambda: (stack.close(), server.shutdown()))

            def run() -> None:
                for _ in range(rounds):
                    ws.send(message)
                    ws.recv()

            return run

        return make

    return [
        ("parse 16 B frames (server)", parse, 1000, "frames/s"),
        ("serialise 16 B frames (client)", serialise, 100, "frames/s"),
        ("echo 16 B over loopback", echo(SMALL, 50), 50, "round trips/s"),
        ("echo 1 MiB over loopback", echo(BIG, 1), 1, "round trips/s"),
    ]


# -- wsproto -------------------------------------------------------------------


def wsproto_workloads() -> List[Workload]:
    from wsproto.frame_protocol import FrameProtocol

    client = FrameProtocol(client=True, extensions=[])
    small_wire = b"".join(bytes(client.send_data(SMALL)) for _ in range(1000))
    big_wire = bytes(client.send_data(BIG))

    def parse(wire: bytes, count: int) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            def run() -> None:
                server = FrameProtocol(client=False, extensions=[])
                server.receive_bytes(wire)
                assert len(list(server.received_frames())) == count

            return run

        return make

    def serialise() -> Callable[[], Any]:
        proto = FrameProtocol(client=True, extensions=[])

        def run() -> None:
            for _ in range(100):
                proto.send_data(SMALL)

        return run

    def echo() -> Callable[[], Any]:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, BytesMessage, Message, Request

        a, b = socket.socketpair()

        def serve() -> None:
            ws = WSConnection(ConnectionType.SERVER)
            while True:
                data = b.recv(65536)
                if not data:
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        b.sendall(ws.send(AcceptConnection()))
                    elif isinstance(event, BytesMessage):
                        b.sendall(ws.send(Message(data=event.data)))

        threading.Thread(target=serve, daemon=True).start()
        ws = WSConnection(ConnectionType.CLIENT)
        a.sendall(ws.send(Request(host="localhost", target="/")))
        ws.receive_data(a.recv(65536))
        list(ws.events())
        _cleanup.append(lambda: (a.close(), b.close()))

        def run() -> None:
            for _ in range(50):
                a.sendall(ws.send(Message(data=SMALL)))
                got = False
                while not got:
                    ws.receive_data(a.recv(65536))
                    got = any(isinstance(e, BytesMessage) for e in ws.events())

        return run

    return [
        ("parse 16 B frames (server)", parse(small_wire, 1000), 1000, "frames/s"),
        ("parse a 1 MiB frame (server)", parse(big_wire, 1), 1, "MiB/s"),
        ("serialise 16 B frames (client)", serialise, 100, "frames/s"),
        ("echo 16 B over a socket pair", echo, 50, "round trips/s"),
    ]


# -- websocket-client ------------------------------------------------------------


def websocket_client_workloads() -> List[Workload]:
    from websocket import _abnf

    def serialise() -> Callable[[], Any]:
        abnf = _abnf.ABNF

        def run() -> None:
            for _ in range(100):
                abnf.create_frame(SMALL, abnf.OPCODE_BINARY).format()

        return run

    def parse() -> Callable[[], Any]:
        wire = b"".join(wscodec.encode_frame(2, SMALL) for _ in range(1000))

        def run() -> None:
            position = 0

            def recv(size: int) -> bytes:
                nonlocal position
                chunk = wire[position : position + size]
                position += len(chunk)
                return chunk

            buffer = _abnf.frame_buffer(recv, skip_utf8_validation=False)
            for _ in range(1000):
                buffer.recv_frame()

        return run

    def unmask() -> Callable[[], Any]:
        return lambda: _abnf.ABNF.mask(KEY, BIG)

    def utf8() -> Callable[[], Any]:
        return lambda: _abnf.validate_utf8(TEXT)

    def echo(message: bytes) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            import websocket

            server = wscodec.serve(_echo, "127.0.0.1", 0, max_size=None)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/")
            _cleanup.append(lambda: (ws.close(), server.shutdown()))

            def run() -> None:
                ws.send_binary(message)
                ws.recv()

            return run

        return make

    return [
        ("parse 16 B frames (client, recv_frame)", parse, 1000, "frames/s"),
        ("serialise 16 B frames (client)", serialise, 100, "frames/s"),
        ("ABNF.mask 1 MiB", unmask, 1, "MiB/s"),
        ("validate_utf8 64 KiB", utf8, 1 / 16, "MiB/s"),
        ("echo 16 B over loopback (wscodec server)", echo(SMALL), 1, "round trips/s"),
        ("echo 1 MiB over loopback (wscodec server)", echo(BIG), 1, "round trips/s"),
    ]


def _echo(connection: Any) -> None:
    for message in connection:
        connection.send(message)


# -- tornado -------------------------------------------------------------------


def tornado_workloads() -> List[Workload]:
    import tornado.websocket

    def mask(data: bytes) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            function = tornado.websocket._websocket_mask
            return lambda: function(KEY, data)

        return make

    def echo(message: bytes, rounds: int) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            import tornado.web

            class Echo(tornado.websocket.WebSocketHandler):
                def on_message(self, m: Any) -> None:
                    self.write_message(m, binary=True)

            loop = asyncio.new_event_loop()

            async def setup() -> Any:
                app = tornado.web.Application([("/", Echo)], websocket_max_message_size=2**21)
                server = app.listen(0, "127.0.0.1")
                port = next(iter(server._sockets.values())).getsockname()[1]
                return await tornado.websocket.websocket_connect(
                    f"ws://127.0.0.1:{port}/", max_message_size=2**21
                )

            conn = loop.run_until_complete(setup())
            _cleanup.append(loop.close)

            async def rounds_() -> None:
                for _ in range(rounds):
                    await conn.write_message(message, binary=True)
                    await conn.read_message()

            return lambda: loop.run_until_complete(rounds_())

        return make

    return [
        ("_websocket_mask 16 B", mask(SMALL), 1, "calls/s"),
        ("_websocket_mask 1 MiB", mask(BIG), 1, "MiB/s"),
        ("echo 16 B over loopback", echo(SMALL, 50), 50, "round trips/s"),
        ("echo 1 MiB over loopback", echo(BIG, 1), 1, "round trips/s"),
    ]


# -- aiohttp -------------------------------------------------------------------


def aiohttp_workloads() -> List[Workload]:
    from aiohttp._websocket import writer

    def mask(size: int) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            data = bytearray(BIG[:size])
            function = writer.websocket_mask
            return lambda: function(KEY, data)

        return make

    def echo(message: bytes, rounds: int) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            import aiohttp
            from aiohttp import web

            async def handler(request: Any) -> Any:
                ws = web.WebSocketResponse(max_msg_size=2**21)
                await ws.prepare(request)
                async for msg in ws:
                    await ws.send_bytes(msg.data)
                return ws

            loop = asyncio.new_event_loop()

            async def setup() -> Any:
                app = web.Application()
                app.router.add_get("/", handler)
                runner = web.AppRunner(app)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                session = aiohttp.ClientSession()
                port = runner.addresses[0][1]
                ws = await session.ws_connect(f"ws://127.0.0.1:{port}/", max_msg_size=2**21)
                return runner, session, ws

            runner, session, ws = loop.run_until_complete(setup())

            async def teardown() -> None:
                await ws.close()
                await session.close()
                await runner.cleanup()

            _cleanup.append(lambda: (loop.run_until_complete(teardown()), loop.close()))

            async def rounds_() -> None:
                for _ in range(rounds):
                    await ws.send_bytes(message)
                    await ws.receive()

            return lambda: loop.run_until_complete(rounds_())

        return make

    return [
        ("websocket_mask 16 B (send)", mask(16), 1, "calls/s"),
        ("websocket_mask 1 MiB (send)", mask(1 << 20), 1, "MiB/s"),
        ("echo 16 B over loopback", echo(SMALL, 50), 50, "round trips/s"),
        ("echo 1 MiB over loopback", echo(BIG, 1), 1, "round trips/s"),
    ]


def aiohttp_reader_comparison() -> List[Tuple[str, float]]:
    """aiohttp's compiled reader against wscodec's bare parser on the same bytes."""
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

    wire = b"".join(wscodec.encode_frame(2, SMALL, mask=KEY) for _ in range(1000))
    loop = asyncio.new_event_loop()

    class Protocol:
        def pause_reading(self) -> None: ...
        def resume_reading(self) -> None: ...

    def aiohttp_reader() -> Callable[[], Any]:
        def run() -> None:
            queue = WebSocketDataQueue(Protocol(), 2**30, loop=loop)  # type: ignore[arg-type]
            reader = WebSocketReader(queue, 2**20, False, True)
            reader.feed_data(wire)

        return run

    def wscodec_parser() -> Callable[[], Any]:
        def run() -> None:
            parser = wscodec.FrameParser(mask_expected=True)
            assert len(parser.feed(wire)) == 1000

        return run

    result = [
        ("aiohttp WebSocketReader (compiled), 16 B frames", rate(aiohttp_reader, 1000)),
        ("wscodec FrameParser alone, 16 B frames", rate(wscodec_parser, 1000)),
    ]
    loop.close()
    return result


# -- autobahn, ws4py, wsaccel ----------------------------------------------------------


def autobahn_workloads() -> List[Workload]:
    from autobahn.websocket import protocol

    def mask(data: bytes, per: int) -> Callable[[], Callable[[], Any]]:
        def make() -> Callable[[], Any]:
            create = protocol.create_xor_masker
            return lambda: create(KEY, len(data)).process(data)

        return make

    def utf8() -> Callable[[], Any]:
        validator_type = protocol.Utf8Validator
        return lambda: validator_type().validate(TEXT)

    return [
        ("create_xor_masker + process 16 B", mask(SMALL, 1), 1, "calls/s"),
        ("create_xor_masker + process 1 MiB", mask(BIG, 1), 1, "MiB/s"),
        ("Utf8Validator.validate 64 KiB", utf8, 1 / 16, "MiB/s"),
    ]


def ws4py_workloads() -> List[Workload]:
    from ws4py import streaming
    from ws4py.framing import Frame

    data = BIG[: 64 * 1024]

    def mask() -> Callable[[], Any]:
        frame = Frame(masking_key=KEY)
        return lambda: frame.unmask(data)

    def utf8() -> Callable[[], Any]:
        validator_type = streaming.Utf8Validator
        return lambda: validator_type().validate(TEXT)

    return [
        ("Frame.unmask 64 KiB", mask, 1 / 16, "MiB/s"),
        ("Utf8Validator.validate 64 KiB", utf8, 1 / 16, "MiB/s"),
    ]


_cleanup: List[Callable[[], Any]] = []

LIBRARIES: Dict[str, Tuple[str, Callable[[], List[Workload]]]] = {
    "websockets": ("websockets", websockets_workloads),
    "wsproto": ("wsproto", wsproto_workloads),
    "websocket_client": ("websocket", websocket_client_workloads),
    "tornado": ("tornado", tornado_workloads),
    "aiohttp": ("aiohttp", aiohttp_workloads),
    "autobahn": ("autobahn", autobahn_workloads),
    "ws4py": ("ws4py", ws4py_workloads),
}


def wsaccel_rows() -> List[Tuple[str, str, float, float, str]]:
    """wscodec.wsaccel against wsaccel itself, when wsaccel is installed."""
    try:
        from wsaccel.utf8validator import Utf8Validator as TheirValidator
        from wsaccel.xormask import XorMaskerSimple as TheirMasker
    except ImportError:
        return []
    from wscodec.wsaccel import Utf8Validator, XorMaskerSimple

    def masking(masker_type: Any) -> Callable[[], Callable[[], Any]]:
        return lambda: lambda: masker_type(KEY).process(BIG)

    def validating(validator_type: Any) -> Callable[[], Callable[[], Any]]:
        return lambda: lambda: validator_type().validate(TEXT)

    return [
        (
            "wsaccel (vs wscodec.wsaccel)",
            "XorMaskerSimple 1 MiB",
            rate(masking(TheirMasker), 1),
            rate(masking(XorMaskerSimple), 1),
            "MiB/s",
        ),
        (
            "wsaccel (vs wscodec.wsaccel)",
            "Utf8Validator 64 KiB",
            rate(validating(TheirValidator), 1 / 16),
            rate(validating(Utf8Validator), 1 / 16),
            "MiB/s",
        ),
    ]


def kernel_rows(budget: float, only: List[str]) -> List[Tuple[str, str, float, float, str]]:
    """Every kernel workload of the installed peers, without and with their adapter."""
    global BUDGET
    BUDGET = budget
    rows: List[Tuple[str, str, float, float, str]] = []
    for name, (module, workloads) in LIBRARIES.items():
        if only and name not in only:
            continue
        try:
            importlib.import_module(module)
            version = integrations.adapter(name).version()
            items = workloads()
        except Exception as error:
            print(f"{name}: not measured ({type(error).__name__}: {error})")
            continue
        label = f"{name} {version}"
        for workload, make, per, unit in items:
            without = rate(make, per)
            integrations.install(name)
            try:
                with_ = rate(make, per)
            finally:
                integrations.uninstall(name)
            rows.append((label, workload, without, with_, unit))
        while _cleanup:
            try:
                _cleanup.pop()()
            except Exception:
                pass
    if not only or "aiohttp" in only:
        try:
            for workload, value in aiohttp_reader_comparison():
                rows.append(("aiohttp reader", workload, value, value, "frames/s"))
        except ImportError as error:
            print(f"aiohttp reader comparison not measured: {error}")
    if not only or "wsaccel" in only:
        rows.extend(wsaccel_rows())
    return rows


def print_kernel_rows(rows: List[Tuple[str, str, float, float, str]]) -> None:
    width = max(len(r[1]) for r in rows) if rows else 10
    print(
        f"{'library':<24} {'workload':<{width}} {'without':>12} {'with':>12} {'speedup':>8}  unit"
    )
    for library, workload, without, with_, unit in rows:
        speedup = with_ / without if without else float("nan")
        print(
            f"{library:<24} {workload:<{width}} {without:>12,.0f} {with_:>12,.0f} "
            f"{speedup:>7.2f}x  {unit}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds per figure")
    parser.add_argument("--only", default="", help="comma-separated adapter names")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    print(f"wscodec backend: {wscodec.BACKEND}; best of 3 runs of ~{args.budget}s per figure\n")
    print_kernel_rows(kernel_rows(args.budget, only))


if __name__ == "__main__":
    main()
