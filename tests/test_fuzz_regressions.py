"""Replay the fuzz corpus and every saved finding through the fuzzers' checks.

``tests/fuzz/differential.py`` holds the checks the atheris targets run
(both codec twins against each other, the handshake reader and the inflater
against their invariants); here every seed in ``tests/fuzz/corpus/<target>/``
and every finding in ``tests/fuzz/regressions/<target>-<name>`` goes through
them again on every install, atheris or not, so findings stay fixed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from wscodec import _backend

FUZZ = Path(__file__).parent / "fuzz"


def load_differential():
    spec = importlib.util.spec_from_file_location(
        "wscodec_fuzz_differential", FUZZ / "differential.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


differential = load_differential()


def cases():
    for path in sorted((FUZZ / "corpus").glob("*/*")):
        yield pytest.param(path.parent.name, path, id=f"corpus/{path.parent.name}/{path.name}")
    for path in sorted((FUZZ / "regressions").iterdir()):
        if path.name.startswith("."):
            continue
        target = path.name.split("-", 1)[0]
        yield pytest.param(target, path, id=f"regressions/{path.name}")
    # A corpus grown by a fuzzing run (.ci/fuzz keeps it in artifacts/fuzz/corpus/),
    # replayed by .ci/sanitize under ASan + UBSan.
    extra = os.environ.get("WSCODEC_FUZZ_EXTRA_CORPUS")
    if extra:
        for path in sorted(Path(extra).glob("*/*")):
            yield pytest.param(path.parent.name, path, id=f"extra/{path.parent.name}/{path.name}")


def test_every_target_has_a_corpus_and_a_fuzzer():
    for target in differential.CHECKS:
        assert any((FUZZ / "corpus" / target).iterdir()), target
        assert (FUZZ / f"fuzz_{target}.py").is_file(), target


def test_regressions_are_named_after_a_target():
    for path in (FUZZ / "regressions").iterdir():
        if not path.name.startswith("."):
            assert path.name.split("-", 1)[0] in differential.CHECKS, path.name


@pytest.mark.parametrize(("target", "path"), list(cases()))
def test_replay(target, path):
    if target in ("frames", "utf8") and _backend.compiled_codec is None:
        pytest.skip(f"compiled backend absent in this install: {_backend.EXTENSION_ERROR}")
    differential.run(target, path.read_bytes())
