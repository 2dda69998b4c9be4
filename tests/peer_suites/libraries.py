"""The peer libraries whose own test suites run with and without wscodec's adapter.

An entry is data only: where the tests are in the library's source, what the
tests need beyond the ``peers`` extra, and which adapter they exercise. Anyone
adding a library (or the lead's uvicorn mode) adds a row; the download, the
staging and the comparison are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Library:
    """One peer library's suite.

    :param adapter: the wscodec adapter name (``wscodec.integrations.<adapter>``).
    :param distribution: the PyPI name, whose installed version picks the sdist.
    :param module: the top-level module the tests import.
    :param copies: ``(path in the source, path in the staging directory)``
        pairs: the tests and the files they need. Tests that live inside the
        library's package are copied out of it, so that the *installed*
        library is the one imported, never the source tree's copy.
    :param run: the paths pytest runs, relative to the staging directory.
    :param sdist: the sdist ships the tests; otherwise they come from a
        checkout of the repository (``--source``).
    :param pytest_args: extra pytest arguments, the same for every run.
    :param conftest: a ``conftest.py`` written at the staging root: what the
        library's own test runner sets up before its tests (ours, not copied).
    :param ini: extra ``[pytest]`` lines (markers, asyncio mode, ...).
    :param env: environment variables the suite reads.
    :param deselect: node ids left out of every run (with and without the
        adapter alike), each with its reason: tests of something else than
        WebSocket that need what this environment lacks.
    :param needs: what the suite imports beyond the ``peers`` extra (the
        ``peer-suites`` extra installs it); listed for the report.
    :param echo_server: a script in the staging directory to start first, on
        a free port passed in ``LOCAL_WS_SERVER_PORT`` (websocket-client's own
        local-server tests).
    """

    adapter: str
    distribution: str
    module: str
    copies: Tuple[Tuple[str, str], ...]
    run: Tuple[str, ...]
    sdist: bool = True
    pytest_args: Tuple[str, ...] = ()
    conftest: str = ""
    ini: Tuple[str, ...] = ()
    env: Dict[str, str] = field(default_factory=dict)
    deselect: Dict[str, str] = field(default_factory=dict)
    needs: Tuple[str, ...] = ()
    echo_server: Optional[str] = None


LIBRARIES: Dict[str, Library] = {
    "wsproto": Library(
        adapter="wsproto",
        distribution="wsproto",
        module="wsproto",
        copies=(("tests", "tests"),),
        run=("tests",),
    ),
    "websocket-client": Library(
        adapter="websocket_client",
        distribution="websocket-client",
        module="websocket",
        copies=(("websocket/tests", "websocket_client_tests"),),
        run=("websocket_client_tests",),
        echo_server="websocket_client_tests/echo-server.py",
    ),
    "tornado": Library(
        adapter="tornado",
        distribution="tornado",
        module="tornado",
        copies=(("tornado/test/websocket_test.py", "tornado_tests/websocket_test.py"),),
        run=("tornado_tests/websocket_test.py",),
        # As tornado.test.runtests does: its ExpectLog fails a test on any
        # unexpected record, and the access log is not one the tests expect.
        conftest='import logging\n\nlogging.getLogger("tornado.access").setLevel(logging.CRITICAL)\n',
    ),
    "aiohttp": Library(
        adapter="aiohttp",
        distribution="aiohttp",
        module="aiohttp",
        copies=(
            ("tests/conftest.py", "tests/conftest.py"),
            ("tests/test_websocket_data_queue.py", "tests/test_websocket_data_queue.py"),
            ("tests/test_websocket_handshake.py", "tests/test_websocket_handshake.py"),
            ("tests/test_websocket_parser.py", "tests/test_websocket_parser.py"),
            ("tests/test_websocket_writer.py", "tests/test_websocket_writer.py"),
            ("tests/test_client_ws.py", "tests/test_client_ws.py"),
            ("tests/test_client_ws_functional.py", "tests/test_client_ws_functional.py"),
            ("tests/test_web_websocket.py", "tests/test_web_websocket.py"),
            ("tests/test_web_websocket_functional.py", "tests/test_web_websocket_functional.py"),
        ),
        run=("tests",),
        ini=(
            "markers =",
            "    dev_mode: aiohttp's marker",
            "    internal: aiohttp's marker",
            "    skip_blockbuster: aiohttp's marker",
            "    autobahn: aiohttp's marker",
        ),
        needs=("pytest-mock", "freezegun", "trustme"),
    ),
    "autobahn": Library(
        adapter="autobahn",
        distribution="autobahn",
        module="autobahn",
        copies=(("src/autobahn/websocket/test", "autobahn_websocket_test"),),
        run=("autobahn_websocket_test",),
        # The Twisted-backed tests (autobahn's CI runs both; the adapter is
        # the same under either networking framework).
        env={"USE_TWISTED": "1"},
    ),
    "ws4py": Library(
        adapter="ws4py",
        distribution="ws4py",
        module="ws4py",
        copies=(("test", "ws4py_tests"),),
        run=("ws4py_tests",),
        needs=("mock", "cherrypy"),
    ),
    "websockets": Library(
        adapter="websockets",
        distribution="websockets",
        module="websockets",
        copies=(("tests", "tests"),),
        run=("tests",),
        sdist=False,
    ),
}


def library(name: str) -> Library:
    """The entry called ``name`` (``websocket_client`` and ``websocket-client`` alike)."""
    key = name.strip().lower().replace("_", "-")
    if key not in LIBRARIES:
        raise SystemExit(f"no peer suite for {name!r}; known: {', '.join(LIBRARIES)}")
    return LIBRARIES[key]
