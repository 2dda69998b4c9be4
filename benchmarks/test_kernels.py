"""pytest-benchmark timings of every kernel, the parser and the encoder, on both twins.

    python -m pytest benchmarks/ --benchmark-only --benchmark-group-by=func,param:size

Never part of the test run (``testpaths`` is ``tests``) and asserting nothing
about speed: ``python -m benchmarks`` prints the same work as ratios to
memcpy, next to the peers.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.timing import copy_buffers
from wscodec import _backend
from wscodec.protocol import Opcode

KEY = b"\x37\xfa\x21\x3d"
SIZES = [16, 1024, 65536, 1048576]
TWINS = {"python": _backend.python_codec, "cython": _backend.compiled_codec}
BINARY = Opcode.BINARY


@pytest.fixture(params=[name for name, twin in TWINS.items() if twin is not None])
def codec(request):
    return TWINS[request.param]


@pytest.fixture(params=SIZES, ids=lambda s: f"{s}B")
def size(request):
    return request.param


def test_memcpy(benchmark, size):
    source, target = copy_buffers(size)

    def copy():
        target[:] = source

    benchmark(copy)


def test_apply_mask(benchmark, codec, size):
    benchmark(codec.apply_mask, os.urandom(size), KEY)


def test_apply_mask_into(benchmark, codec, size):
    benchmark(codec.apply_mask_into, bytearray(size), KEY)


@pytest.mark.parametrize("kind", ["ascii", "mixed"])
def test_validate_utf8(benchmark, codec, size, kind):
    sample = "ascii only " if kind == "ascii" else "caf\u00e9 \u4e2d\u6587 \U0001f600 "
    data = (sample * size).encode()[:size].decode("utf-8", "ignore").encode()
    assert benchmark(codec.validate_utf8, data)


def test_utf8_incremental_64k_chunks(benchmark, codec):
    data = ("caf\u00e9 \u4e2d\u6587 \U0001f600 " * 70000).encode()[: 2**20]
    data = data.decode("utf-8", "ignore").encode()
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]

    def run():
        validator = codec.Utf8Validator()
        for chunk in chunks:
            validator.feed(chunk)
        return validator.finish()

    assert benchmark(run)


def test_parse_masked_frames(benchmark, codec, size):
    frame = codec.encode_frame(BINARY, os.urandom(size), mask=KEY)
    stream = frame * max(1, 262144 // len(frame))
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]

    def parse():
        parser = codec.FrameParser(mask_expected=True, max_frame_size=None)
        return sum(len(parser.feed(chunk)) for chunk in chunks)

    assert benchmark(parse)


def test_encode_server_frame(benchmark, codec, size):
    benchmark(codec.encode_frame, BINARY, os.urandom(size))


def test_encode_client_frame(benchmark, codec, size):
    benchmark(codec.encode_frame, BINARY, os.urandom(size), mask=KEY)
