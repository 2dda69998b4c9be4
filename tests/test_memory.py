"""Reference counting and leaks: long parse/encode loops keep the RSS flat.

Each backend runs every codec entry point (and the shared inflater) many
times on fresh objects, after a warm-up that fills allocator pools and
caches. A reference leaked per call (a payload, a frame, an exception or a
buffer view not released) would grow the resident set by at least the
payload size per iteration: hundreds of megabytes here, against a bound of
a few. The loop is bounded in time as well as in count.
"""

from __future__ import annotations

import gc
import os
import time
import zlib

import pytest
from conftest import backend_module

from wscodec import ProtocolError
from wscodec.deflate import PerMessageDeflate

psutil = pytest.importorskip("psutil")

ITERATIONS = 3000
WARMUP = 300
SECONDS = 4.0  # per backend, at most
BOUND = 8 * 2**20  # RSS may grow by less than this after the warm-up

KEY = b"\x37\xfa\x21\x3d"
PAYLOAD = bytes(range(256)) * 64  # 16 KiB: below the nogil threshold
BIG = b"x" * 70000  # 64-bit length and the nogil paths
TEXT = "wscodec ✓ ".encode() * 1000


def rss() -> int:
    return psutil.Process(os.getpid()).memory_info().rss


def exercise(codec, extension, compressed) -> None:
    """One pass over every entry point, errors included."""
    wire = codec.encode_frame(2, PAYLOAD, mask=KEY)
    wire += codec.encode_frame(1, TEXT, mask=KEY, fin=False)
    wire += codec.encode_frame(0, BIG, mask=KEY)
    wire += codec.encode_frame(8, b"\x03\xe8bye", mask=KEY)
    parser = codec.FrameParser(mask_expected=True, max_frame_size=None)
    frames = parser.feed(wire[:1000]) + parser.feed(memoryview(wire)[1000:])
    assert len(frames) == 4
    frames = codec.FrameParser(mask_expected=True).feed(bytearray(wire))
    assert frames[2].payload == BIG
    try:  # an error carrying the frames completed before it
        codec.FrameParser(mask_expected=True).feed(wire[:200] + wire + b"\x83\x80")
    except ProtocolError as error:
        assert error.frames is not None
    try:
        codec.FrameParser(mask_expected=False, max_frame_size=10).feed(wire)
    except ProtocolError:
        pass
    assert codec.apply_mask(codec.apply_mask(BIG, KEY), KEY) == BIG
    buffer = bytearray(PAYLOAD)
    codec.apply_mask_into(buffer, KEY, 3)
    try:
        codec.apply_mask(PAYLOAD, b"abc")
    except ValueError:
        pass
    assert codec.validate_utf8(TEXT)
    assert not codec.validate_utf8(TEXT + b"\xed\xa0\x80")
    validator = codec.Utf8Validator()
    validator.feed(TEXT[:5])
    validator.feed(memoryview(TEXT)[5:])
    assert validator.finish()
    extension.start_message()
    assert len(extension.inflate(compressed, None, True)) == len(BIG)


@pytest.mark.parametrize("backend", ["cython", "python"])
def test_rss_stays_flat(backend):
    codec = backend_module(backend)
    extension = PerMessageDeflate(
        local_no_context_takeover=True,
        remote_no_context_takeover=True,
        local_max_window_bits=12,
        remote_max_window_bits=12,
    )
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
    compressed = (compressor.compress(BIG) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    for _ in range(WARMUP):
        exercise(codec, extension, compressed)
    gc.collect()
    before = rss()
    deadline = time.monotonic() + SECONDS
    done = 0
    while done < ITERATIONS and time.monotonic() < deadline:
        exercise(codec, extension, compressed)
        done += 1
    gc.collect()
    growth = rss() - before
    print(f"{backend}: {done} iterations, RSS grew by {growth / 1024:.0f} KiB")
    assert done >= 200, "too few iterations to tell"
    assert growth < BOUND, f"RSS grew by {growth} bytes in {done} iterations"
