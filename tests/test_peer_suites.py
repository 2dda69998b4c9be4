"""The peer-suite runner's verdict and its excused list (python -m tests.peer_suites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peer_suites.libraries import LIBRARIES, library
from tests.peer_suites.results import EXCUSED_FILE, Run, load_excused, problems, regressions

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

README = Path(__file__).resolve().parents[1] / "README.md"


def run(outcomes, backend="cython", **report):
    report = {"outcomes": outcomes, "backend": backend, **report}
    return Run("with adapter", backend, 0, 1.0, report)


def test_a_test_that_passed_only_without_the_adapter_is_a_regression():
    without = run({"a": "passed", "b": "passed", "c": "failed", "d": "xpassed"}, "none")
    with_adapter = run({"a": "passed", "b": "failed", "c": "failed", "d": "error"})
    assert regressions(without, with_adapter, {}) == [("b", "failed"), ("d", "error")]
    assert regressions(without, with_adapter, {"b": "why"}) == [("d", "error")]
    assert regressions(without, run({"a": "passed"}), {}) == [
        ("b", "not run"),
        ("d", "not run"),
    ]


def test_counts_fold_xfail_and_xpass_into_skipped_and_passed():
    counts = run({"a": "passed", "b": "xpassed", "c": "xfailed", "d": "skipped", "e": "error"})
    assert counts.counts() == {"passed": 2, "failed": 0, "skipped": 2, "errors": 1}


def test_a_run_that_proves_nothing_is_a_problem(tmp_path):
    idle = run({"a": "passed"}, adapter="wsproto", adapter_installed_at_end=True, adapter_calls={})
    assert problems([idle], tmp_path) == [
        "with adapter (cython): the adapter's replacements never ran"
    ]
    wrong_copy = run({"a": "passed"}, library_file=str(tmp_path / "wsproto" / "__init__.py"))
    assert "imported the library from the staged tests" in problems([wrong_copy], tmp_path)[0]
    wrong_backend = run({"a": "passed"}, backend="python")
    wrong_backend.backend = "cython"
    assert "ran on the python backend" in problems([wrong_backend], tmp_path)[0]
    assert problems([run({}, "none")], tmp_path) == ["with adapter (none): no test ran"]


def test_every_excused_test_names_a_library_and_a_reason():
    with open(EXCUSED_FILE, "rb") as source:
        table = tomllib.load(source)
    for name, entries in table.items():
        assert library(name) is LIBRARIES[name]
        assert load_excused(name) == entries
        for nodeid, reason in entries.items():
            assert "::" in nodeid and len(reason) > 20, nodeid


def test_the_readme_lists_every_excused_test():
    if not README.is_file():
        pytest.skip("no README.md beside tests/ (a wheel's test run copies tests/ alone)")
    text = README.read_text(encoding="utf-8")
    with open(EXCUSED_FILE, "rb") as source:
        table = tomllib.load(source)
    for entries in table.values():
        for nodeid in entries:
            assert f"`{nodeid}`" in text, nodeid
