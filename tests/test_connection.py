"""The sans-I/O connection: plain bytes in, events and bytes out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_differential import frames
from wscodec import ConnectionClosedError, ConnectionClosedOK, FrameParser, Opcode, encode_frame
from wscodec.connection import (
    BinaryMessage,
    CloseReceived,
    Connection,
    Fragment,
    Ping,
    Pong,
    PythonConnection,
    Role,
    State,
    TextMessage,
)

KEY = b"\x01\x02\x03\x04"


def client_frame(opcode, payload=b"", fin=True):
    return encode_frame(opcode, payload, fin=fin, mask=KEY)


def close_payload(code, reason=""):
    return code.to_bytes(2, "big") + reason.encode()


def sent_frames(connection: Connection, role_of_receiver: Role = Role.CLIENT):
    parser = FrameParser(mask_expected=role_of_receiver is Role.SERVER, max_frame_size=None)
    return parser.feed(connection.data_to_send())


@pytest.fixture
def server():
    return Connection(Role.SERVER)


def test_single_frame_messages(server):
    data = client_frame(Opcode.TEXT, "h\u00e9".encode()) + client_frame(Opcode.BINARY, b"\x00\xff")
    assert server.receive_data(data) == [TextMessage("h\u00e9"), BinaryMessage(b"\x00\xff")]


def test_fragments_with_interleaved_control_frames(server):
    data = (
        client_frame(Opcode.TEXT, b"frag", fin=False)
        + client_frame(Opcode.PING, b"p1")
        + client_frame(Opcode.CONTINUATION, b"men", fin=False)
        + client_frame(Opcode.PONG, b"p2")
        + client_frame(Opcode.CONTINUATION, b"ts")
    )
    for size in (1, 3, len(data)):
        connection = Connection(Role.SERVER)
        events = []
        for start in range(0, len(data), size):
            events += connection.receive_data(data[start : start + size])
        assert events == [Ping(b"p1"), Pong(b"p2"), TextMessage("fragments")]
        pong = sent_frames(connection)
        assert [(f.opcode, f.payload) for f in pong] == [(Opcode.PONG, b"p1")]


def test_auto_pong_can_be_disabled():
    connection = Connection(Role.SERVER, auto_pong=False)
    assert connection.receive_data(client_frame(Opcode.PING, b"x")) == [Ping(b"x")]
    assert connection.data_to_send() == b""


def test_has_data_to_send_tells_without_emptying(server):
    assert not server.has_data_to_send()
    server.receive_data(client_frame(Opcode.BINARY, b"no answer needed"))
    assert not server.has_data_to_send()
    server.receive_data(client_frame(Opcode.PING, b"p"))  # answered with a pong
    assert server.has_data_to_send() and server.has_data_to_send()
    assert [frame.opcode for frame in sent_frames(server)] == [Opcode.PONG]
    assert not server.has_data_to_send()
    server.receive_data(client_frame(Opcode.CLOSE, close_payload(1000)))  # a close is owed
    assert server.has_data_to_send() and server.close_pending
    assert [frame.opcode for frame in sent_frames(server)] == [Opcode.CLOSE]
    assert not server.has_data_to_send()


def test_peer_initiated_close(server):
    events = server.receive_data(client_frame(Opcode.CLOSE, close_payload(1001, "bye")))
    assert events == [CloseReceived(1001, "bye")]
    assert server.state is State.CLOSED
    (reply,) = sent_frames(server)
    assert reply.opcode is Opcode.CLOSE and reply.payload == close_payload(1001)
    assert server.close_code == 1001 and server.close_reason == "bye"
    assert isinstance(server.close_exception(), ConnectionClosedOK)
    with pytest.raises(ConnectionClosedOK):
        server.send_text("too late")


def test_close_without_code_is_1005(server):
    server.receive_data(client_frame(Opcode.CLOSE))
    assert server.close_code == 1005
    (reply,) = sent_frames(server)
    assert reply.payload == b""


def test_locally_initiated_close():
    client = Connection(Role.CLIENT)
    client.send_close(1000, "done")
    assert client.state is State.CLOSING
    (frame,) = sent_frames(client, Role.SERVER)
    assert frame.payload == close_payload(1000, "done")
    # Data still arriving before the server's close is delivered.
    server_bytes = encode_frame(Opcode.TEXT, b"late") + encode_frame(
        Opcode.CLOSE, close_payload(1000)
    )
    assert client.receive_data(server_bytes) == [TextMessage("late"), CloseReceived(1000, "")]
    assert client.state is State.CLOSED
    assert client.data_to_send() == b""  # no second close frame


def test_nothing_counts_after_the_close(server):
    data = client_frame(Opcode.CLOSE, close_payload(1000)) + client_frame(Opcode.TEXT, b"ignored")
    assert server.receive_data(data) == [CloseReceived(1000, "")]
    assert server.receive_data(client_frame(Opcode.TEXT, b"ignored")) == []


@pytest.mark.parametrize(
    "data, code",
    [
        (client_frame(Opcode.CONTINUATION, b"x"), 1002),
        (client_frame(Opcode.TEXT, b"a", fin=False) + client_frame(Opcode.BINARY, b"b"), 1002),
        (encode_frame(Opcode.TEXT, b"unmasked"), 1002),
        (client_frame(Opcode.TEXT, b"\xff"), 1007),
        (client_frame(Opcode.CLOSE, close_payload(1000) + b"\xff"), 1007),
        (client_frame(Opcode.CLOSE, close_payload(1005)), 1002),
        (client_frame(Opcode.BINARY, bytes(2**20 + 1)), 1009),
    ],
)
def test_errors_fail_with_the_right_close_code(server, data, code):
    events = server.receive_data(data)
    assert events == []
    assert server.failure is not None and server.failure.code == code
    (close,) = sent_frames(server)
    assert close.opcode is Opcode.CLOSE and int.from_bytes(close.payload[:2], "big") == code
    assert server.state is State.CLOSING
    assert server.receive_data(client_frame(Opcode.TEXT, b"more")) == []
    assert isinstance(server.close_exception(), ConnectionClosedError)


def test_utf8_fails_fast_on_the_bad_fragment(server):
    # Autobahn 6.4.1: the second fragment makes the text invalid; fail before the third.
    events = server.receive_data(
        client_frame(Opcode.TEXT, bytes.fromhex("cebae1bdb9cf83cebcceb5"), fin=False)
    )
    assert events == [] and server.failure is None
    server.receive_data(client_frame(Opcode.CONTINUATION, bytes.fromhex("f4908080"), fin=False))
    assert server.failure is not None and server.failure.code == 1007


def test_truncated_text_fails_at_the_end(server):
    server.receive_data(client_frame(Opcode.TEXT, b"ok\xe2\x82", fin=False))
    assert server.failure is None
    server.receive_data(client_frame(Opcode.CONTINUATION, b""))
    assert server.failure is not None and server.failure.code == 1007


def test_message_size_limit_across_fragments():
    connection = Connection(Role.SERVER, max_message_size=10)
    connection.receive_data(client_frame(Opcode.BINARY, b"123456", fin=False))
    assert connection.failure is None
    connection.receive_data(client_frame(Opcode.CONTINUATION, b"78901"))
    assert connection.failure is not None and connection.failure.code == 1009


def test_frames_before_an_error_are_delivered(server):
    data = client_frame(Opcode.TEXT, b"first") + b"\x83\x80" + KEY
    assert server.receive_data(data) == [TextMessage("first")]
    assert server.failure is not None and server.failure.code == 1002


def test_outgoing_fragmentation():
    connection = Connection(Role.SERVER, fragment_size=4)
    connection.send_text("abcdefghij")
    frames = sent_frames(connection)
    assert [(f.opcode, f.payload, f.fin) for f in frames] == [
        (Opcode.TEXT, b"abcd", False),
        (Opcode.CONTINUATION, b"efgh", False),
        (Opcode.CONTINUATION, b"ij", True),
    ]
    connection.send_binary(b"1234")
    assert [(f.opcode, f.fin) for f in sent_frames(connection)] == [(Opcode.BINARY, True)]


def test_manual_fragmentation_rules():
    connection = Connection(Role.CLIENT)
    connection.send_text("a", fin=False)
    with pytest.raises(RuntimeError):
        connection.send_binary(b"b")
    with pytest.raises(TypeError):
        connection.send_continuation(b"bytes in text", fin=True)
    connection.send_ping(b"between fragments")
    connection.send_continuation("b", fin=True)
    with pytest.raises(RuntimeError):
        connection.send_continuation("c", fin=True)
    frames = sent_frames(connection, Role.SERVER)
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.PING, Opcode.CONTINUATION]


def test_client_masks_with_fresh_keys():
    connection = Connection(Role.CLIENT)
    for _ in range(3):
        connection.send_binary(b"x" * 8)
    wire = connection.data_to_send()
    keys = {wire[i + 2 : i + 6] for i in range(0, len(wire), 14)}
    assert len(keys) == 3
    assert [f.payload for f in FrameParser(mask_expected=True).feed(wire)] == [b"x" * 8] * 3


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 5000])
def test_cannot_send_reserved_close_codes(code):
    with pytest.raises(ValueError):
        Connection(Role.SERVER).send_close(code)


def test_close_reason_length():
    with pytest.raises(ValueError):
        Connection(Role.SERVER).send_close(1000, "x" * 124)
    Connection(Role.SERVER).send_close(1000, "x" * 123)


def test_eof_without_close_is_1006(server):
    server.receive_data(client_frame(Opcode.TEXT, b"partial", fin=False))
    server.receive_eof()
    assert server.state is State.CLOSED and server.close_code == 1006
    assert isinstance(server.close_exception(), ConnectionClosedError)


def test_long_failure_reason_is_truncated_to_fit():
    connection = Connection(Role.SERVER)
    connection.fail(1011, "\u20ac" * 100)
    (close,) = sent_frames(connection)
    assert len(close.payload) <= 125
    close.payload[2:].decode("utf-8")


def test_utf8_fails_fast_within_a_frame(server):
    # Autobahn 6.4.3: one frame, sent in chops; the bad chop fails at once.
    frame = client_frame(Opcode.TEXT, bytes.fromhex("cebae1bdb9cf83cebcceb5f49080806564697465"))
    header = 6  # 2 bytes + mask
    assert server.receive_data(frame[: header + 11]) == [] and server.failure is None
    server.receive_data(frame[header + 11 : header + 15])
    assert server.failure is not None and server.failure.code == 1007


def test_partial_validation_then_completion(server):
    text = "\u00e9t\u00e9 \U0001f600 " * 50
    frame = client_frame(Opcode.TEXT, text.encode())
    events = []
    for start in range(0, len(frame), 7):  # cuts through code points too
        events += server.receive_data(frame[start : start + 7])
    assert events == [TextMessage(text)] and server.failure is None
    fragmented = client_frame(Opcode.TEXT, text.encode()[:101], fin=False) + client_frame(
        Opcode.CONTINUATION, text.encode()[101:]
    )
    events = []
    for start in range(0, len(fragmented), 5):
        events += server.receive_data(fragmented[start : start + 5])
    assert events == [TextMessage(text)] and server.failure is None


def test_answers_to_messages_before_an_error_go_out_before_the_close(server):
    # Autobahn 3.2 / 4.1.3 / 5.15: echo the good message, then fail.
    events = server.receive_data(client_frame(Opcode.TEXT, b"good") + b"\x83\x80" + KEY)
    assert events == [TextMessage("good")]
    assert server.failure is not None and server.close_pending
    server.send_text("good")  # still allowed: the close has not gone out
    frames = sent_frames(server)
    assert [(f.opcode, f.payload[:2]) for f in frames] == [
        (Opcode.TEXT, b"go"),
        (Opcode.CLOSE, (1002).to_bytes(2, "big")),
    ]
    assert not server.close_pending
    with pytest.raises(ConnectionClosedError):
        server.send_text("too late now")


def test_messages_before_the_peers_close_can_still_be_answered(server):
    # RFC 6455 5.5.1: an endpoint may delay its close until its current message is sent.
    events = server.receive_data(
        client_frame(Opcode.TEXT, b"last words") + client_frame(Opcode.CLOSE, close_payload(1000))
    )
    assert events == [TextMessage("last words"), CloseReceived(1000, "")]
    assert server.close_pending
    server.send_text("last words")
    frames = sent_frames(server)
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CLOSE]
    with pytest.raises(ConnectionClosedOK):
        server.send_text("after the close went out")


@pytest.mark.parametrize("max_message_size", [None, 2**25])
def test_arriving_frames_are_not_copied_again_and_again(max_message_size):
    # Fail-fast UTF-8 looks at each piece of a frame as it arrives; it must
    # only ever take the new bytes of a text frame, and none of a binary one.
    payload = bytes(range(256)) * 4096
    copied = []

    class CountingParser:
        def __init__(self, parser):
            self._parser = parser

        def whole_message(self, data):
            return self._parser.whole_message(data)

        def feed(self, data):
            return self._parser.feed(data)

        @property
        def buffered(self):
            return self._parser.buffered

        def pending_payload(self, offset=0):
            pending = self._parser.pending_payload(offset)
            if pending is not None:
                copied.append(len(pending[2]))
            return pending

    for opcode in (Opcode.BINARY, Opcode.TEXT):
        copied.clear()
        wire = client_frame(opcode, payload if opcode is Opcode.BINARY else b"x" * len(payload))
        # The Python class: the compiled twin's parser attribute takes only the compiled parser.
        connection = PythonConnection(Role.SERVER, max_message_size=max_message_size)
        connection._parser = CountingParser(connection._parser)
        for start in range(0, len(wire), 4096):
            connection.receive_data(wire[start : start + 4096])
        assert connection.failure is None
        limit = 0 if opcode is Opcode.BINARY else len(payload)
        assert sum(copied) <= limit, (opcode, sum(copied))


def test_large_immutable_payload_is_handed_over_beside_its_header(server):
    payload = bytes(range(256)) * 512  # 128 KiB
    server.send_text("small before")
    server.send_binary(payload)
    server.send_binary(b"small after")
    buffers = server.buffers_to_send()
    assert len(buffers) == 3
    assert buffers[1] is payload  # not copied
    assert bytes(buffers[0]).endswith(encode_frame(Opcode.BINARY, payload)[:10])
    joined = b"".join(buffers)
    expected = (
        encode_frame(Opcode.TEXT, b"small before")
        + encode_frame(Opcode.BINARY, payload)
        + encode_frame(Opcode.BINARY, b"small after")
    )
    assert joined == expected
    assert server.buffers_to_send() == []


@pytest.mark.parametrize(
    "payload",
    [bytearray(70000), memoryview(bytearray(70000)), memoryview(bytes(140000)).cast("H")],
    ids=["bytearray", "view-of-bytearray", "view-of-shorts"],
)
def test_payloads_that_may_change_are_copied(server, payload):
    server.send_binary(payload)
    buffers = server.buffers_to_send()
    assert len(buffers) == 1 and isinstance(buffers[0], bytes)
    assert buffers[0] == encode_frame(Opcode.BINARY, bytes(memoryview(payload).cast("B")))


def test_data_to_send_still_returns_one_bytes_object(server):
    payload = b"\x07" * 100_000
    server.send_binary(payload)
    server.send_close(1000)
    data = server.data_to_send()
    assert type(data) is bytes
    frames = FrameParser(mask_expected=False, max_frame_size=None).feed(data)
    assert [(f.opcode, f.payload) for f in frames] == [
        (Opcode.BINARY, payload),
        (Opcode.CLOSE, close_payload(1000)),
    ]


def test_fragments_of_a_large_message_keep_their_headers():
    connection = Connection(Role.SERVER, fragment_size=65536)
    payload = bytes(range(251)) * 600  # 150,600 bytes: three frames
    connection.send_binary(payload)
    buffers = connection.buffers_to_send()
    assert len(buffers) == 5  # header, 64 KiB, header, 64 KiB, whole last frame
    frames = FrameParser(mask_expected=False, max_frame_size=None).feed(b"".join(buffers))
    assert [(f.opcode, f.fin, len(f.payload)) for f in frames] == [
        (Opcode.BINARY, False, 65536),
        (Opcode.CONTINUATION, False, 65536),
        (Opcode.CONTINUATION, True, 150600 - 131072),
    ]
    assert b"".join(f.payload for f in frames) == payload


def test_a_client_always_masks_large_payloads_into_one_frame():
    client = Connection(Role.CLIENT)
    payload = b"\x00" * 100_000
    client.send_binary(payload)
    buffers = client.buffers_to_send()
    assert len(buffers) == 1
    (frame,) = FrameParser(mask_expected=True, max_frame_size=None).feed(buffers[0])
    assert frame.payload == payload


# Hostile input: fragment count, stored failures, what one call inflates (issue 21) ----


def deflating_server(**options):
    from wscodec.deflate import PerMessageDeflate

    extension = PerMessageDeflate(
        local_no_context_takeover=False,
        remote_no_context_takeover=False,
        local_max_window_bits=15,
        remote_max_window_bits=15,
    )
    return Connection(Role.SERVER, deflate=extension, **options)


def compressed_frame(data: bytes, compressor=None) -> bytes:
    """One masked, compressed text frame (RFC 7692: the sync flush tail stripped)."""
    import zlib

    compressor = compressor or zlib.compressobj(wbits=-15)
    payload = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return encode_frame(Opcode.TEXT, payload[:-4], mask=KEY, rsv1=True)


def test_fragment_count_is_capped_with_1009():
    from wscodec.protocol import DEFAULT_MAX_FRAGMENTS

    connection = Connection(Role.SERVER)
    assert connection.max_fragments == DEFAULT_MAX_FRAGMENTS
    connection.receive_data(client_frame(Opcode.TEXT, b"x", fin=False))
    empty = client_frame(Opcode.CONTINUATION, b"", fin=False)
    connection.receive_data(empty * (DEFAULT_MAX_FRAGMENTS - 1))  # the cap itself is fine
    assert connection.failure is None
    connection.receive_data(empty)
    assert connection.failure is not None and connection.failure.code == 1009
    assert connection.close_sent is not None and connection.close_sent[0] == 1009


def test_fragment_count_cap_is_an_option():
    connection = Connection(Role.SERVER, max_fragments=3)
    data = client_frame(Opcode.BINARY, b"a", fin=False) + client_frame(
        Opcode.CONTINUATION, b"b", fin=False
    )
    assert connection.receive_data(data + client_frame(Opcode.CONTINUATION, b"c")) == [
        BinaryMessage(b"abc")
    ]
    connection.receive_data(data + client_frame(Opcode.CONTINUATION, b"c", fin=False))
    connection.receive_data(client_frame(Opcode.CONTINUATION, b"d"))
    assert connection.failure is not None and connection.failure.code == 1009
    unlimited = Connection(Role.SERVER, max_fragments=None)
    many = client_frame(Opcode.CONTINUATION, b"", fin=False) * 100_000
    unlimited.receive_data(client_frame(Opcode.TEXT, b"x", fin=False) + many)
    assert unlimited.receive_data(client_frame(Opcode.CONTINUATION, b"y")) == [TextMessage("xy")]
    with pytest.raises(ValueError):
        Connection(Role.SERVER, max_fragments=0)


def test_tiny_fragments_cost_their_payload_only():
    """1-byte fragments used to cost ~56 bytes each (a bytes object and a list slot)."""
    import tracemalloc

    count = 60_000
    connection = Connection(Role.SERVER, max_message_size=None)
    data = client_frame(Opcode.BINARY, b"a", fin=False)
    data += client_frame(Opcode.CONTINUATION, b"b", fin=False) * (count - 1)
    tracemalloc.start()
    try:
        connection.receive_data(data)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 4 * count, held  # the payload (1 byte each) and a bytearray's slack
    (message,) = connection.receive_data(client_frame(Opcode.CONTINUATION, b"c"))
    assert message == BinaryMessage(b"a" + b"b" * (count - 1) + b"c")


def _failed_connection_is_freed(make, wire, code):
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        connection = make()
        connection.receive_data(wire)
        failure = connection.failure
        assert failure is not None and failure.code == code
        reference = weakref.ref(connection)
        del connection  # the application may keep the exception: not the connection
        assert reference() is None, "a reference cycle keeps the failed connection alive"
        assert failure.__traceback__ is None and failure.frames == []
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "wire, code",
    [
        (b"\x83\x80" + KEY, 1002),  # reserved opcode: raised by the parser
        (client_frame(Opcode.TEXT, b"ab") + client_frame(Opcode.CONTINUATION, b"c"), 1002),
        (client_frame(Opcode.TEXT, b"\xff"), 1007),
        (client_frame(Opcode.BINARY, b"x" * 2000), 1009),  # frame header over the limit
        (
            client_frame(Opcode.BINARY, b"x" * 600, fin=False)
            + client_frame(Opcode.CONTINUATION, b"x" * 600),
            1009,  # message assembly over the limit
        ),
    ],
)
def test_a_failed_connection_is_freed_without_the_garbage_collector(wire, code):
    _failed_connection_is_freed(lambda: Connection(Role.SERVER, max_message_size=1000), wire, code)


def test_a_refused_deflate_bomb_is_freed_without_the_garbage_collector():
    bomb = compressed_frame(bytes(4 * 2**20))  # inflates past the 1 MiB limit: 1009
    _failed_connection_is_freed(deflating_server, bomb, 1009)
    corrupt = encode_frame(Opcode.BINARY, b"\xff\xff\xff\xff", mask=KEY, rsv1=True)
    _failed_connection_is_freed(deflating_server, corrupt, 1007)  # chained to a zlib.error


def test_one_call_inflates_a_budget_at_most():
    """50 compressed 100 KiB messages in one read: delivered a budget at a time."""
    from wscodec.protocol import INFLATE_BUDGET

    size, count, limit = 100 * 1024, 50, INFLATE_BUDGET
    texts = [bytes([65 + n % 26]) * size for n in range(count)]
    wire = b"".join(compressed_frame(text) for text in texts)
    assert len(wire) < 50 * 1024  # what a peer sends for 5 MB of messages
    connection = deflating_server(max_message_size=None)
    received = []
    batch = connection.receive_data(wire)
    calls = 1
    while True:
        assert sum(len(event.data) for event in batch) < 2 * limit
        received += batch
        if not connection.pending_input:
            break
        batch = connection.receive_data(b"")
        calls += 1
    assert [event.data.encode() for event in received] == texts
    assert calls == 5  # 11 messages (> 1 MiB) a call, then the last 6
    assert connection.failure is None and not connection.pending_input


def test_held_frames_come_before_new_data_and_a_later_error():
    size = 400 * 1024  # three make more than INFLATE_BUDGET (1 MiB)
    connection = deflating_server()
    wire = b"".join(compressed_frame(b"%d" % n * size) for n in range(4))
    first = connection.receive_data(wire + b"\x83\x80" + KEY)  # a reserved opcode after them
    assert len(first) == 3 and connection.pending_input and connection.failure is None
    assert connection.receive_data(b"") == [TextMessage("3" * size)]
    assert connection.failure is not None and connection.failure.code == 1002
    assert not connection.pending_input and connection.receive_data(b"") == []
    # New data fed without waiting comes after what was held.
    connection = deflating_server()
    assert len(connection.receive_data(wire)) == 3
    later = connection.receive_data(client_frame(Opcode.TEXT, b"new"))
    assert later == [TextMessage("3" * size), TextMessage("new")]


# Plain messages (plain_messages=True) -------------------------------------------


def test_plain_messages_are_their_data_and_other_events_unchanged():
    text = "h\u00e9llo".encode()
    data = (
        client_frame(Opcode.BINARY, b"one")
        + client_frame(Opcode.TEXT, text[:2], fin=False)
        + client_frame(Opcode.PING, b"p")
        + client_frame(Opcode.CONTINUATION, text[2:])
        + client_frame(Opcode.BINARY, b"x" * 5000, fin=False)
        + client_frame(Opcode.CONTINUATION, b"y")
        + client_frame(Opcode.CLOSE, close_payload(1000))
    )
    for size in (1, 7, len(data)):
        connection = Connection(Role.SERVER, plain_messages=True)
        events = []
        for start in range(0, len(data), size):
            events += connection.receive_data(data[start : start + size])
        assert events == [
            b"one",
            Ping(b"p"),
            "h\u00e9llo",
            b"x" * 5000 + b"y",
            CloseReceived(1000, ""),
        ]
        assert [type(event) for event in events[:4]] == [bytes, Ping, str, bytes]


def test_plain_messages_keep_the_checks():
    connection = Connection(Role.SERVER, plain_messages=True)
    assert connection.receive_data(client_frame(Opcode.TEXT, b"\xff")) == []
    assert connection.close_sent is not None and connection.close_sent[0] == 1007


# The shortcut for whole messages (message_frame) ---------------------------------


def test_message_frame_is_the_frame_send_would_queue():
    for data in (b"bin", "t\u00e9xt", b"", b"x" * 65535):
        shortcut, usual = Connection(Role.SERVER), Connection(Role.SERVER)
        (usual.send_text if isinstance(data, str) else usual.send_binary)(data)
        assert shortcut.message_frame(data) == usual.data_to_send()
        assert not shortcut.has_data_to_send()  # the caller writes it
    client = Connection(Role.CLIENT)
    [frame] = FrameParser(mask_expected=True, max_frame_size=None).feed(client.message_frame(b"m"))
    assert (frame.opcode, frame.payload) == (Opcode.BINARY, b"m")


def test_message_frame_declines_what_needs_the_usual_path():
    from wscodec.deflate import PerMessageDeflate

    large = Connection(Role.SERVER)
    assert large.message_frame(b"x" * 65536) is None and large.message_frame("y" * 65536) is None
    queued = Connection(Role.SERVER)
    queued.send_ping(b"p")  # must go out first
    assert queued.message_frame(b"m") is None
    fragmenting = Connection(Role.SERVER)
    fragmenting.send_binary(b"a", fin=False)
    fragmenting.data_to_send()
    assert fragmenting.message_frame(b"m") is None
    closing = Connection(Role.SERVER)
    closing.send_close()
    closing.data_to_send()
    assert closing.message_frame(b"m") is None
    failed = Connection(Role.SERVER)
    failed.receive_data(client_frame(Opcode.CONTINUATION, b"x"))
    assert failed.message_frame(b"m") is None
    assert Connection(Role.SERVER, fragment_size=10).message_frame(b"m") is None
    deflating = Connection(
        Role.SERVER,
        deflate=PerMessageDeflate(
            local_no_context_takeover=True,
            remote_no_context_takeover=True,
            local_max_window_bits=15,
            remote_max_window_bits=15,
        ),
    )
    assert deflating.message_frame(b"m") is None


# Streaming fragments (stream_fragments=True) ------------------------------------


def streamed(data: bytes, size: int, **options) -> list:
    connection = Connection(Role.SERVER, stream_fragments=True, **options)
    events = []
    for start in range(0, len(data), size):
        events += connection.receive_data(data[start : start + size])
    return events


def test_streamed_text_splits_no_character():
    """A character cut across frames comes whole, with the piece that completes it."""
    text = "h\u00e9llo w\u00f6rld \U0001f600!".encode()
    cuts = [0, 2, 9, 17, len(text)]  # 2 and 17 cut a 2-byte and a 4-byte character
    data = b"".join(
        client_frame(Opcode.TEXT if i == 0 else Opcode.CONTINUATION, text[a:b], fin=b == len(text))
        for i, (a, b) in enumerate(zip(cuts, cuts[1:]))
    )
    for size in (1, 5, len(data)):
        events = streamed(data, size)
        assert [type(e) for e in events] == [Fragment] * 4
        assert [e.final for e in events] == [False, False, False, True]
        assert events[0].data == "h"  # the "é" waits for its second byte
        assert "".join(e.data for e in events) == text.decode()


def test_streamed_binary_and_whole_messages_side_by_side():
    data = (
        client_frame(Opcode.BINARY, b"ab", fin=False)
        + client_frame(Opcode.PING, b"p")
        + client_frame(Opcode.CONTINUATION, b"cd")
        + client_frame(Opcode.TEXT, b"whole")
    )
    assert streamed(data, len(data)) == [
        Fragment(b"ab", False),
        Ping(b"p"),
        Fragment(b"cd", True),
        TextMessage("whole"),  # a message in one frame still comes whole
    ]


def test_streamed_messages_keep_the_limits():
    frames = client_frame(Opcode.BINARY, b"x" * 6, fin=False) + client_frame(
        Opcode.CONTINUATION, b"x" * 6
    )
    connection = Connection(Role.SERVER, stream_fragments=True, max_message_size=10)
    assert connection.receive_data(frames) == [Fragment(b"x" * 6, False)]
    assert connection.close_sent is not None and connection.close_sent[0] == 1009


def test_streamed_text_with_bad_utf8_fails_on_its_fragment():
    data = client_frame(Opcode.TEXT, b"ok", fin=False) + client_frame(
        Opcode.CONTINUATION, b"\xff", fin=False
    )
    connection = Connection(Role.SERVER, stream_fragments=True)
    assert connection.receive_data(data) == [Fragment("ok", False)]
    assert connection.close_sent is not None and connection.close_sent[0] == 1007


def test_streamed_text_truncated_at_the_end_fails():
    data = client_frame(Opcode.TEXT, b"ok\xc3", fin=False) + client_frame(Opcode.CONTINUATION, b"")
    connection = Connection(Role.SERVER, stream_fragments=True)
    assert connection.receive_data(data) == [Fragment("ok", False)]
    assert connection.close_sent is not None and connection.close_sent[0] == 1007


def test_streamed_compressed_message_comes_inflated():
    from wscodec.deflate import PerMessageDeflate

    sender = Connection(
        Role.CLIENT,
        fragment_size=20,
        deflate=PerMessageDeflate(
            local_no_context_takeover=False,
            remote_no_context_takeover=False,
            local_max_window_bits=15,
            remote_max_window_bits=15,
        ),
    )
    text = "streamed and compressed " * 50 + "".join(chr(c) for c in range(0x400, 0x600))
    sender.send_text(text)
    receiver = deflating_server(stream_fragments=True)
    events = receiver.receive_data(sender.data_to_send())
    assert len(events) > 1 and all(type(e) is Fragment for e in events)
    assert "".join(e.data for e in events) == text


# The whole-message shortcut (FrameParser.whole_message) changes nothing --------------


def received_all(connection_class, chunks, plain):
    """Every event, every byte answered, and the end state, for ``chunks`` in order."""
    connection = connection_class(
        Role.SERVER, max_message_size=1000, max_fragments=8, plain_messages=plain
    )
    events, sent = [], b""
    for chunk in chunks:
        events += connection.receive_data(chunk)
        sent += connection.data_to_send()
    failure = connection.failure
    return (
        events,
        sent,
        connection.state,
        connection.close_code,
        None if failure is None else (type(failure), failure.code, failure.reason),
    )


@given(st.lists(frames(masked=True), max_size=8), st.booleans())
def test_a_frame_per_read_gives_what_a_byte_per_read_gives(wire_frames, plain):
    # One frame per read takes the shortcut wherever it applies; one byte per
    # read never does (a frame's first byte alone is not a frame).
    data = b"".join(wire_frames)
    one_byte_reads = [data[i : i + 1] for i in range(len(data))]
    for connection_class in {Connection, PythonConnection}:
        assert received_all(connection_class, wire_frames, plain) == received_all(
            connection_class, one_byte_reads, plain
        )
