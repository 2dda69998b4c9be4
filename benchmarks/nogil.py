"""Measure where releasing the GIL pays: ``python -m benchmarks.nogil``.

For each kernel and size, times the call with the GIL kept and with it
released (by moving the threshold), single-threaded: the difference is what
releasing costs. A threshold is worth it where that cost is under 5% of the
call. The second table runs a busy Python thread alongside, the case the
release is for: the kernel's own time then includes waiting to get the GIL
back, which is why the threshold should not be set lower than needed.
"""

from __future__ import annotations

import sys
import threading

from wscodec import _backend

from .codec_suite import KEY, human, text
from .timing import best_time

SIZES = [1024, 4096, 8192, 16384, 32768, 65536, 131072, 262144]


def main() -> int:
    codec = _backend.compiled_codec
    if codec is None:
        print("the compiled backend is absent", file=sys.stderr)
        return 1
    original = codec._set_nogil_thresholds()
    print(f"{'kernel':22} {'size':>8} {'GIL kept':>10} {'released':>10} {'cost':>7} {'cost %':>7}")
    for size in SIZES:
        buffer = bytearray(size)
        sample = text("cjk", size)
        for label, call, knob in (
            ("apply_mask_into", lambda b=buffer: codec.apply_mask_into(b, KEY), "mask"),
            ("validate_utf8 (cjk)", lambda s=sample: codec.validate_utf8(s), "utf8"),
        ):
            codec._set_nogil_thresholds(**{knob: 1 << 62})
            kept = best_time(call, 0.2)
            codec._set_nogil_thresholds(**{knob: 0})
            released = best_time(call, 0.2)
            cost = released - kept
            print(
                f"{label:22} {human(size):>8} {kept * 1e6:8.2f}us {released * 1e6:8.2f}us "
                f"{cost * 1e9:5.0f}ns {100 * cost / kept:6.1f}%"
            )
    codec._set_nogil_thresholds(**original)
    print("\nwith a busy Python thread alongside (switch interval 5 ms):")
    stop = False

    def spin() -> None:
        count = 0
        while not stop:
            count += 1

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        for size in (16384, 65536, 262144):
            buffer = bytearray(size)
            for threshold in (0, 1 << 62):
                codec._set_nogil_thresholds(mask=threshold)
                seconds = best_time(lambda b=buffer: codec.apply_mask_into(b, KEY), 0.2)
                state = "released" if threshold == 0 else "kept"
                print(f"apply_mask_into {human(size):>8} GIL {state:8}: {seconds * 1e6:9.2f}us")
    finally:
        stop = True
        thread.join()
        codec._set_nogil_thresholds(**original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
