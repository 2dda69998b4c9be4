"""Frame parsing and encoding on both backends."""

from __future__ import annotations

import os

import pytest

from wscodec import Frame, InvalidUtf8, Opcode, PayloadTooBig, ProtocolError
from wscodec.codec import data_frame_header
from wscodec.protocol import RSV1, RSV2, RSV3

KEY = bytes.fromhex("37fa213d")

# RFC 6455 section 5.7, byte for byte.
RFC_EXAMPLES = [
    ("unmasked text", "810548656c6c6f", False, [Frame(Opcode.TEXT, b"Hello")]),
    ("masked text", "818537fa213d7f9f4d5158", True, [Frame(Opcode.TEXT, b"Hello")]),
    (
        "fragmented",
        "010348656c80026c6f",
        False,
        [Frame(Opcode.TEXT, b"Hel", fin=False), Frame(Opcode.CONTINUATION, b"lo")],
    ),
    ("unmasked ping", "890548656c6c6f", False, [Frame(Opcode.PING, b"Hello")]),
    ("masked pong", "8a8537fa213d7f9f4d5158", True, [Frame(Opcode.PONG, b"Hello")]),
]


def split_everywhere(data: bytes):
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]
    yield [data[i : i + 1] for i in range(len(data))]


def parse_chunks(codec, chunks, **options):
    options.setdefault("mask_expected", False)
    parser = codec.FrameParser(**options)
    frames = []
    for chunk in chunks:
        frames.extend(parser.feed(chunk))
    return frames, parser


@pytest.mark.parametrize(
    "name, wire, masked, frames", RFC_EXAMPLES, ids=[e[0] for e in RFC_EXAMPLES]
)
def test_rfc_examples_parse(codec, name, wire, masked, frames):
    data = bytes.fromhex(wire)
    for chunks in split_everywhere(data):
        parsed, parser = parse_chunks(codec, chunks, mask_expected=masked)
        assert parsed == frames
        assert parser.buffered == 0


@pytest.mark.parametrize(
    "name, wire, masked, frames", RFC_EXAMPLES, ids=[e[0] for e in RFC_EXAMPLES]
)
def test_rfc_examples_encode(codec, name, wire, masked, frames):
    encoded = b"".join(
        codec.encode_frame(f.opcode, f.payload, fin=f.fin, mask=KEY if masked else None)
        for f in frames
    )
    assert encoded.hex() == wire


@pytest.mark.parametrize(
    "length, header",
    [
        (256, "827e0100"),
        (65536, "827f0000000000010000"),
        (125, "827d"),
        (126, "827e007e"),
        (65535, "827effff"),
    ],
)
def test_length_encodings(codec, length, header):
    payload = os.urandom(length)
    wire = codec.encode_frame(Opcode.BINARY, payload)
    assert wire[: len(header) // 2].hex() == header
    assert wire[len(header) // 2 :] == payload
    assert parse_chunks(codec, [wire], max_frame_size=None)[0] == [Frame(Opcode.BINARY, payload)]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("masked", [False, True])
def test_round_trip_sizes(codec, length, masked):
    payload = os.urandom(length)
    wire = codec.encode_frame(Opcode.BINARY, payload, mask=KEY if masked else None)
    frames, _ = parse_chunks(codec, [wire], mask_expected=masked)
    assert frames == [Frame(Opcode.BINARY, payload)]
    # And across chunk sizes that straddle header and payload.
    for size in (1, 3, 7, 1000):
        chunks = (
            [wire[i : i + size] for i in range(0, len(wire), size)]
            if length < 2000 or size > 500
            else []
        )
        if chunks:
            assert parse_chunks(codec, chunks, mask_expected=masked)[0] == [
                Frame(Opcode.BINARY, payload)
            ]


def test_many_frames_every_split(codec):
    frames = [
        Frame(Opcode.TEXT, b"first", fin=False),
        Frame(Opcode.PING, b"ping!"),
        Frame(Opcode.CONTINUATION, b"x" * 130),
        Frame(Opcode.CONTINUATION, b"", fin=True),
        Frame(Opcode.BINARY, bytes(range(200))),
        Frame(Opcode.CLOSE, b"\x03\xe8bye"),
    ]
    wire = b"".join(codec.encode_frame(f.opcode, f.payload, fin=f.fin, mask=KEY) for f in frames)
    for chunks in split_everywhere(wire):
        assert parse_chunks(codec, chunks, mask_expected=True)[0] == frames


def test_payload_types_and_flags(codec):
    wire = codec.encode_frame(Opcode.BINARY, b"x", rsv1=True, rsv2=True, rsv3=True)
    assert wire[0] == 0x80 | RSV1 | RSV2 | RSV3 | 2
    frames, _ = parse_chunks(codec, [wire], allowed_rsv=RSV1 | RSV2 | RSV3)
    assert frames == [Frame(Opcode.BINARY, b"x", True, True, True, True)]
    frame = frames[0]
    assert type(frame.payload) is bytes
    assert frame.opcode is Opcode.BINARY and frame.fin is True


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_bytes_like(codec, kind):
    wire = codec.encode_frame(Opcode.TEXT, b"hi", mask=KEY)
    assert parse_chunks(codec, [kind(wire)], mask_expected=True)[0] == [Frame(Opcode.TEXT, b"hi")]


# Rules: each violation gets its close code and its message, however the bytes arrive.


def frame_bytes(first: int, second: int, rest: bytes = b"") -> bytes:
    return bytes((first, second)) + rest


VIOLATIONS = [
    ("reserved opcode 3", frame_bytes(0x83, 0x00), False, 1002, "reserved opcode 0x3"),
    ("reserved opcode 0xB", frame_bytes(0x8B, 0x00), False, 1002, "reserved opcode 0xb"),
    ("rsv1 without extension", frame_bytes(0xC1, 0x00), False, 1002, "reserved bits set"),
    ("rsv2", frame_bytes(0xA1, 0x00), False, 1002, "reserved bits set"),
    ("rsv3", frame_bytes(0x91, 0x00), False, 1002, "reserved bits set"),
    ("fragmented ping", frame_bytes(0x09, 0x00), False, 1002, "fragmented control frame"),
    ("fragmented close", frame_bytes(0x08, 0x00), False, 1002, "fragmented control frame"),
    ("unmasked from client", frame_bytes(0x81, 0x00), True, 1002, "expected a masked frame"),
    ("masked from server", frame_bytes(0x81, 0x80, KEY), False, 1002, "expected an unmasked frame"),
    (
        "long ping",
        frame_bytes(0x89, 0x7E, b"\x00\x7e" + bytes(126)),
        False,
        1002,
        "control frame payload of 126 bytes exceeds 125",
    ),
    ("long pong 7-bit 127", frame_bytes(0x8A, 0x7F), False, 1002, "exceeds 125"),
    (
        "64-bit msb",
        frame_bytes(0x82, 0x7F, b"\x80" + bytes(7)),
        False,
        1002,
        "most significant bit",
    ),
    (
        "over limit 16-bit",
        frame_bytes(0x82, 0x7E, b"\x01\x01"),
        False,
        1009,
        "frame payload of 257 bytes exceeds the limit of 100 bytes",
    ),
    (
        "over limit 7-bit",
        frame_bytes(0x82, 0x7D),
        False,
        1009,
        "payload of 125 bytes exceeds the limit of 100",
    ),
    ("close 1 byte", frame_bytes(0x88, 0x01, b"\x03"), False, 1002, "1-byte payload"),
    (
        "close code 999",
        frame_bytes(0x88, 0x02, (999).to_bytes(2, "big")),
        False,
        1002,
        "close code 999 is not allowed",
    ),
    (
        "close reason not utf-8",
        frame_bytes(0x88, 0x04, b"\x03\xe8\xff\xfe"),
        False,
        1007,
        "close reason is not valid UTF-8",
    ),
]


@pytest.mark.parametrize(
    "name, wire, mask_expected, code, message", VIOLATIONS, ids=[v[0] for v in VIOLATIONS]
)
def test_violations(codec, name, wire, mask_expected, code, message):
    for chunks in split_everywhere(wire + b"trailing"):
        parser = codec.FrameParser(mask_expected=mask_expected, max_frame_size=100)
        with pytest.raises(ProtocolError) as caught:
            for chunk in chunks:
                parser.feed(chunk)
        assert caught.value.code == code
        assert message in caught.value.reason
        # The parser stays failed.
        with pytest.raises(ProtocolError) as again:
            parser.feed(b"\x81\x00")
        assert again.value == caught.value


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_codes_not_allowed_on_wire(codec, code):
    wire = frame_bytes(0x88, 0x02, code.to_bytes(2, "big"))
    with pytest.raises(ProtocolError) as caught:
        codec.FrameParser(mask_expected=False).feed(wire)
    assert caught.value.code == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4999])
def test_close_codes_allowed_on_wire(codec, code):
    payload = code.to_bytes(2, "big") + "r\u00e9ason".encode()
    frames = codec.FrameParser(mask_expected=False).feed(frame_bytes(0x88, len(payload), payload))
    assert frames == [Frame(Opcode.CLOSE, payload)]


def test_error_types(codec):
    with pytest.raises(PayloadTooBig):
        codec.FrameParser(mask_expected=False, max_frame_size=1).feed(b"\x82\x02")
    with pytest.raises(InvalidUtf8):
        codec.FrameParser(mask_expected=False).feed(b"\x88\x03\x03\xe8\xff")


def test_size_limit_checked_before_payload_arrives(codec):
    parser = codec.FrameParser(mask_expected=True, max_frame_size=1000)
    with pytest.raises(PayloadTooBig) as caught:
        parser.feed(b"\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00")  # claims 4 GiB
    assert caught.value.code == 1009
    assert parser.buffered == 0


def test_size_limit_is_inclusive_and_optional(codec):
    wire = codec.encode_frame(Opcode.BINARY, bytes(1000))
    assert len(parse_chunks(codec, [wire], max_frame_size=1000)[0]) == 1
    assert len(parse_chunks(codec, [wire], max_frame_size=None)[0]) == 1
    with pytest.raises(PayloadTooBig):
        parse_chunks(codec, [wire], max_frame_size=999)


def test_unbounded_large_frame_in_pieces(codec):
    payload = os.urandom(3 * 2**20 + 5)
    wire = codec.encode_frame(Opcode.BINARY, payload, mask=KEY)
    chunks = [wire[i : i + 65536] for i in range(0, len(wire), 65536)]
    frames, _ = parse_chunks(codec, chunks, mask_expected=True, max_frame_size=None)
    assert frames == [Frame(Opcode.BINARY, payload)]


def test_buffered_counts_the_incomplete_frame(codec):
    wire = codec.encode_frame(Opcode.BINARY, b"x" * 300, mask=KEY)
    parser = codec.FrameParser(mask_expected=True)
    assert parser.feed(wire[:3]) == [] and parser.buffered == 3
    assert parser.feed(wire[3:100]) == [] and parser.buffered == 100
    assert len(parser.feed(wire[100:])) == 1 and parser.buffered == 0


def test_frames_before_an_error_are_kept(codec):
    good = codec.encode_frame(Opcode.TEXT, b"one") + codec.encode_frame(Opcode.TEXT, b"two")
    parser = codec.FrameParser(mask_expected=False)
    with pytest.raises(ProtocolError) as caught:
        parser.feed(good + b"\x83\x00")
    assert caught.value.frames == [Frame(Opcode.TEXT, b"one"), Frame(Opcode.TEXT, b"two")]


def test_allowed_rsv_applies_to_data_frames_only(codec):
    parser = codec.FrameParser(mask_expected=False, allowed_rsv=RSV1)
    assert parser.feed(b"\xc1\x00") == [Frame(Opcode.TEXT, b"", rsv1=True)]
    assert parser.feed(b"\x40\x00") == [Frame(Opcode.CONTINUATION, b"", fin=False, rsv1=True)]
    with pytest.raises(ProtocolError, match="reserved bits"):
        parser.feed(b"\xa1\x00")  # RSV2 still refused
    ping_rsv1 = codec.FrameParser(mask_expected=False, allowed_rsv=RSV1)
    with pytest.raises(ProtocolError, match="reserved bits"):
        ping_rsv1.feed(b"\xc9\x00")


def test_allowed_rsv_can_be_set_after_negotiation(codec):
    parser = codec.FrameParser(mask_expected=False)
    parser.allowed_rsv = RSV1
    assert parser.allowed_rsv == RSV1
    assert parser.feed(b"\xc2\x00")[0].rsv1 is True
    with pytest.raises(ValueError):
        parser.allowed_rsv = 0x80


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_limit(codec, bad):
    with pytest.raises(ValueError, match="max_frame_size"):
        codec.FrameParser(mask_expected=False, max_frame_size=bad)


def test_parser_properties(codec):
    parser = codec.FrameParser(mask_expected=True)
    assert parser.mask_expected is True
    assert parser.max_frame_size == 2**20
    assert codec.FrameParser(mask_expected=False, max_frame_size=None).max_frame_size is None


# Encoding errors.


@pytest.mark.parametrize("opcode", [3, 7, 0xB, 0xF, 16, -1])
def test_encode_rejects_reserved_opcodes(codec, opcode):
    with pytest.raises(ValueError, match="not a valid opcode"):
        codec.encode_frame(opcode, b"")


def test_encode_rejects_bad_control_frames(codec):
    with pytest.raises(ValueError, match="cannot be fragmented"):
        codec.encode_frame(Opcode.PING, b"", fin=False)
    with pytest.raises(ValueError, match="126 bytes exceeds 125"):
        codec.encode_frame(Opcode.CLOSE, bytes(126))
    assert codec.encode_frame(Opcode.PONG, bytes(125))[:2] == b"\x8a\x7d"


def test_encode_argument_errors(codec):
    with pytest.raises(ValueError, match="4 bytes"):
        codec.encode_frame(Opcode.TEXT, b"x", mask=b"abc")
    with pytest.raises(TypeError, match="bytes-like"):
        codec.encode_frame(Opcode.TEXT, "text")
    with pytest.raises(TypeError):
        codec.encode_frame("1", b"")


def test_encode_opcode_as_int(codec):
    assert codec.encode_frame(2, b"ab") == b"\x82\x02ab"


def test_pending_payload_shows_a_frame_as_it_arrives(codec):
    wire = codec.encode_frame(Opcode.TEXT, b"hello world", mask=KEY)
    parser = codec.FrameParser(mask_expected=True)
    assert parser.pending_payload() is None
    parser.feed(wire[:4])  # header not complete: no payload yet
    assert parser.pending_payload() is None
    parser.feed(wire[4:6])
    assert parser.pending_payload() == (Opcode.TEXT, False, b"")
    parser.feed(wire[6:11])
    assert parser.pending_payload() == (Opcode.TEXT, False, b"hello")
    assert parser.pending_payload(3) == (Opcode.TEXT, False, b"lo")
    assert parser.pending_payload(99) == (Opcode.TEXT, False, b"")
    with pytest.raises(ValueError):
        parser.pending_payload(-1)
    parser.feed(wire[11:])
    assert parser.pending_payload() is None


def test_pending_payload_unbounded_large_frame(codec):
    payload = bytes(range(256)) * 8192  # 2 MiB: collected in chunks without a limit
    wire = codec.encode_frame(Opcode.BINARY, payload, mask=KEY)
    parser = codec.FrameParser(mask_expected=True, max_frame_size=None)
    parser.feed(wire[: 3 * 2**20 // 2])
    opcode, rsv1, data = parser.pending_payload(1000)
    assert opcode is Opcode.BINARY and not rsv1
    assert data == payload[1000 : 3 * 2**20 // 2 - 14]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION])
@pytest.mark.parametrize("fin, rsv1", [(True, False), (False, False), (True, True)])
def test_data_frame_header_is_what_encode_frame_puts_first(codec, length, opcode, fin, rsv1):
    payload = b"\x5a" * length
    frame = codec.encode_frame(opcode, payload, fin=fin, rsv1=rsv1)
    assert data_frame_header(opcode, length, fin=fin, rsv1=rsv1) + payload == frame


# whole_message: one small whole message per read, without a Frame ----------------


def masked_frame(codec, opcode, payload: bytes) -> bytes:
    return codec.encode_frame(opcode, payload, mask=KEY)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535])
@pytest.mark.parametrize("mask_expected", [True, False])
def test_whole_message_hands_over_a_whole_data_frame(codec, length, mask_expected):
    binary = bytes(range(256)) * (length // 256 + 1)
    mask = KEY if mask_expected else None
    parser = codec.FrameParser(mask_expected=mask_expected, max_frame_size=None)
    wire = codec.encode_frame(Opcode.BINARY, binary[:length], mask=mask)
    assert parser.whole_message(wire) == binary[:length]
    text = ("é" * length)[: length // 2] + "x" * (length % 2)
    wire = codec.encode_frame(Opcode.TEXT, text.encode(), mask=mask)
    for kind in (bytes, bytearray, memoryview):
        message = parser.whole_message(kind(wire))
        assert type(message) is str and message == text
    assert parser.buffered == 0
    assert parser.feed(wire) == [Frame(Opcode.TEXT, text.encode())]  # nothing was consumed


WHOLE_MESSAGE_REFUSALS = [
    # (name, wire, parser options): each is left to feed(), byte for byte.
    ("not final", bytes([0x02, 0x82]) + KEY + b"ab", {}),
    ("continuation", bytes([0x80, 0x82]) + KEY + b"ab", {}),
    ("ping", bytes([0x89, 0x82]) + KEY + b"ab", {}),
    ("close", bytes([0x88, 0x82]) + KEY + b"\x03\xe8", {}),
    ("rsv1 allowed", bytes([0xC2, 0x82]) + KEY + b"ab", {"allowed_rsv": RSV1}),
    ("rsv1 refused", bytes([0xC2, 0x82]) + KEY + b"ab", {}),
    ("reserved opcode", bytes([0x83, 0x82]) + KEY + b"ab", {}),
    ("unmasked", bytes([0x82, 0x02]) + b"ab", {}),
    ("64-bit length", bytes([0x82, 0xFF]) + (2).to_bytes(8, "big") + KEY + b"ab", {}),
    ("over the limit", bytes([0x82, 0x82]) + KEY + b"ab", {"max_frame_size": 1}),
    ("incomplete", bytes([0x82, 0x83]) + KEY + b"ab", {}),
    ("a second frame after", (bytes([0x82, 0x82]) + KEY + b"ab") * 2, {}),
    ("one byte", b"\x82", {}),
    ("16-bit length cut", b"\x82\xfe\x00", {}),
    (
        "invalid UTF-8",
        bytes([0x81, 0x82]) + KEY + bytes(b ^ k for b, k in zip(b"\xc0\xaf", KEY)),
        {},
    ),
    ("truncated UTF-8", bytes([0x81, 0x81]) + KEY + bytes([0xC3 ^ KEY[0]]), {}),
]


@pytest.mark.parametrize(
    "name, wire, options", WHOLE_MESSAGE_REFUSALS, ids=[r[0] for r in WHOLE_MESSAGE_REFUSALS]
)
def test_whole_message_leaves_every_other_input_to_feed(codec, name, wire, options):
    options = {"mask_expected": True, **options}
    for chunks in ([wire], [wire[:1], wire[1:]]):
        parser, fresh = codec.FrameParser(**options), codec.FrameParser(**options)
        assert parser.whole_message(wire) is None
        for chunk in chunks:
            # The same frames, or the same error, as a parser that never saw the call.
            assert outcome_of(parser.feed, chunk) == outcome_of(fresh.feed, chunk)


def outcome_of(call, *args):
    try:
        return ("ok", call(*args))
    except ProtocolError as error:
        return ("error", type(error), error.code, error.reason, error.frames)


def test_whole_message_waits_for_a_frame_in_progress_and_a_failed_parser(codec):
    parser = codec.FrameParser(mask_expected=True)
    wire = masked_frame(codec, Opcode.BINARY, b"hello")
    assert parser.feed(wire[:1]) == []
    assert parser.whole_message(wire) is None  # a header is half read
    assert parser.feed(wire[1:]) == [Frame(Opcode.BINARY, b"hello")]
    assert parser.feed(wire[:9]) == []
    assert parser.whole_message(wire) is None  # a payload is half read
    assert parser.feed(wire[9:]) == [Frame(Opcode.BINARY, b"hello")]
    with pytest.raises(ProtocolError):
        parser.feed(b"\x82\x00")  # unmasked
    assert parser.whole_message(wire) is None
    with pytest.raises(ProtocolError):
        parser.feed(wire)  # still failed


def test_whole_message_refuses_what_is_not_bytes_like(codec):
    parser = codec.FrameParser(mask_expected=True)
    with pytest.raises(TypeError):
        parser.whole_message(12345)
    assert parser.whole_message(masked_frame(codec, Opcode.BINARY, b"x")) == b"x"
