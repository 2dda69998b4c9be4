"""Throughput of each codec backend as a ratio to a plain memory copy.

    python benchmarks/ratios.py [--sizes 1024,65536,1048576] [--quick]

For every kernel and size, the same run also times ``memoryview[:] = src``
(a memcpy of the same number of bytes); the table shows the kernel's
throughput divided by the copy's, so 1.0x means "as fast as copying the
data once". Absolute figures are printed too, but on a shared machine only the
ratios mean much. Each figure is the best of several timed repeats.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from wscodec import _backend
from wscodec.protocol import Opcode

KEY = b"\x37\xfa\x21\x3d"


def best_time(function: Callable[[], object], budget: float) -> float:
    """Seconds per call: best of 5 repeats, each calibrated to ~budget/5."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            function()
        elapsed = time.perf_counter() - start
        if elapsed > budget / 50 or loops > 1 << 24:
            break
        loops *= 4
    loops = max(1, int(loops * (budget / 5) / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            function()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


def memcpy_time(size: int, budget: float) -> float:
    source = os.urandom(size)
    target = memoryview(bytearray(size))

    def copy() -> None:
        target[:] = source

    return best_time(copy, budget)


def text(kind: str, size: int) -> bytes:
    samples = {
        "ascii": "The quick brown fox jumps over the lazy dog. ",
        "latin": "Le c\u0153ur d\u00e9\u00e7u mais l'\u00e2me plut\u00f4t na\u00efve, ",
        "cjk": "\u4eba\u4eba\u751f\u800c\u81ea\u7531\uff0c"
        "\u5728\u5c0a\u4e25\u548c\u6743\u5229\u4e0a",
        "emoji": "\U0001f600\U0001f680\U0001f308\u2764\ufe0f ok ",
    }
    data = (samples[kind] * (size // len(samples[kind].encode()) + 2)).encode()[:size]
    while True:  # cut back to a character boundary
        try:
            data.decode()
            return data
        except UnicodeDecodeError:
            data = data[:-1]


def cases(codec, size: int) -> List[Tuple[str, int, Callable[[], object]]]:
    """(name, bytes processed per call, call) for one backend and size."""
    data = os.urandom(size)
    buffer = bytearray(data)
    result: List[Tuple[str, int, Callable[[], object]]] = [
        ("apply_mask (new bytes)", size, lambda: codec.apply_mask(data, KEY)),
        ("apply_mask_into (in place)", size, lambda: codec.apply_mask_into(buffer, KEY)),
    ]
    for kind in ("ascii", "latin", "cjk", "emoji"):
        sample = text(kind, size)
        result.append(
            (
                f"validate_utf8 {kind}",
                len(sample),
                lambda sample=sample: codec.validate_utf8(sample),
            )
        )
    frame_size = min(size, 2**20)
    frame = codec.encode_frame(Opcode.BINARY, data[:frame_size], mask=KEY)
    count = max(1, 65536 // len(frame))
    stream = frame * count
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]

    def parse() -> None:
        parser = codec.FrameParser(mask_expected=True, max_frame_size=None)
        for chunk in chunks:
            parser.feed(chunk)

    result.append((f"parse masked {frame_size} B frames, 64 KiB chunks", len(stream), parse))
    result.append(
        ("encode_frame server (unmasked)", size, lambda: codec.encode_frame(Opcode.BINARY, data))
    )
    result.append(
        (
            "encode_frame client (masked)",
            size,
            lambda: codec.encode_frame(Opcode.BINARY, data, mask=KEY),
        )
    )
    return result


def human(size: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1024,65536,1048576",
        help="comma-separated sizes in bytes (default: 1 KiB, 64 KiB, 1 MiB)",
    )
    parser.add_argument("--quick", action="store_true", help="shorter timings (noisier)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    budget = 0.05 if args.quick else 0.25
    twins: Dict[str, object] = {"python": _backend.python_codec}
    if _backend.compiled_codec is not None:
        twins["cython"] = _backend.compiled_codec
    else:
        print(f"note: compiled backend absent ({_backend.EXTENSION_ERROR})", file=sys.stderr)
    print(f"Python {sys.version.split()[0]}; ratio = kernel throughput / memcpy throughput")
    header = f"{'kernel':44} {'size':>8} " + " ".join(f"{name:>19}" for name in twins)
    print(header)
    print("-" * len(header))
    for size in sizes:
        copy_seconds_per_byte = memcpy_time(size, budget) / size
        rows: Dict[str, Dict[str, str]] = {}
        for name, codec in twins.items():
            for label, nbytes, call in cases(codec, size):
                seconds = best_time(call, budget)
                ratio = (copy_seconds_per_byte * nbytes) / seconds
                rate = nbytes / seconds / 1e9
                rows.setdefault(label, {})[name] = f"{ratio:6.3f}x {rate:7.2f} GB/s"
            print(f"  ...{name} done for {human(size)}", file=sys.stderr, flush=True)
        for label, cells in rows.items():
            print(f"{label:44} {human(size):>8} " + " ".join(f"{cells[n]:>19}" for n in twins))
        print(f"{'memcpy':44} {human(size):>8} {1 / copy_seconds_per_byte / 1e9:>13.2f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
