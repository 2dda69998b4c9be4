"""Replay fuzz inputs through the differential checks, without atheris.

    python tests/fuzz/replay.py [dir ...]

With no argument: the seed corpus, the regressions and, when present, the
corpus grown by ``.ci/fuzz`` (artifacts/fuzz/corpus/); then a few large
inputs that the fuzzers' 4 KiB limit never reaches (payloads past the
compiled codec's no-GIL threshold, 16- and 64-bit lengths, long UTF-8).
``.ci/memcheck`` runs this under valgrind: it reaches every kernel of the
compiled codec without loading pytest or hypothesis.
"""

import sys
import time
from pathlib import Path

import differential


def inputs(directories):
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                # <dir>/<target>/<file> or regressions/<target>-<name>
                target = path.parent.name
                if target not in differential.CHECKS:
                    target = path.name.split("-", 1)[0]
                if target in differential.CHECKS:
                    yield target, path.name, path.read_bytes()


def large_inputs():
    compiled, _ = differential.twins()
    key = b"\x37\xfa\x21\x3d"
    big = bytes(range(251)) * 300  # 75300 bytes: 64-bit length, no-GIL kernels
    text = "wscodec ✓ €𝄞 ".encode() * 1200  # about 20 KB of UTF-8
    frames = compiled.encode_frame(2, big, mask=key) + compiled.encode_frame(1, text, mask=key)
    # mask_expected, no limit; chunk sizes 255, 1, 7 then whole
    yield "frames", "large-masked-chunked", bytes([1, 0, 3, 255, 1, 7]) + frames
    yield "frames", "large-masked-whole", bytes([1, 0, 0]) + frames
    unmasked = compiled.encode_frame(2, big[:40000], rsv1=True) + compiled.encode_frame(
        2, big[:300]
    )
    yield "frames", "large-unmasked", bytes([0b00100000, 1, 2, 200, 13]) + unmasked
    yield "frames", "large-over-limit", bytes([(8 << 1) | 1, 0, 0]) + frames
    yield "utf8", "large-valid", bytes([2, 250, 3]) + text
    yield "utf8", "large-invalid-late", bytes([0]) + text + b"\xed\xa0\x80" + text


def main(argv):
    here = Path(__file__).resolve().parent
    directories = argv or [
        here / "corpus",
        here / "regressions",
        differential.ROOT / "artifacts" / "fuzz" / "corpus",
    ]
    started = time.monotonic()
    count = 0
    cases = list(inputs(directories))
    if not argv:
        cases += list(large_inputs())
    for target, name, data in cases:
        try:
            differential.run(target, data)
        except Exception:
            print(f"FAIL: {target}/{name}", file=sys.stderr)
            raise
        count += 1
    print(f"replayed {count} inputs in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
