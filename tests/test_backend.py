"""Which backend is active, and how to force the fallback."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

import wscodec
from wscodec import _backend


def test_backend_is_named():
    assert wscodec.BACKEND in ("cython", "python")
    assert (wscodec.EXTENSION_ERROR is None) == (wscodec.BACKEND == "cython")


def test_public_api_is_the_active_twin():
    active = _backend.codec
    for name in (
        "apply_mask",
        "apply_mask_into",
        "validate_utf8",
        "Utf8Validator",
        "FrameParser",
        "encode_frame",
    ):
        assert getattr(wscodec, name) is getattr(active, name)


@pytest.mark.skipif(_backend.compiled_codec is None, reason="compiled backend absent")
@pytest.mark.parametrize(
    "name",
    [
        "apply_mask",
        "apply_mask_into",
        "validate_utf8",
        "encode_frame",
        "Utf8Validator.feed",
        "Utf8Validator.finish",
        "FrameParser.feed",
        "FrameParser.pending_payload",
    ],
)
def test_twins_have_the_same_signatures(name):
    """help() and inspect see the same parameters on both backends.

    The compiled module's functions are plain builtins (binding=False: a call
    costs ~90 instructions less than through a Cython function object), which
    inspect can read only through the signatures Cython embeds.
    """

    def parameters(module):
        target = module
        for part in name.split("."):
            target = getattr(target, part)
        found = inspect.signature(target).parameters.values()
        return [(p.name, p.kind, p.default) for p in found if p.name != "self"]

    assert parameters(_backend.compiled_codec) == parameters(_backend.python_codec)


def test_expected_backend():
    """CI requires the compiled module; a silently missing extension fails here."""
    forced = os.environ.get("WSCODEC_NO_EXTENSIONS", "") not in ("", "0")
    if forced:
        assert wscodec.BACKEND == "python"
    elif os.environ.get("WSCODEC_REQUIRE_EXTENSION", "") not in ("", "0"):
        assert wscodec.BACKEND == "cython", wscodec.EXTENSION_ERROR
        assert _backend.compiled_codec is not None


@pytest.mark.parametrize("value, backend", [("1", "python"), ("0", None), ("", None)])
def test_environment_switch(value, backend):
    env = dict(os.environ, WSCODEC_NO_EXTENSIONS=value)
    out = subprocess.run(
        [sys.executable, "-c", "import wscodec; print(wscodec.BACKEND, wscodec.EXTENSION_ERROR)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(" ", 1)
    if backend is None:  # not forced: compiled when it was built
        backend = "cython" if _backend.compiled_codec is not None else "python"
    assert out[0] == backend
    if backend == "python" and value == "1":
        assert "WSCODEC_NO_EXTENSIONS" in out[1]


def test_missing_module_reason_reads_the_build_note(tmp_path):
    """A build without the compiled module records why; the reason quotes it."""
    note = tmp_path / "_build_note.txt"
    note.write_text("compiling wscodec._codec failed (no compiler)\n", encoding="utf-8")
    error = ModuleNotFoundError("No module named 'wscodec._codec'", name="wscodec._codec")
    reason = _backend.missing_reason(error, note)
    assert reason == (
        "not built when wscodec was installed: compiling wscodec._codec failed (no compiler)"
    )


def test_missing_module_reason_without_a_note(tmp_path):
    error = ModuleNotFoundError("No module named 'wscodec._codec'", name="wscodec._codec")
    reason = _backend.missing_reason(error, tmp_path / "absent.txt")
    assert reason.startswith("wscodec._codec is not installed")


def test_broken_module_reason_is_the_import_error(tmp_path):
    """A compiled module that exists but fails to load is not blamed on the build."""
    note = tmp_path / "_build_note.txt"
    note.write_text("stale note\n", encoding="utf-8")
    error = ImportError("undefined symbol: PyFoo")
    assert _backend.missing_reason(error, note) == (
        "the compiled module did not import: undefined symbol: PyFoo"
    )
    missing_dependency = ModuleNotFoundError("No module named 'other'", name="other")
    assert "stale note" not in _backend.missing_reason(missing_dependency, note)


def test_info_says_why_the_compiled_module_is_not_in_use():
    env = dict(os.environ, WSCODEC_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-m", "wscodec", "info"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "backend: python" in out
    if _backend.compiled_codec is None:
        assert f"compiled module: missing: {_backend.compiled_error}" in out
    else:
        assert "compiled module not in use: WSCODEC_NO_EXTENSIONS is set" in out


def test_import_keeps_the_gil_as_it_was():
    """The compiled module declares itself free-threading compatible: importing it
    on a free-threaded build (3.13t, 3.14t) must not turn the GIL back on."""
    code = (
        "import sys\n"
        "gil = getattr(sys, '_is_gil_enabled', lambda: True)\n"
        "before = gil()\n"
        "import wscodec\n"
        "print(before, gil(), wscodec.BACKEND)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == out[1]
    assert out[2] == wscodec.BACKEND


@pytest.mark.parametrize("value", ["avx-512", "AVX2", "fastest"])
def test_an_unknown_simd_cap_warns_and_lists_the_valid_ones(value):
    """WSCODEC_SIMD with a typo is ignored by the kernels; importing wscodec says so, once."""
    env = {**os.environ, "WSCODEC_SIMD": value}
    result = subprocess.run(
        [sys.executable, "-c", "import wscodec"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("RuntimeWarning: ") == 1, result.stderr
    assert f"WSCODEC_SIMD={value!r} is not a known level" in result.stderr
    assert "valid values: portable, sse2, avx2, avx512, neon" in result.stderr


@pytest.mark.parametrize("value", ["", *_backend.SIMD_CAPS])
def test_a_known_simd_cap_is_accepted_silently(value):
    assert _backend.check_simd_cap(value) is None


@pytest.mark.parametrize("forced", ["1", "0"])
def test_the_pytest_header_names_the_active_backend(forced):
    """The two runs of the test command say which backend they test, first thing."""
    tests = os.path.dirname(os.path.abspath(__file__))
    collect = ["--collect-only", "-p", "no:cacheprovider", os.path.join(tests, "test_mask.py")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *collect],
        env={**os.environ, "WSCODEC_NO_EXTENSIONS": forced},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(tests),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if forced == "1":
        expected = "wscodec backend: python (WSCODEC_NO_EXTENSIONS is set)"
    elif _backend.compiled_codec is None:
        expected = f"wscodec backend: python ({_backend.compiled_error})"
    else:
        expected = "wscodec backend: cython"
    assert expected in result.stdout.splitlines()
