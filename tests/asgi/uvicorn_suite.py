"""uvicorn's own WebSocket tests, run against wscodec's protocol class.

    python -m tests.asgi.uvicorn_suite [--cache DIR] [-- PYTEST ARGS]

Downloads the sdist of the installed uvicorn version from the package index
(it ships its tests), points the suite's ``ws_protocol_cls`` fixture at both
:class:`wscodec.asgi.uvicorn.WebSocketProtocol` and uvicorn's own
``websockets-sansio`` class, and runs ``tests/protocols/test_websocket.py``
once over both. Every test that passes with ``websockets-sansio`` must pass
with ours, except those excused in ``uvicorn_excused.txt`` (each with its
reason; the README lists them too). Exits 1 otherwise, or if an excused test
passes (the excuse is stale).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Tuple

OURS = "wscodec"
THEIRS = "websockets-sansio"
EXCUSED_FILE = Path(__file__).with_name("uvicorn_excused.txt")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wscodec-suites"

# Written into the unpacked sdist (never into this project): a conftest beside
# the test module overrides the fixture of uvicorn's top-level conftest.
FIXTURE_OVERRIDE = f'''
import pytest
from uvicorn.importer import import_from_string

@pytest.fixture(params=[
    pytest.param("wscodec.asgi.uvicorn:WebSocketProtocol", id="{OURS}"),
    pytest.param(
        "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol",
        id="{THEIRS}",
    ),
])
def ws_protocol_cls(request):
    return import_from_string(request.param)
'''


def installed_version() -> str:
    try:
        return metadata.version("uvicorn")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def fetch_sdist(cache: Path) -> Path:
    """The unpacked sdist of the installed uvicorn (downloaded once per version)."""
    version = metadata.version("uvicorn")
    root = cache / f"uvicorn-{version}"
    if (root / "tests" / "protocols" / "test_websocket.py").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading the sdist of uvicorn {version}", flush=True)
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    download += ["--no-binary", ":all:", "-d", str(cache), f"uvicorn=={version}"]
    subprocess.run(download, check=True)
    with tarfile.open(cache / f"uvicorn-{version}.tar.gz") as archive:
        archive.extractall(cache, filter="data")
    return root


def read_excused() -> Dict[str, str]:
    """Test name (without the fixture ids) -> why ours may fail it."""
    excused = {}
    for line in EXCUSED_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(":")
            excused[name.strip()] = reason.strip()
    return excused


def run_suite(root: Path, pytest_args: List[str]) -> Dict[Tuple[str, str], str]:
    """(test, implementation) -> passed / failed / skipped, from one pytest run."""
    (root / "tests" / "protocols" / "conftest.py").write_text(FIXTURE_OVERRIDE)
    # Outside the unpacked tree, which is uvicorn's to use while its tests run.
    report = Path(tempfile.mkdtemp(prefix="wscodec-uvicorn-suite-")) / "report.xml"
    command = [
        sys.executable, "-m", "pytest", "tests/protocols/test_websocket.py",
        "-o", "addopts=", "-p", "no:cacheprovider", "-q", f"--junitxml={report}",
        "--timeout=60", "--timeout-method=signal", *pytest_args,
    ]  # fmt: skip
    print("$ " + " ".join(command), flush=True)
    report.unlink(missing_ok=True)
    subprocess.run(command, cwd=root, check=False)
    if not report.exists():
        raise SystemExit("pytest wrote no report: it did not finish (see above)")
    outcomes: Dict[Tuple[str, str], str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = case.get("name", "")
        test, implementation = split_ids(name)
        if implementation is None:
            continue  # a test without the fixture
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        outcomes[(test, implementation)] = outcome
    return outcomes


def split_ids(name: str) -> Tuple[str, Optional[str]]:
    """``test_x[wscodec-h11-5]`` -> (``test_x[h11-5]``, ``wscodec``)."""
    base, _, ids = name.partition("[")
    parts = ids.rstrip("]").split("-") if ids else []
    for implementation in (OURS, THEIRS):
        words = implementation.split("-")
        for start in range(len(parts) - len(words) + 1):
            if parts[start : start + len(words)] == words:
                rest = parts[:start] + parts[start + len(words) :]
                return (f"{base}[{'-'.join(rest)}]" if rest else base), implementation
    return name, None


def compare(outcomes: Dict[Tuple[str, str], str], excused: Dict[str, str]) -> int:
    tests = sorted({test for test, _ in outcomes})
    counts = {
        OURS: {"passed": 0, "failed": 0, "skipped": 0},
        THEIRS: {"passed": 0, "failed": 0, "skipped": 0},
    }
    broken, stale, excused_seen = [], [], []
    for test in tests:
        theirs = outcomes.get((test, THEIRS), "missing")
        ours = outcomes.get((test, OURS), "missing")
        for implementation, outcome in ((THEIRS, theirs), (OURS, ours)):
            if outcome in counts[implementation]:
                counts[implementation][outcome] += 1
        base = test.partition("[")[0]
        reason = excused.get(test) or excused.get(base)
        if theirs == "passed" and ours != "passed":
            (excused_seen if reason else broken).append((test, ours, reason))
        elif reason and ours == "passed":
            stale.append(test)
    print(f"\nuvicorn {installed_version()}, tests/protocols/test_websocket.py")
    print(f"{'implementation':<20} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for implementation in (THEIRS, OURS):
        c = counts[implementation]
        print(f"{implementation:<20} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
    for test, outcome, reason in excused_seen:
        print(f"excused: {test} ({outcome}): {reason}")
    for test in stale:
        print(f"STALE EXCUSE: {test} passes with wscodec; remove it from {EXCUSED_FILE.name}")
    for test, outcome, _ in broken:
        print(f"FAIL: {test} passes with {THEIRS} but {outcome} with {OURS}")
    if not tests:
        print("FAIL: no test ran")
        return 1
    return 1 if broken or stale else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where sdists are kept")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    options = parser.parse_args(argv)
    import wscodec

    print(f"wscodec {wscodec.__version__}, backend: {wscodec.BACKEND}", flush=True)
    if os.environ.get("WSCODEC_REQUIRE_EXTENSION") == "1" and wscodec.BACKEND != "cython":
        print("FAIL: WSCODEC_REQUIRE_EXTENSION=1 but the compiled backend did not load")
        return 1
    root = fetch_sdist(options.cache)
    outcomes = run_suite(root, options.pytest_args)
    return compare(outcomes, read_excused())


if __name__ == "__main__":
    sys.exit(main())
