"""Every SIMD path of the compiled kernels, on every length, alignment and tail.

The compiled module picks its widest kernels at import; ``_use_simd`` switches
to each narrower level this CPU has, so the portable, SSE2, AVX2 and AVX-512
(or NEON) paths are all checked here, against plain-Python references. The
page-boundary tests put the input's last byte right before an unmapped page:
reading even one byte past the end crashes the run.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import random
import sys

import pytest

from wscodec import _backend

compiled = _backend.compiled_codec
pytestmark = pytest.mark.skipif(compiled is None, reason="compiled backend absent")

LEVELS = list(compiled.SIMD_LEVELS) if compiled is not None else []


@pytest.fixture(params=LEVELS)
def level(request):
    kernels = compiled._use_simd(request.param)
    yield kernels
    compiled._use_simd()


def reference_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    return bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(data))


def decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_levels_and_kernels_are_reported():
    assert compiled.SIMD_LEVELS[0] == "portable"
    assert set(compiled.KERNELS) == {"mask", "utf8"}
    assert compiled.KERNELS["mask"] == compiled.SIMD_LEVELS[-1]
    features = compiled.cpu_features()
    assert all(isinstance(value, bool) for value in features.values())
    with pytest.raises(ValueError):
        compiled._use_simd("no-such-level")


def test_mask_every_length_start_and_phase(level):
    rng = random.Random(1)
    block = bytes(rng.randrange(256) for _ in range(300))
    key = bytes.fromhex("37fa213d")
    for start in range(8):
        for length in range(201):
            data = memoryview(block)[start : start + length]
            expected = reference_mask(bytes(data), key)
            assert compiled.apply_mask(data, key) == expected, (start, length)
            for offset in range(4):
                buffer = bytearray(block[: start + length + 3])
                view = memoryview(buffer)[start : start + length]
                compiled.apply_mask_into(view, key, offset)
                assert bytes(view) == reference_mask(bytes(data), key, offset)
                # Bytes around the view are untouched.
                assert buffer[:start] == block[:start]
                assert buffer[start + length :] == block[start + length : start + length + 3]


@pytest.mark.parametrize("length", [1023, 1024, 1025, 4096 + 67, 70001])
def test_mask_large_unaligned(level, length):
    data = os.urandom(length + 64)
    key = os.urandom(4)
    for start in (0, 1, 5, 33, 63):
        view = memoryview(data)[start : start + length]
        masked = compiled.apply_mask(view, key)
        assert compiled.apply_mask(masked, key) == bytes(view)
        assert masked[:300] == reference_mask(bytes(view[:300]), key)
        assert masked[-300:] == reference_mask(bytes(view[-300:]), key, length - 300)


def test_mask_beyond_the_streaming_threshold(level):
    """Copying masks this large write around the caches; the result is the same."""
    length = compiled.MASK_STREAMING_FROM + 67
    data = os.urandom(length + 64)
    key = os.urandom(4)
    for start in (0, 1, 33):
        view = memoryview(data)[start : start + length]
        assert compiled.apply_mask(view, key) == _backend.python_codec.apply_mask(view, key)
    # In place stays on ordinary stores; check it at the same size.
    buffer = bytearray(data[1 : 1 + length])
    compiled.apply_mask_into(buffer, key, 3)
    assert buffer == _backend.python_codec.apply_mask(data[1 : 1 + length], key[3:] + key[:3])


PIECES = [
    "a",
    "z~",
    "\u00e9",
    "\u07ff",
    "\u0800",
    "\u20ac",
    "\ud7ff",
    "\ue000",
    "\uffff",
    "\U00010000",
    "\U0001f600",
    "\U0010ffff",
]
BAD = [
    b"\x80",
    b"\xbf",
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xc2",
    b"\xe0\x80\x80",
    b"\xe0\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xff",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xe2\x82a",
]


def random_text(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += rng.choice(PIECES).encode()
    return bytes(out)


def check_utf8(data) -> None:
    data_bytes = bytes(data)
    expected = decodes(data_bytes)
    assert compiled.validate_utf8(data) is expected, data_bytes.hex()
    validator = compiled.Utf8Validator()
    validator.feed(data)
    assert validator.finish() is expected


def test_utf8_every_length_and_start(level):
    rng = random.Random(2)
    for length in range(201):
        text = random_text(rng, length + 8)
        for start in range(4):
            check_utf8(memoryview(text)[start : start + length])


def test_utf8_an_error_at_every_position(level):
    rng = random.Random(3)
    for length in (0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200):
        text = random_text(rng, length)
        for position in range(len(text) + 1):
            bad = rng.choice(BAD)
            check_utf8(text[:position] + bad + text[position:])


def test_utf8_errors_near_block_edges_of_large_inputs(level):
    rng = random.Random(4)
    text = random_text(rng, 5000)
    for edge in (64, 128, 1024, 2048, 4096):
        for delta in range(-4, 5):
            for bad in BAD:
                check_utf8(text[: edge + delta] + bad + text[edge + delta :])
    ascii_text = b"x" * 5000
    for edge in (64, 128, 1024, 4096):
        for delta in range(-4, 5):
            for bad in BAD:
                check_utf8(ascii_text[: edge + delta] + bad + ascii_text[edge + delta :])


def test_utf8_incremental_matches_the_python_twin(level):
    rng = random.Random(5)
    for _ in range(300):
        data = random_text(rng, rng.randrange(400))
        if rng.random() < 0.5:
            position = rng.randrange(len(data) + 1)
            data = data[:position] + rng.choice(BAD) + data[position:]
        validator = compiled.Utf8Validator()
        twin = _backend.python_codec.Utf8Validator()
        position = 0
        while position < len(data):
            step = rng.randrange(1, 90)
            chunk = data[position : position + step]
            assert validator.feed(chunk) is twin.feed(chunk), (data.hex(), position)
            position += step
        assert validator.finish() is twin.finish() is decodes(data)


def guarded_buffers(length: int):
    """``length`` bytes ending right before an unmapped page (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    region = mmap.mmap(-1, 2 * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(region))
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(address + page, page, 0) != 0:
        pytest.skip("mprotect failed")
    return region, (ctypes.c_ubyte * length).from_address(address + page - length)


@pytest.mark.skipif(sys.platform != "linux", reason="uses mprotect")
def test_no_read_past_the_end_at_a_page_boundary(level):
    rng = random.Random(6)
    key = bytes.fromhex("37fa213d")
    regions = []
    for length in [*range(0, 130), 255, 256, 257, 1023, 1024, 1025, 4000]:
        region, array = guarded_buffers(length)
        regions.append(region)
        view = memoryview(array).cast("B")
        payload = random_text(rng, length + 4)[:length]
        view[:] = payload
        assert compiled.apply_mask(view, key) == reference_mask(payload, key)
        compiled.apply_mask_into(view, key, 1)
        assert bytes(view) == reference_mask(payload, key, 1)
        view[:] = payload
        check_utf8(view)
        view[:] = b"a" * length
        check_utf8(view)
        if length:
            view[length - 1] = 0xE2
            check_utf8(view)
        frame = compiled.encode_frame(2, view, mask=key)
        assert compiled.FrameParser(mask_expected=True).feed(frame)[0].payload == bytes(view)
        del view, array
    for region in regions:
        region.close()
