"""``python -m benchmarks --plot``: charts from a recorded run, SVG and PNG.

A real (quick) codec run is recorded, then drawn; the server chart is drawn from
the rows such a run writes. matplotlib comes with the ``bench`` extra, which CI
installs; elsewhere its absence skips with the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import system_program_missing
from tests.test_layout import README

ROOT = README.parent
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def plot_module():
    if not (ROOT / "benchmarks" / "plot.py").exists():
        pytest.skip("no benchmarks/ beside tests/ (a wheel's test run copies tests/ alone)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        system_program_missing("matplotlib is not installed (pip install -e '.[bench]')")
    sys.path.insert(0, str(ROOT))
    from benchmarks import plot

    return plot


def test_a_recorded_codec_run_becomes_a_log_log_chart(plot_module, tmp_path: Path):
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "mask,parse", "--json"],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    report["recorded"] = "2026-01-02 03:04 UTC"
    plot_module.record("codec", report, tmp_path / "results")
    written = plot_module.plot(tmp_path / "charts", tmp_path / "results")
    assert sorted(p.name for p in written) == ["kernels.png", "kernels.svg"]
    svg = (tmp_path / "charts" / "kernels.svg").read_text(encoding="utf-8")
    assert "memcpy (reference)" in svg and "wscodec (python)" in svg
    assert "2026-01-02 03:04 UTC" in svg  # the machine and date of the run
    png = (tmp_path / "charts" / "kernels.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_a_server_report_becomes_grouped_bars(plot_module, tmp_path: Path):
    rows = [
        {"server": server, "clients": clients, "size": size, "round_trips_per_s": rate}
        for server, base in (("wscodec", 1000.0), ("websockets-sync", 500.0))
        for clients, size, rate in ((1, 256, base), (50, 256, base * 4), (50, 1 << 20, base / 10))
    ]
    report = {
        "machine": {"cpu": "test CPU", "python": "3.x"},
        "recorded": "2026-01-02 03:04 UTC",
        "seconds_per_cell": 1.5,
        "repeat": 1,
        "load_average_before": [0.5, 0.4, 0.3],
        "rows": rows,
    }
    plot_module.record("server", report, tmp_path)
    written = plot_module.plot(tmp_path / "charts", tmp_path)
    assert sorted(p.name for p in written) == ["server.png", "server.svg"]
    svg = (tmp_path / "charts" / "server.svg").read_text(encoding="utf-8")
    for label in ("1 client, 256 B", "50 clients, 1 MiB", "websockets-sync", "test CPU"):
        assert label in svg
    # Two servers x three cells: six bars, besides the figure's and legend's patches.
    assert len(re.findall(r'<g id="patch_\d+">', svg)) >= 6 + 2


def test_plot_without_a_recorded_run_says_so(tmp_path: Path):
    if not (ROOT / "benchmarks" / "plot.py").exists():
        pytest.skip("no benchmarks/ beside tests/")
    sys.path.insert(0, str(ROOT))
    from benchmarks import plot

    assert plot.load("codec", tmp_path) is None
