"""The asyncio flavour's tests run on the stdlib event loop and on uvloop."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

import pytest
import uvloop

T = TypeVar("T")

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[T]]], T]:
    """``run(main)`` runs the coroutine function ``main`` to completion on one event loop."""
    if request.param == "uvloop":

        def run_on_uvloop(main: Callable[[], Awaitable[T]]) -> T:
            return uvloop.run(main())  # type: ignore[no-any-return]

        return run_on_uvloop

    def run_on_asyncio(main: Callable[[], Awaitable[T]]) -> T:
        return asyncio.run(main())  # type: ignore[arg-type]

    return run_on_asyncio


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])
