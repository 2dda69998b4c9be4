"""permessage-deflate (RFC 7692): negotiation, message transformation, limits."""

from __future__ import annotations

import socket
import tracemalloc
import zlib

import pytest

from tests.helpers import echo, running_server
from wscodec import FrameParser, InvalidResponse, Opcode, connect, encode_frame
from wscodec.connection import BinaryMessage, Connection, Role, TextMessage
from wscodec.deflate import (
    CLIENT_DEFAULT,
    SERVER_DEFAULT,
    DeflateOptions,
    PerMessageDeflate,
    accept_offers,
    accept_response,
    client_offer,
    parse_extensions,
    resolve,
)
from wscodec.handshake import HTTPReader, accept, build_request, check_response

KEY = b"\x0a\x0b\x0c\x0d"
DEFAULTS = DeflateOptions()


def negotiate(offer: str, options: DeflateOptions = DEFAULTS):
    result = accept_offers([offer], options)
    return None if result is None else result[0]


# Negotiation (RFC 7692 section 7.1) ----------------------------------------------------


@pytest.mark.parametrize(
    "offer, response",
    [
        ("permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=8",
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12",
        ),
        (
            'permessage-deflate; server_max_window_bits="10"',
            "permessage-deflate; server_max_window_bits=10",
        ),
        # Several offers: the first acceptable one wins.
        (
            "permessage-deflate; server_max_window_bits=7, permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "x-webkit-deflate-frame, permessage-deflate; foo=1, "
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9",
        ),
        # Declined gracefully: nothing acceptable.
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ("permessage-deflate; client_max_window_bits=010", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("x-webkit-deflate-frame", None),
    ],
)
def test_server_negotiation(offer, response):
    assert negotiate(offer) == response


def test_server_options_shape_the_response():
    options = DeflateOptions(
        server_no_context_takeover=True, client_no_context_takeover=True, server_max_window_bits=15
    )
    assert negotiate("permessage-deflate", options) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    )


def test_negotiated_extension_matches_the_response():
    _, extension = accept_offers(
        ["permessage-deflate; client_max_window_bits; server_no_context_takeover"], DEFAULTS
    )
    assert extension.local_no_context_takeover and not extension.remote_no_context_takeover
    assert extension.local_max_window_bits == 12 and extension.remote_max_window_bits == 12
    _, extension = accept_offers(["permessage-deflate"], DEFAULTS)
    assert extension.remote_max_window_bits == 15  # the client's window is unbounded


def test_malformed_extension_header_is_a_400():
    request = HTTPReader("request").feed(
        build_request("h", 80)[0]
        .serialize()
        .replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate; =bad\r\n\r\n")
    )
    from wscodec import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        accept(request, compression=DEFAULTS)
    assert caught.value.status == 400


def test_parse_extensions():
    assert parse_extensions(['a; b=1; c="x", d', "e"]) == [
        ("a", [("b", "1"), ("c", "x")]),
        ("d", []),
        ("e", []),
    ]
    with pytest.raises(ValueError):
        parse_extensions(['a; b="x y"'])


def test_client_offer_and_response():
    offer = client_offer(DEFAULTS)
    assert offer == "permessage-deflate; client_max_window_bits"
    response, server_side = accept_offers([offer], DEFAULTS)
    client_side = accept_response([response], DEFAULTS)
    assert client_side.local_max_window_bits == server_side.remote_max_window_bits == 12
    assert client_side.remote_max_window_bits == server_side.local_max_window_bits == 12
    assert accept_response([], DEFAULTS) is None  # declined
    # We may compress with a smaller window than the server allows, never a larger one.
    narrow = accept_response(["permessage-deflate; client_max_window_bits=9"], DEFAULTS)
    assert narrow.local_max_window_bits == 9
    assert accept_response(["permessage-deflate"], DEFAULTS).local_max_window_bits == 12
    bounded = DeflateOptions(server_max_window_bits=10)
    assert client_offer(bounded).startswith("permessage-deflate; server_max_window_bits=10")


@pytest.mark.parametrize(
    "response",
    [
        "x-other",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; server_max_window_bits=15",  # we asked for at most 12
        "permessage-deflate; bogus",
        "permessage-deflate; server_max_window_bits=99",
        "permessage-deflate; client_max_window_bits",  # a response needs a value
    ],
)
def test_client_rejects_bad_responses(response):
    with pytest.raises(InvalidResponse):
        accept_response([response], DeflateOptions(server_max_window_bits=12))


def test_handshake_round_trip_with_compression():
    request, key = build_request("h", 80, compression=DEFAULTS)
    parsed = HTTPReader("request").feed(request.serialize())
    response, _, server_ext = accept(parsed, compression=DEFAULTS)
    assert response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
    reply = HTTPReader("response").feed(response.serialize())
    subprotocol, client_ext = check_response(reply, key, compression=DEFAULTS)
    assert subprotocol is None and isinstance(client_ext, PerMessageDeflate)
    assert server_ext is not None
    # Without compression on the server, no extension header and none on the client.
    response, _, none = accept(parsed)
    assert none is None and "Sec-WebSocket-Extensions" not in response.headers
    reply = HTTPReader("response").feed(response.serialize())
    assert check_response(reply, key, compression=DEFAULTS) == (None, None)


# Message transformation (RFC 7692 section 7.2) --------------------------------------------


def server_with_deflate(**settings):
    parameters = dict(
        local_no_context_takeover=False,
        remote_no_context_takeover=False,
        local_max_window_bits=15,
        remote_max_window_bits=15,
    )
    parameters.update(settings)
    return Connection(Role.SERVER, deflate=PerMessageDeflate(**parameters))


def masked(first_byte: int, payload: bytes) -> bytes:
    return encode_frame(
        first_byte & 0x0F,
        payload,
        fin=bool(first_byte & 0x80),
        rsv1=bool(first_byte & 0x40),
        mask=KEY,
    )


RFC_HELLO = bytes.fromhex("f248cdc9c90700")


@pytest.mark.parametrize(
    "frames",
    [
        [(0xC1, RFC_HELLO)],  # 7.2.3.1: one compressed block
        [(0x41, RFC_HELLO[:3]), (0x80, RFC_HELLO[3:])],  # 7.2.3.1, fragmented
        [(0xC1, bytes.fromhex("000500faff48656c6c6f00"))],  # 7.2.3.3: no compression
        [(0xC1, bytes.fromhex("f348cdc9c9070000"))],  # 7.2.3.4: BFINAL set
        [(0xC1, bytes.fromhex("f24805000000ffffcac9c90700"))],  # 7.2.3.5: two blocks
    ],
)
def test_rfc_examples_inflate(frames):
    server = server_with_deflate()
    wire = b"".join(masked(first, payload) for first, payload in frames)
    assert server.receive_data(wire) == [TextMessage("Hello")]


def test_rfc_shared_window():
    # 7.2.3.2: the second "Hello" refers back to the first.
    server = server_with_deflate()
    wire = masked(0xC1, RFC_HELLO) + masked(0xC1, bytes.fromhex("f200110000"))
    assert server.receive_data(wire) == [TextMessage("Hello"), TextMessage("Hello")]


def test_our_compressor_matches_the_rfc_examples():
    extension = PerMessageDeflate(
        local_no_context_takeover=False,
        remote_no_context_takeover=False,
        local_max_window_bits=15,
        remote_max_window_bits=15,
    )
    assert extension.compress(b"Hello") == RFC_HELLO
    assert extension.compress(b"Hello") == bytes.fromhex("f200110000")


def pair(server_options=DEFAULTS, client_options=DEFAULTS, fragment_size=None):
    response, server_ext = accept_offers([client_offer(client_options)], server_options)
    client_ext = accept_response([response], client_options)
    return (
        Connection(Role.SERVER, deflate=server_ext, fragment_size=fragment_size),
        Connection(Role.CLIENT, deflate=client_ext, fragment_size=fragment_size),
    )


def chat_messages(count):
    return [
        f'{{"type":"message","nick":"user{n % 7}","text":"hello number {n}, how are you?"}}'
        for n in range(count)
    ]


@pytest.mark.parametrize("context_takeover", [True, False])
@pytest.mark.parametrize("fragment_size", [None, 7])
def test_round_trips_across_many_messages(context_takeover, fragment_size):
    options = DeflateOptions(
        server_no_context_takeover=not context_takeover,
        client_no_context_takeover=not context_takeover,
    )
    server, client = pair(options, options, fragment_size)
    messages = chat_messages(200)
    binaries = [bytes(range(n % 256)) * 3 for n in range(50)]
    for text in messages:
        client.send_text(text)
    for data in binaries:
        server.send_binary(data)
    wire = client.data_to_send()
    frames = FrameParser(mask_expected=True, allowed_rsv=0x40, max_frame_size=None).feed(wire)
    assert frames[0].rsv1 and all(not f.rsv1 for f in frames if f.opcode is Opcode.CONTINUATION)
    assert server.receive_data(wire) == [TextMessage(t) for t in messages]
    assert client.receive_data(server.data_to_send()) == [BinaryMessage(b) for b in binaries]
    raw_size = sum(len(t) for t in messages)
    compressed_size = sum(len(f.payload) for f in frames)
    # Short chat messages compress well only when the window is shared.
    assert compressed_size < raw_size / (3 if context_takeover else 1.01)


@pytest.mark.parametrize("fragment_size", [None, 7])
def test_without_context_takeover_no_zlib_stream_is_held_between_messages(fragment_size):
    """What an idle connection holds: nothing of zlib in a direction without context."""
    options = DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True)
    server, client = pair(options, options, fragment_size)
    takeover, _ = pair(fragment_size=fragment_size)
    for text in chat_messages(3):
        client.send_text(text)
        assert server.receive_data(client.data_to_send()) == [TextMessage(text)]
        server.send_text(text)
        assert client.receive_data(server.data_to_send()) == [TextMessage(text)]
        takeover.send_text(text)
        takeover.data_to_send()
    for connection in (server, client):
        assert connection.deflate._compressor is None
        assert connection.deflate._decompressor is None
    assert takeover.deflate._compressor is not None  # kept: the next message refers to it


def test_window_of_8_bits_round_trips():
    options = DeflateOptions(server_max_window_bits=8, client_max_window_bits=8)
    server, client = pair(options, options)
    assert server.deflate.local_max_window_bits == 8
    text = "".join(chat_messages(100))
    server.send_text(text)
    assert client.receive_data(server.data_to_send()) == [TextMessage(text)]


def test_manual_fragments_go_uncompressed():
    server, client = pair()
    client.send_text("part one ", fin=False)
    client.send_continuation("part two", fin=True)
    wire = client.data_to_send()
    frames = FrameParser(mask_expected=True, allowed_rsv=0x40).feed(wire)
    assert not any(f.rsv1 for f in frames)
    assert server.receive_data(wire) == [TextMessage("part one part two")]


@pytest.mark.parametrize(
    "wire, code",
    [
        (masked(0x41, RFC_HELLO[:3]) + masked(0xC0, RFC_HELLO[3:]), 1002),  # RSV1 on a continuation
        (masked(0xC9, b""), 1002),  # RSV1 on a ping
        (masked(0xC1, b"\xff\xff\xff\xff"), 1007),  # not deflate data
        (masked(0xC1, b"\x00\x05\x00\x00\x00hello"), 1007),  # stored block, bad NLEN
    ],
)
def test_compressed_errors(wire, code):
    server = server_with_deflate()
    assert server.receive_data(wire) == []
    assert server.failure is not None and server.failure.code == code


def test_compressed_invalid_utf8_is_1007():
    compressor = PerMessageDeflate(
        local_no_context_takeover=True,
        remote_no_context_takeover=True,
        local_max_window_bits=15,
        remote_max_window_bits=15,
    )
    server = server_with_deflate()
    server.receive_data(masked(0xC1, compressor.compress(b"ok \xed\xa0\x80")))
    assert server.failure is not None and server.failure.code == 1007


def test_rsv1_without_the_extension_is_1002():
    server = Connection(Role.SERVER)
    server.receive_data(masked(0xC1, RFC_HELLO))
    assert server.failure is not None and server.failure.code == 1002


# Zip bombs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """A deflate stream that inflates to 1 GiB of zeros, in about 1 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # Each block only refers back 1 byte, so the same bytes repeated 1024
    # times are a valid stream for 1024 MiB.
    return block * 1024


def test_bomb_rejected_with_1009_in_bounded_memory(gigabyte_bomb):
    server = server_with_deflate()
    chunks = [gigabyte_bomb[i : i + 65536] for i in range(0, len(gigabyte_bomb), 65536)]
    wire = masked(0x42, chunks[0]) + b"".join(masked(0x00, c) for c in chunks[1:-1])
    tracemalloc.start()
    try:
        server.receive_data(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert server.failure is not None and server.failure.code == 1009
    assert peak < 16 * 2**20, peak  # against 1 GiB if it were inflated


def test_bomb_over_a_real_socket(gigabyte_bomb):
    with running_server(echo) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        request, _ = build_request("127.0.0.1", server.port, compression=DEFAULTS)
        sock.sendall(request.serialize())
        reader = HTTPReader("response")
        response = None
        while response is None:
            response = reader.feed(sock.recv(4096))
        assert "permessage-deflate" in response.headers["Sec-WebSocket-Extensions"]
        first = gigabyte_bomb[:500000]
        try:
            sock.sendall(masked(0x42, first))
        except OSError:
            pass
        data = reader.leftover
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        (close,) = FrameParser(mask_expected=False).feed(data)
        assert close.opcode is Opcode.CLOSE and close.payload[:2] == (1009).to_bytes(2, "big")
        sock.close()


# Over real sockets ----------------------------------------------------------------------


def test_wscodec_client_and_server_negotiate_and_compress():
    text = "".join(chat_messages(50))
    with running_server(echo) as server, connect(f"ws://127.0.0.1:{server.port}/") as client:
        assert client.protocol.deflate is not None
        assert "permessage-deflate" in client.response.headers["Sec-WebSocket-Extensions"]
        client.send(text)
        assert client.recv(timeout=5) == text
    with running_server(echo, compression=None) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as client:
            assert client.protocol.deflate is None
            client.send(text)
            assert client.recv(timeout=5) == text


def test_interop_with_websockets_both_ways():
    sync_client = pytest.importorskip("websockets.sync.client", reason="peer: websockets")
    sync_server = pytest.importorskip("websockets.sync.server", reason="peer: websockets")
    import threading

    text = "".join(chat_messages(300))
    with running_server(echo) as server:
        with sync_client.connect(f"ws://127.0.0.1:{server.port}/") as client:
            assert "permessage-deflate" in client.response.headers["Sec-WebSocket-Extensions"]
            for message in (text, text.encode(), text[:10]):
                client.send(message)
                assert client.recv(timeout=5) == message

    def peer_echo(connection):
        for message in connection:
            connection.send(message)

    peer = sync_server.serve(peer_echo, "127.0.0.1", 0)
    thread = threading.Thread(target=peer.serve_forever, daemon=True)
    thread.start()
    try:
        port = peer.socket.getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}/") as client:
            assert client.protocol.deflate is not None
            for message in (text, text.encode(), ""):
                client.send(message)
                assert client.recv(timeout=5) == message
    finally:
        peer.shutdown()
        thread.join(5)


def test_deflate_means_no_server_context_takeover_on_a_server_only():
    assert resolve("deflate", server=True) is SERVER_DEFAULT
    assert SERVER_DEFAULT.server_no_context_takeover
    assert resolve("deflate") is CLIENT_DEFAULT
    assert not CLIENT_DEFAULT.server_no_context_takeover
    options = DeflateOptions(level=1)
    assert resolve(options, server=True) is options
