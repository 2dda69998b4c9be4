"""atheris target: permessage-deflate's bounded inflater (pure Python) against plain zlib.

    python tests/fuzz/fuzz_inflate.py [libFuzzer flags] [corpus dirs or input files]

The check itself is ``differential.check_inflate``; ``.ci/fuzz`` runs this target for a
bounded time and tests/test_fuzz_regressions.py replays its corpus.
"""

import sys

import atheris

with atheris.instrument_imports(include=["wscodec", "differential"]):
    import differential


def test_one_input(data: bytes) -> None:
    differential.check_inflate(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
