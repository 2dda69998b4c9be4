"""pytest-benchmark timings of the three kernels on both backends.

    python -m pytest benchmarks/ --benchmark-group-by=param:size

Not part of the test suite (timed tests are noisy); ``ratios.py`` prints the
same kernels as ratios to a memory copy.
"""

from __future__ import annotations

import os

import pytest

from wscodec import _backend
from wscodec.protocol import Opcode

KEY = b"\x37\xfa\x21\x3d"
SIZES = [1024, 65536, 1048576]
TWINS = {"python": _backend.python_codec, "cython": _backend.compiled_codec}


@pytest.fixture(params=[name for name, twin in TWINS.items() if twin is not None])
def codec(request):
    return TWINS[request.param]


@pytest.fixture(params=SIZES, ids=lambda s: f"{s}B")
def size(request):
    return request.param


def test_memcpy(benchmark, size):
    source = os.urandom(size)
    target = memoryview(bytearray(size))

    def copy():
        target[:] = source

    benchmark(copy)


def test_apply_mask(benchmark, codec, size):
    benchmark(codec.apply_mask, os.urandom(size), KEY)


def test_apply_mask_into(benchmark, codec, size):
    benchmark(codec.apply_mask_into, bytearray(size), KEY)


def test_validate_utf8_mixed(benchmark, codec, size):
    data = ("caf\u00e9 \u4e2d\u6587 \U0001f600 " * size).encode()[:size]
    data = data.decode("utf-8", "ignore").encode()
    assert benchmark(codec.validate_utf8, data)


def test_parse_masked_frames(benchmark, codec, size):
    frame = codec.encode_frame(Opcode.BINARY, os.urandom(size), mask=KEY)
    stream = frame * max(1, 65536 // len(frame))

    def parse():
        return codec.FrameParser(mask_expected=True).feed(stream)

    assert benchmark(parse)


def test_encode_frame(benchmark, codec, size):
    benchmark(codec.encode_frame, Opcode.BINARY, os.urandom(size))
