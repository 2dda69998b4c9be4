"""Reference counting and leaks: long parse/encode loops leak nothing.

Each backend runs every codec entry point (and the shared inflater) many
times on fresh objects, after a warm-up that fills allocator pools and
caches. Two measures, in a fresh interpreter:

- ``sys.getallocatedblocks()``, exact: every object and every buffer taken
  from Python's allocators, whatever its size. A reference leaked per call
  (a payload, a frame, an exception, a buffer view not released) leaves at
  least one block per iteration: thousands here, against a bound of a few
  hundred for caches that settle.
- the resident set, coarse: it also sees memory taken from C's ``malloc``
  directly, but glibc keeps freed heap for reuse, so it moves by tens of
  megabytes without any leak (26 MiB on CPython 3.13 for the pure twin,
  plateauing after 2000 iterations, while the block count stayed constant).
  Its bound catches a leaked payload-sized buffer per call (70 KB x 3000).

A fresh interpreter because inside the whole suite the threads and heap left
by earlier tests move both figures on their own. The loop is bounded in time
as well as in count.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from tests.conftest import backend_module
from wscodec import ProtocolError
from wscodec.deflate import PerMessageDeflate

psutil = pytest.importorskip("psutil")

ITERATIONS = 3000
WARMUP = 300
SECONDS = 15.0  # per backend, at most
BLOCKS_BOUND = 300  # allocator blocks gained after the warm-up: under 0.1 per call
RSS_BOUND = 64 * 2**20  # one leaked BIG per call would be 200 MiB

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


def measure(backend: str) -> dict:
    """Run the loop after a warm-up; return the iterations done and what grew."""
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
    blocks_before, rss_before = sys.getallocatedblocks(), rss()
    deadline = time.monotonic() + SECONDS
    done = 0
    while done < ITERATIONS and time.monotonic() < deadline:
        exercise(codec, extension, compressed)
        done += 1
    gc.collect()
    return {
        "done": done,
        "blocks": sys.getallocatedblocks() - blocks_before,
        "rss": rss() - rss_before,
    }


@pytest.mark.parametrize("backend", ["cython", "python"])
def test_rss_stays_flat(backend):
    backend_module(backend)  # skips here when the compiled twin is absent
    root = Path(__file__).resolve().parents[1]
    script = (
        f"import sys, json; sys.path.insert(0, {str(root)!r}); "
        f"from tests import test_memory; print(json.dumps(test_memory.measure({backend!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    done, blocks, growth = result["done"], result["blocks"], result["rss"]
    print(f"{backend}: {done} iterations, {blocks:+d} blocks, RSS {growth / 1024:+.0f} KiB")
    assert done >= 1000, "too few iterations to tell"
    assert blocks < BLOCKS_BOUND, f"{blocks} allocator blocks gained in {done} iterations"
    assert growth < RSS_BOUND, f"RSS grew by {growth} bytes in {done} iterations"
