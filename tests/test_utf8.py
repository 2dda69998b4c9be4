"""UTF-8 validation, one-shot and incremental (fail fast), on both backends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.utf8_corpus import INVALID, VALID, first_invalid_position


@pytest.mark.parametrize("name", VALID)
def test_valid(codec, name):
    assert codec.validate_utf8(VALID[name]) is True


@pytest.mark.parametrize("name", INVALID)
def test_invalid(codec, name):
    assert codec.validate_utf8(INVALID[name]) is False


@pytest.mark.parametrize("name", INVALID)
def test_invalid_after_long_ascii_run(codec, name):
    # Exercises the word-at-a-time ASCII path before the bad bytes.
    assert codec.validate_utf8(b"x" * 1000 + INVALID[name] + b"y" * 100) is False


def test_every_code_point_class(codec):
    text = "".join(chr(c) for c in range(0, 0x11000, 7) if not 0xD800 <= c <= 0xDFFF)
    text += "".join(chr(c) for c in range(0x10000, 0x110000, 4099))
    assert codec.validate_utf8(text.encode())


@pytest.mark.parametrize("code_point", [0xD800, 0xDB7F, 0xDC00, 0xDFFF])
def test_every_surrogate_form_rejected(codec, code_point):
    encoded = chr(code_point).encode("utf-8", "surrogatepass")
    assert codec.validate_utf8(encoded) is False


def test_all_two_byte_prefixes(codec):
    for first in range(256):
        for second in range(256):
            data = bytes((first, second))
            expected = _decodes(data)
            assert codec.validate_utf8(data) is expected, data.hex()


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_bytes_like(codec, kind):
    assert codec.validate_utf8(kind("\u20ac".encode()))
    validator = codec.Utf8Validator()
    assert validator.feed(kind(b"ok"))


def test_rejects_non_bytes(codec):
    with pytest.raises(TypeError, match="bytes-like object is required, not str"):
        codec.validate_utf8("text")
    with pytest.raises(TypeError, match="bytes-like object is required, not int"):
        codec.Utf8Validator().feed(3)


@pytest.mark.parametrize(
    "data, position",
    [
        (b"\x80", 0),
        (b"\xc0", 0),
        (b"\xc1", 0),
        (b"\xf5", 0),
        (b"\xff", 0),
        (b"\xe0\x80", 1),  # overlong: E0 needs A0-BF next
        (b"\xed\xa0", 1),  # surrogate: ED needs 80-9F next
        (b"\xf0\x8f", 1),  # overlong: F0 needs 90-BF next
        (b"\xf4\x90", 1),  # above U+10FFFF: F4 needs 80-8F next
        (b"\xc3a", 1),
        (b"\xe2\x82a", 2),
        (b"\xf0\x9f\x98a", 3),
        (b"ab\xce\xba\xff", 4),
    ],
)
def test_fails_at_the_first_impossible_byte(codec, data, position):
    validator = codec.Utf8Validator()
    for index in range(len(data)):
        ok = validator.feed(data[index : index + 1])
        assert ok is (index < position), index
    assert first_invalid_position(data) == position  # the oracle agrees


@pytest.mark.parametrize("name", VALID)
def test_incremental_split_everywhere(codec, name):
    data = VALID[name]
    validator = codec.Utf8Validator()
    for cut in range(len(data) + 1):
        assert validator.feed(data[:cut]) is True
        assert validator.feed(data[cut:]) is True
        assert validator.finish() is True


@pytest.mark.parametrize("name", INVALID)
def test_incremental_invalid(codec, name):
    data = INVALID[name]
    position = first_invalid_position(data)
    validator = codec.Utf8Validator()
    for index, byte in enumerate(data):
        assert validator.feed(bytes([byte])) is (position is None or index < position)
    assert validator.finish() is False
    # finish() reset the validator for the next message.
    assert validator.feed(b"fine") and validator.finish()


def test_truncated_only_fails_at_finish(codec):
    validator = codec.Utf8Validator()
    assert validator.feed(b"abc\xf0\x9f") is True
    assert validator.finish() is False


def test_failure_is_sticky_until_reset(codec):
    validator = codec.Utf8Validator()
    assert validator.feed(b"\xff") is False
    assert validator.feed(b"plain ascii") is False
    validator.reset()
    assert validator.feed(b"plain ascii") is True
    assert validator.finish() is True


def test_autobahn_6_4_fail_fast_on_second_fragment(codec):
    # Case 6.4.x: the first fragment is valid, the second holds F4 90 80 80.
    validator = codec.Utf8Validator()
    assert validator.feed(bytes.fromhex("cebae1bdb9cf83cebcceb5")) is True
    assert validator.feed(bytes.fromhex("f4908080")) is False


def test_large_inputs(codec):
    big = ("\u00e9t\u00e9 \u4e2d\u6587 \U0001f600 ascii " * 50000).encode()
    assert codec.validate_utf8(big)
    assert not codec.validate_utf8(big + b"\xc0\x80")
    assert not codec.validate_utf8(big + "\u20ac".encode()[:2])
    validator = codec.Utf8Validator()
    assert validator.feed(big[:123457]) and validator.feed(big[123457:]) and validator.finish()


@given(st.binary(max_size=64), st.data())
def test_matches_cpython_on_random_bytes(codec, data, draw):
    assert codec.validate_utf8(data) is _decodes(data)
    position = first_invalid_position(data)
    cut = draw.draw(st.integers(0, len(data)))
    validator = codec.Utf8Validator()
    first = validator.feed(data[:cut])
    assert first is (position is None or position >= cut)
    second = validator.feed(data[cut:])
    assert second is (position is None)
    assert validator.finish() is _decodes(data)


@given(st.text(max_size=200), st.integers(0, 3))
def test_valid_text_always_accepted(codec, text, junk):
    data = text.encode()
    assert codec.validate_utf8(data)
