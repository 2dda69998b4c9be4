"""Differential tests: both backends get the same random and hostile input.

Input is cut into random chunks; the twins must return the same frames (and
report the same buffered size) after every chunk, or raise the same error
(type, close code and reason) with the same frames completed before it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wscodec import Opcode, ProtocolError
from wscodec.protocol import RSV1, RSV2, RSV3

# Bytes that matter to UTF-8 validation, so random text hits every DFA edge.
UTF8_PIECES = st.one_of(
    st.text(max_size=8).map(str.encode),
    st.sampled_from(
        [
            b"\x80",
            b"\xbf",
            b"\xc0",
            b"\xc2",
            b"\xdf",
            b"\xe0",
            b"\xe0\xa0",
            b"\xe0\x9f",
            b"\xed",
            b"\xed\x9f",
            b"\xed\xa0",
            b"\xef",
            b"\xf0",
            b"\xf0\x90",
            b"\xf0\x8f",
            b"\xf4",
            b"\xf4\x8f",
            b"\xf4\x90",
            b"\xf5",
            b"\xff",
        ]
    ),
    st.binary(max_size=4),
)
UTF8_STREAM = st.lists(UTF8_PIECES, max_size=30).map(b"".join)


def outcome(call, *args, **kwargs):
    """A call's result, or its error reduced to something comparable."""
    try:
        return ("ok", call(*args, **kwargs))
    except ProtocolError as error:
        return ("protocol-error", type(error), error.code, error.reason, list(error.frames))
    except Exception as error:
        return ("error", type(error), str(error))


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in zip(bounds, bounds[1:])] or [b""]


# Masking ---------------------------------------------------------------------------


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.integers(0, 10))
def test_mask_same_output(both, data, key, offset):
    compiled, python = both
    assert compiled.apply_mask(data, key) == python.apply_mask(data, key)
    a, b = bytearray(data), bytearray(data)
    compiled.apply_mask_into(a, key, offset)
    python.apply_mask_into(b, key, offset)
    assert a == b


ODD_ARGUMENTS = st.one_of(
    st.binary(max_size=6),
    st.text(max_size=3),
    st.integers(-2, 5),
    st.none(),
    st.builds(bytearray, st.binary(max_size=6)),
    st.builds(memoryview, st.binary(max_size=6)),
)


@given(ODD_ARGUMENTS, ODD_ARGUMENTS, ODD_ARGUMENTS)
def test_mask_same_errors(both, data, key, offset):
    compiled, python = both
    assert outcome(compiled.apply_mask, data, key) == outcome(python.apply_mask, data, key)
    results = []
    for twin in both:
        target = bytearray(data) if isinstance(data, (bytes, bytearray)) else data
        results.append((outcome(twin.apply_mask_into, target, key, offset), target))
    assert results[0] == results[1]


# UTF-8 -----------------------------------------------------------------------------


@given(UTF8_STREAM, st.lists(st.integers(0, 200), max_size=6))
def test_utf8_same_verdicts(both, data, points):
    compiled, python = both
    assert compiled.validate_utf8(data) == python.validate_utf8(data)
    validators = [twin.Utf8Validator() for twin in both]
    for chunk in cut(data, points):
        assert validators[0].feed(chunk) == validators[1].feed(chunk)
    assert validators[0].finish() == validators[1].finish()


# Frames ----------------------------------------------------------------------------


def raw_frame(first: int, payload: bytes, key: bytes | None, length_form: int) -> bytes:
    """A frame with any header bits and any of the three length encodings."""
    length = len(payload)
    mask_bit = 0x80 if key is not None else 0
    if length_form == 0 and length < 126:
        header = bytes((first, mask_bit | length))
    elif length_form <= 1 and length < 65536:
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    if key is None:
        return header + payload
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


CLOSE_PAYLOADS = st.one_of(
    st.just(b""),
    st.binary(max_size=1),
    st.tuples(st.integers(0, 65535), UTF8_STREAM).map(
        lambda t: t[0].to_bytes(2, "big") + t[1][:100]
    ),
    st.tuples(
        st.sampled_from([1000, 1001, 1004, 1005, 1006, 1015, 2999, 3000, 4999, 5000]),
        st.text(max_size=20),
    ).map(lambda t: t[0].to_bytes(2, "big") + t[1].encode()[:100]),
)


@st.composite
def frames(draw, masked: bool):
    opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10, 0, 1, 2, 3, 0xB, 0xF]))
    fin = draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else opcode < 8 or True
    rsv = draw(st.sampled_from([0, 0, 0, RSV1, RSV2, RSV3, RSV1 | RSV2]))
    if opcode == 8:
        payload = draw(CLOSE_PAYLOADS)
    else:
        payload = draw(
            st.one_of(st.binary(max_size=140), UTF8_STREAM, st.binary(min_size=200, max_size=1500))
        )
    if draw(st.integers(0, 9)) == 0:
        masked = not masked  # a masking violation
    key = draw(st.binary(min_size=4, max_size=4)) if masked else None
    length_form = draw(st.sampled_from([0, 0, 0, 1, 2]))
    return raw_frame(opcode | rsv | (0x80 if fin else 0), payload, key, length_form)


HOSTILE = st.sampled_from(
    [
        b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",  # 64-bit length with its MSB set
        b"\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00",  # 4 GiB claimed
        b"\x89\x7e\x00\x80",  # control frame with a 16-bit length
        b"\x09\x00",  # fragmented ping
        b"\x88\x01\x03",  # 1-byte close
    ]
)


@st.composite
def streams(draw):
    mask_expected = draw(st.booleans())
    parts = draw(
        st.lists(
            st.one_of(
                frames(mask_expected), frames(mask_expected), HOSTILE, st.binary(max_size=12)
            ),
            max_size=8,
        )
    )
    options = {
        "mask_expected": mask_expected,
        "max_frame_size": draw(st.sampled_from([None, 0, 10, 125, 1000, 2**20])),
        "allowed_rsv": draw(st.sampled_from([0, 0, RSV1, RSV1 | RSV2 | RSV3])),
    }
    return options, b"".join(parts)


def run_parser(twin, options, chunks):
    parser = twin.FrameParser(**options)
    history = []
    for chunk in chunks:
        # The shortcut first: whatever it answers, feed() must see the chunk untouched.
        whole = outcome(parser.whole_message, chunk)
        result = outcome(parser.feed, chunk)
        history.append(
            (
                whole,
                result,
                parser.buffered,
                parser.pending_payload(),
                parser.pending_payload(len(chunk) % 7),
            )
        )
        if result[0] != "ok":
            history.append(outcome(parser.feed, b"\x81\x00"))  # stays failed
            break
    return history


@given(streams(), st.lists(st.integers(0, 5000), max_size=12))
def test_parser_same_frames_and_errors(both, stream, points):
    options, data = stream
    chunks = cut(data, points)
    assert run_parser(both[0], options, chunks) == run_parser(both[1], options, chunks)


def collect(twin, options, chunks):
    """Every frame delivered, and the error that ended the stream (or None)."""
    parser = twin.FrameParser(**options)
    delivered = []
    for chunk in chunks:
        try:
            delivered.extend(parser.feed(chunk))
        except ProtocolError as error:
            delivered.extend(error.frames)
            return delivered, (type(error), error.code, error.reason)
    return delivered, None


@given(streams(), st.lists(st.integers(0, 5000), max_size=12))
def test_whole_message_is_what_feed_gives(both, stream, points):
    # Whenever the shortcut answers, feed() on the same input gives that one message.
    options, data = stream
    for twin in both:
        for chunk in [data, *cut(data, points)]:
            message = twin.FrameParser(**options).whole_message(chunk)
            if message is None:
                continue
            [frame] = twin.FrameParser(**options).feed(chunk)
            assert frame.fin and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            if frame.opcode is Opcode.TEXT:
                assert message == frame.payload.decode("utf-8")
            else:
                assert frame.opcode is Opcode.BINARY and message == frame.payload


@given(streams())
def test_parser_chunking_does_not_matter(both, stream):
    options, data = stream
    for twin in both:
        whole = collect(twin, options, [data])
        assert collect(twin, options, [data[i : i + 1] for i in range(len(data))]) == whole


@given(
    st.integers(-2, 20),
    st.binary(max_size=200),
    st.booleans(),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4), st.binary(max_size=6)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_encoder_same_bytes_and_errors(both, opcode, payload, fin, mask, rsv1, rsv2, rsv3):
    results = [
        outcome(
            twin.encode_frame, opcode, payload, fin=fin, mask=mask, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3
        )
        for twin in both
    ]
    assert results[0] == results[1]
