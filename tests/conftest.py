"""Shared fixtures: every codec test runs once per backend."""

from __future__ import annotations

import os
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from wscodec import _backend

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
# Under valgrind (.ci/memcheck) every example costs ~50x: few examples, the
# explicit cases and corpora of each test still run in full.
settings.register_profile(
    "valgrind", deadline=None, max_examples=5, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("WSCODEC_HYPOTHESIS_PROFILE", "default"))

BACKENDS = ["cython", "python"]


def pytest_report_header() -> str:
    """Name the active backend, so the two runs of the test command are told apart."""
    why = f" ({_backend.EXTENSION_ERROR})" if _backend.EXTENSION_ERROR else ""
    return f"wscodec backend: {_backend.BACKEND}{why}"


def backend_module(name: str) -> ModuleType:
    """The codec twin called ``name``; the compiled one must have been built."""
    if name == "python":
        return _backend.python_codec
    if _backend.compiled_codec is None:
        # test_backend.py fails the run when the compiled module was expected;
        # here the compiled twin is simply absent (a pure-Python install).
        pytest.skip(f"compiled backend absent in this install: {_backend.EXTENSION_ERROR}")
    return _backend.compiled_codec


@pytest.fixture(params=BACKENDS, scope="session")
def codec(request: pytest.FixtureRequest) -> ModuleType:
    """The codec module of one backend: ``wscodec._codec`` or ``wscodec.codec``."""
    return backend_module(request.param)


@pytest.fixture(scope="session")
def both() -> tuple[ModuleType, ModuleType]:
    """Both twins, for differential tests."""
    return backend_module("cython"), backend_module("python")
