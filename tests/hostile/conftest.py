"""The hostile-client suite: every attack against every server flavour.

The servers run in subprocesses on the backend of this test run, so the
README's test command covers both backends (it runs the suite once each).
"""

from __future__ import annotations

import pytest

import wscodec

from .harness import FLAVOURS


@pytest.fixture
def backend() -> str:
    """The backend this run tests (``WSCODEC_NO_EXTENSIONS=1`` picks the fallback)."""
    return wscodec.BACKEND


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param
