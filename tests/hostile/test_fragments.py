"""Attacks on message assembly: fragments, their count and their overhead (items 1-3)."""

from __future__ import annotations

import gc
import threading
import time
import zlib

from wscodec import Opcode

from .harness import MiB, attacker, close_code, frame, read_frames, send_for, target


def test_empty_continuations_are_bounded(flavour: str, backend: str) -> None:
    """Endless empty continuation frames: 1009 once the fragment count cap is hit,
    and the server's memory stays flat."""
    with target(flavour, backend) as server:
        before = server.rss()
        with attacker(server.port) as sock:
            sock.sendall(frame(Opcode.TEXT, b"x", fin=False))
            empty = frame(Opcode.CONTINUATION, b"", fin=False) * 10_000  # 60 KB a write
            sent = send_for(sock, empty, total=64 * MiB, seconds=10)
            code = close_code(sock, within=5)
            server.assert_serves()
        grown = server.peak_rss() - before
    assert code == 1009, f"no 1009 after {sent} bytes of empty fragments (close code {code})"
    assert grown < 32 * MiB, f"RSS grew {grown / MiB:.0f} MiB"


# Item 1 at a 16 MiB limit. Fragments cost nothing beyond their payload now, and
# the count is capped (DEFAULT_MAX_FRAGMENTS, 65536): 1009 comes after about
# 400 KB of empty frames or 460 KB of 1-byte ones. Before, 1-byte fragments cost
# ~56 bytes of server memory each (16 MiB of them: ~900 MB) and empty ones were
# never counted. 32 MiB leaves room for the read buffers and the parser's frames
# of one read (~20x a 1 MiB read of 6-byte frames, briefly), not for storing them.
TINY_FRAGMENTS_RSS_BOUND = 32 * MiB


def test_tiny_fragments_against_a_16_mib_limit(flavour: str, backend: str) -> None:
    """Empty, then 1-byte continuation frames against a 16 MiB message limit:
    1009 for each, flat memory, and a fresh client served within 1 s."""
    outcomes = []
    with target(flavour, backend, max_size=16 * MiB) as server:
        before = server.rss()
        for payload in (b"y", b""):
            with attacker(server.port) as sock:
                sock.sendall(frame(Opcode.BINARY, b"x", fin=False))
                burst = frame(Opcode.CONTINUATION, payload, fin=False) * 10_000
                sent = send_for(sock, burst, total=256 * MiB, seconds=4)
                code = close_code(sock, within=3)
                server.assert_serves(within=1.0)
            grown = server.peak_rss() - before
            outcomes.append(
                f"{len(payload)}-byte fragments: {sent / MiB:.1f} MiB sent, close code {code},"
                f" peak RSS +{grown / MiB:.0f} MiB"
            )
            print(outcomes[-1])
            assert code == 1009 and grown < TINY_FRAGMENTS_RSS_BOUND, outcomes
        server.assert_serves(within=1.0)


# Item 2: a connection failed with 1009 used to live on (with the up to 16 MiB of
# fragments it held) until a full garbage collection, through the traceback of
# its stored exception. Six of them kept ~100 MB. Now each is freed when dropped:
# what stays is at most one message's worth of freed heap the allocator keeps,
# plus buffers. 40 MiB is below the 6 x 16 MiB the cycles kept.
REFUSED_RETAINED_BOUND = 40 * MiB


def test_refused_messages_are_released(flavour: str, backend: str) -> None:
    """Six 17 MiB messages refused with 1009 (16 MiB limit): RSS returns near
    its baseline, without waiting for a garbage collection."""
    chunk = b"\x5a" * MiB
    with target(flavour, backend, max_size=16 * MiB) as server:
        server.assert_serves()
        baseline = server.rss()
        for _ in range(6):
            with attacker(server.port) as sock:
                sock.sendall(frame(Opcode.BINARY, chunk, fin=False))
                for _ in range(16):
                    try:
                        sock.sendall(frame(Opcode.CONTINUATION, chunk, fin=False))
                    except OSError:
                        break  # refused already (the server closed)
                code = close_code(sock, within=3)
            assert code == 1009, f"close code {code}"
        for _ in range(5):
            server.assert_serves(within=1.0)
        time.sleep(0.2)  # the last connection's thread or loop finishes its cleanup
        retained = server.rss() - baseline
        print(
            f"after 6 refusals: RSS {retained / MiB:+.0f} MiB, peak {(server.peak_rss() - baseline) / MiB:+.0f} MiB"
        )
    assert retained < REFUSED_RETAINED_BOUND, f"{retained / MiB:.0f} MiB kept after 6 refusals"


# Item 3: one write of 50 compressed 2 MiB messages (about 100 KB on the wire,
# ~1000:1) to a server with a 16 MiB limit. Every message completed by one read
# was inflated before any was handled: 64-100 MiB at once here, from a single
# read (the review, with 14 MB messages: 711-727 MB). Now one receive_data()
# call stops once its messages reach INFLATE_BUDGET (1 MiB), so one 2 MiB
# message a call, and the servers hand each to the handler before inflating
# the next: a few messages in flight with their copies (inflated bytes, str,
# the echo's encoding), ~16 MiB. The threaded server also queues up to
# ``max_queue`` received messages for a handler that is behind, its documented
# back-pressure (max_queue x max_size); the test sets max_queue=1 there, so
# that it measures what one read inflates.
INFLATE_MESSAGE = 2 * MiB
INFLATE_RSS_BOUND = 32 * MiB


def compressed_text(data: bytes) -> bytes:
    """A masked text frame of ``data`` compressed as RFC 7692 says (rsv1, tail stripped)."""
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff")
    return frame(Opcode.TEXT, payload[:-4], rsv1=True)


def test_one_read_of_many_compressed_messages(flavour: str, backend: str) -> None:
    """50 compressed 2 MiB messages in one write: peak RSS within the bound, all echoed."""
    message = compressed_text(b"a" * INFLATE_MESSAGE)
    wire = message * 50
    deflate = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
    options = {"max_size": 16 * MiB, **({"max_queue": 1} if flavour == "threaded" else {})}
    with target(flavour, backend, **options) as server:
        before = server.rss()
        with attacker(server.port, extra=deflate) as sock:
            sock.sendall(wire)
            echoes = read_frames(sock, 50, deadline=time.monotonic() + 8)
            server.assert_serves(within=1.0)
        peak = server.peak_rss() - before
        print(f"50 compressed messages in one write: peak RSS +{peak / MiB:.0f} MiB")
    assert len(echoes) == 50, f"{len(echoes)} echoes of 50 messages"
    assert peak < INFLATE_RSS_BOUND, f"peak RSS grew {peak / MiB:.0f} MiB"


def test_failed_server_connections_are_freed_without_the_collector(flavour: str) -> None:
    """Item 2 through each server: with the garbage collector off, connections
    failed with 1002, 1009 and 1007 leave no connection object behind (before:
    each stayed, with its protocol, until a full collection)."""
    from wscodec import serve, serve_events
    from wscodec.cli import EchoHandler, echo_handler
    from wscodec.connection import Connection
    from wscodec.events.server import EventConnection
    from wscodec.sync.connection import SyncConnection

    kinds = (Connection, SyncConnection, EventConnection)

    def alive() -> int:
        return sum(isinstance(o, kinds) for o in gc.get_objects())

    options = {"max_size": MiB, "close_timeout": 0.5}
    if flavour == "threaded":
        server = serve(echo_handler, "127.0.0.1", 0, **options)
    else:
        server = serve_events(EchoHandler, "127.0.0.1", 0, **options)
    gc.collect()
    gc.disable()
    try:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        before = alive()
        codes = []
        attacks = (b"\x83\x80\0\0\0\0", frame(Opcode.BINARY, bytes(2 * MiB)), frame(1, b"\xff"))
        for wire in attacks:
            with attacker(server.port) as sock:
                try:
                    sock.sendall(wire)
                except OSError:
                    pass  # refused before the end of a large frame
                codes.append(close_code(sock, within=3))
        deadline = time.monotonic() + 5
        while alive() > before and time.monotonic() < deadline:
            time.sleep(0.05)  # the connections' threads or loop finish their cleanup
        left = alive() - before
    finally:
        gc.enable()
        server.shutdown()
    assert codes == [1002, 1009, 1007]
    assert left == 0, f"{left} connection objects kept alive by reference cycles"
