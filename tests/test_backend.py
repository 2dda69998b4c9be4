"""Which backend is active, and how to force the fallback."""

from __future__ import annotations

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
