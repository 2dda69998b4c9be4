"""pytest plugin for the peer suites: the adapter first, then every test's outcome.

Loaded with ``-p wscodec_peer_adapter`` (its directory on ``PYTHONPATH``), so it
is imported before any conftest or test module, hence before the library:

* ``WSCODEC_PEER_ADAPTER=<name>``: install ``wscodec.integrations.<name>``;
  empty: only import the library (``WSCODEC_PEER_MODULE``), so both runs
  import the installed copy in the same order;
* ``WSCODEC_PEER_REPORT=<path>``: at the end, write a JSON file with each test's
  outcome, wscodec's backend, where the library was imported from and how
  often the adapter's replacements ran.

A top-level module with a name of its own: the peer suites have packages called
``tests`` of their own, which wscodec's ``tests`` package must not shadow.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Dict, Optional

import pytest

from wscodec.integrations import adapter as _adapter_named
from wscodec.integrations._patching import Adapter

_ADAPTER = os.environ.get("WSCODEC_PEER_ADAPTER", "")
_MODULE = os.environ.get("WSCODEC_PEER_MODULE", "")
_REPORT = os.environ.get("WSCODEC_PEER_REPORT", "")

_adapter: Optional[Adapter] = None
if _ADAPTER:
    _adapter = _adapter_named(_ADAPTER)
    _adapter.install()
_library = importlib.import_module(_MODULE) if _MODULE else None

#: node id -> "passed" | "failed" | "skipped" | "error" | "xfailed" | "xpassed"
_outcomes: Dict[str, str] = {}
_RANK = {"passed": 0, "xpassed": 0, "skipped": 1, "xfailed": 1, "failed": 2, "error": 3}


def _record(nodeid: str, outcome: str) -> None:
    previous = _outcomes.get(nodeid)
    if previous is None or _RANK[outcome] > _RANK[previous]:
        _outcomes[nodeid] = outcome


def pytest_runtest_logreport(report: Any) -> None:
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if xfail:
            _record(report.nodeid, "xfailed" if report.skipped else "xpassed")
        else:
            _record(report.nodeid, report.outcome)
    elif report.failed:
        _record(report.nodeid, "error")
    elif report.skipped:
        _record(report.nodeid, "xfailed" if xfail else "skipped")


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _record(report.nodeid or "<collection>", "error")
    elif report.skipped:  # a module skipped as a whole
        _record(report.nodeid, "skipped")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if not _REPORT:
        return
    import wscodec

    calls = dict(_adapter.calls) if _adapter is not None else {}
    installed = _adapter.installed if _adapter is not None else False
    with open(_REPORT, "w", encoding="utf-8") as out:
        json.dump(
            {
                "outcomes": _outcomes,
                "backend": wscodec.BACKEND,
                "adapter": _ADAPTER or None,
                "adapter_installed_at_end": installed,
                "adapter_calls": calls,
                "library_file": getattr(_library, "__file__", None),
                "exitstatus": int(exitstatus),
            },
            out,
            indent=1,
            sort_keys=True,
        )
