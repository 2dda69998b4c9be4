"""Masking: apply_mask and apply_mask_into on both backends."""

from __future__ import annotations

import array
import os

import pytest

KEY = bytes.fromhex("37fa213d")


def reference_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    return bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(data))


def test_rfc_example(codec):
    assert codec.apply_mask(b"Hello", KEY) == bytes.fromhex("7f9f4d5158")


@pytest.mark.parametrize(
    "length",
    [*range(0, 80), 125, 126, 127, 1023, 1024, 4095, 65535, 65536, 65537, 1 << 20, (1 << 20) + 3],
)
def test_every_length_matches_reference(codec, length):
    data = os.urandom(length)
    key = os.urandom(4)
    masked = codec.apply_mask(data, key)
    assert type(masked) is bytes
    if length <= 4096:
        assert masked == reference_mask(data, key)
    assert codec.apply_mask(masked, key) == data  # masking is its own inverse


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_bytes_like(codec, kind):
    data = b"abcdefghij" * 7
    assert codec.apply_mask(kind(data), kind(KEY)) == reference_mask(data, KEY)


def test_accepts_typed_arrays_as_bytes(codec):
    values = array.array("I", range(50))
    assert codec.apply_mask(values, KEY) == reference_mask(values.tobytes(), KEY)


def test_unaligned_slices(codec):
    data = os.urandom(1000)
    view = memoryview(data)
    for start in range(9):
        assert codec.apply_mask(view[start:], KEY) == reference_mask(data[start:], KEY)


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde", bytes(8)])
def test_mask_must_be_four_bytes(codec, mask):
    with pytest.raises(ValueError, match="mask must contain 4 bytes"):
        codec.apply_mask(b"data", mask)
    with pytest.raises(ValueError, match="mask must contain 4 bytes"):
        codec.apply_mask_into(bytearray(b"data"), mask)


@pytest.mark.parametrize("bad", ["text", 42, None, [1, 2, 3, 4]])
def test_rejects_non_bytes(codec, bad):
    with pytest.raises(TypeError, match="bytes-like object is required"):
        codec.apply_mask(bad, KEY)
    with pytest.raises(TypeError, match="bytes-like object is required"):
        codec.apply_mask(b"data", bad)


def test_rejects_non_contiguous(codec):
    strided = memoryview(bytes(range(20)))[::2]
    with pytest.raises(TypeError, match="contiguous bytes-like"):
        codec.apply_mask(strided, KEY)


@pytest.mark.parametrize("length", [0, 1, 3, 7, 8, 31, 32, 33, 100, 70000])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5, 1001, 2**63 - 1, 2**63 + 1, 2**100 + 3, True])
def test_in_place_with_offset(codec, length, offset):
    data = os.urandom(length)
    buffer = bytearray(data)
    assert codec.apply_mask_into(buffer, KEY, offset) is None
    assert bytes(buffer) == reference_mask(data, KEY, offset)


def test_in_place_pieces_equal_whole(codec):
    data = os.urandom(1000)
    buffer = bytearray(data)
    view = memoryview(buffer)
    position = 0
    for size in (1, 2, 3, 5, 8, 13, 21, 300, 647):
        codec.apply_mask_into(view[position : position + size], KEY, offset=position)
        position += size
    assert position == len(data)
    assert bytes(buffer) == codec.apply_mask(data, KEY)


def test_in_place_needs_writable_buffer(codec):
    with pytest.raises(TypeError, match="writable contiguous bytes-like"):
        codec.apply_mask_into(b"read-only", KEY)
    with pytest.raises(TypeError, match="writable contiguous bytes-like"):
        codec.apply_mask_into("text", KEY)


def test_in_place_rejects_negative_offset(codec):
    with pytest.raises(ValueError, match="offset must not be negative"):
        codec.apply_mask_into(bytearray(4), KEY, -1)


@pytest.mark.parametrize(
    "mask", [b"abc", b"abcde", bytearray(b"abcd"), memoryview(b"abcd"), "abcd"]
)
def test_in_place_checks_the_mask_of_any_type(codec, mask):
    buffer = bytearray(b"payload!")
    if isinstance(mask, str):
        with pytest.raises(TypeError):
            codec.apply_mask_into(buffer, mask)
    elif len(mask) != 4:
        with pytest.raises(ValueError, match="4 bytes"):
            codec.apply_mask_into(buffer, mask)
    else:
        codec.apply_mask_into(buffer, mask)
        assert bytes(buffer) == reference_mask(b"payload!", b"abcd")
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        codec.apply_mask_into(buffer, KEY, 1.0)
