"""``python -m benchmarks --plot DIR``: charts of the last recorded run, as SVG and PNG.

Reads the reports ``--record`` saved (``benchmarks/results/codec.json`` and
``server.json``) and writes:

- ``kernels.svg``/``.png``: throughput against payload size, log-log, one panel per
  kernel, one line per library and per wscodec backend, memcpy as the reference;
- ``server.svg``/``.png``: round trips per second per cell (clients x message size),
  grouped bars, one bar per server.

matplotlib comes with the ``bench`` extra (``pip install -e '.[bench]'``); the
tables of ``python -m benchmarks`` need nothing beyond the standard library.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .codec_suite import human

#: Where ``--record`` writes each report and ``--plot`` reads it.
RESULTS = Path(__file__).resolve().parent / "results"
FORMATS = ("svg", "png")
#: The panels of the kernel chart: (section, case, title).
KERNEL_PANELS = [
    ("mask", "new bytes", "masking (new bytes)"),
    ("mask", "in place", "masking (in place)"),
    ("utf8", "cjk", "UTF-8 validation (CJK text)"),
    ("parse", "masked frames, 64 KiB chunks", "frame parsing (masked, 64 KiB chunks)"),
]


def record(kind: str, report: Dict[str, Any], directory: Path = RESULTS) -> Path:
    """Save ``report`` (from ``run_codec`` or ``server_bench.run``) as the last run of ``kind``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return path


def recorded_now() -> str:
    """The date a recorded report carries (UTC, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def load(kind: str, directory: Path = RESULTS) -> Optional[Dict[str, Any]]:
    path = directory / f"{kind}.json"
    if not path.exists():
        return None
    report: Dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def caption(report: Dict[str, Any]) -> str:
    """The machine and date a report was measured on, for a chart's footer."""
    info = report["machine"]
    when = report.get("recorded", "date not recorded")
    return f"{info['cpu']}, Python {info['python']}, {when}"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: pip install -e '.[bench]' (the tables need nothing)"
        ) from None
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "wscodec"  # stable SVG ids: reviewable diffs
    import matplotlib.pyplot as plt

    return plt


def _kernel_series(
    rows: List[Dict[str, Any]], section: str, case: str
) -> Tuple[Dict[str, List[Tuple[int, float]]], List[Tuple[int, float]]]:
    series: Dict[str, List[Tuple[int, float]]] = {}
    memcpy: Dict[int, float] = {}
    for row in rows:
        if row["section"] != section or row["case"] != case:
            continue
        series.setdefault(row["contender"], []).append((row["size"], row["gb_per_s"]))
        memcpy[row["size"]] = row["memcpy_gb_per_s"]
    return series, sorted(memcpy.items())


def colours(names: List[str]) -> Dict[str, Any]:
    """One colour per name, the same in every panel; wscodec's lines first in the cycle."""
    import matplotlib

    cycle = matplotlib.colormaps["tab10"].colors + matplotlib.colormaps["Dark2"].colors
    ordered = sorted(set(names), key=lambda n: (not n.startswith("wscodec"), n))
    return {name: cycle[index % len(cycle)] for index, name in enumerate(ordered)}


def plot_kernels(report: Dict[str, Any], directory: Path) -> List[Path]:
    plt = _pyplot()
    colour = colours([row["contender"] for row in report["rows"]])
    panels = [p for p in KERNEL_PANELS if _kernel_series(report["rows"], p[0], p[1])[0]]
    if not panels:
        return []
    columns = 2
    rows_n = (len(panels) + 1) // columns
    figure, axes = plt.subplots(rows_n, columns, figsize=(11, 4.2 * rows_n), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (section, case, title) in zip(axes.flat, panels):
        series, memcpy = _kernel_series(report["rows"], section, case)
        if memcpy:
            ax.plot(*zip(*memcpy), "k--", linewidth=1.2, label="memcpy (reference)")
        for contender, points in sorted(series.items()):
            points.sort()
            style = "-o" if contender.startswith("wscodec") else "-."
            width = 2.2 if contender.startswith("wscodec") else 1.2
            ax.plot(
                *zip(*points),
                style,
                color=colour[contender],
                linewidth=width,
                markersize=4,
                label=contender,
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("payload size")
        ax.set_ylabel("GB/s (higher is better)")
        sizes = sorted({size for points in series.values() for size, _ in points})
        ax.set_xticks(sizes, [human(size) for size in sizes])
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    figure.suptitle("Kernel throughput against payload size (log-log)")
    figure.text(0.5, 0.005, caption(report), ha="center", fontsize=8, color="0.35")
    figure.tight_layout(rect=(0, 0.02, 1, 1))
    return _save(plt, figure, directory / "kernels")


def plot_server(report: Dict[str, Any], directory: Path) -> List[Path]:
    plt = _pyplot()
    rows = report["rows"]
    if not rows:
        return []
    cells: List[Tuple[int, int]] = []
    servers: List[str] = []
    for row in rows:
        if (row["clients"], row["size"]) not in cells:
            cells.append((row["clients"], row["size"]))
        if row["server"] not in servers:
            servers.append(row["server"])
    rate = {(r["server"], r["clients"], r["size"]): r["round_trips_per_s"] for r in rows}
    colour = colours(servers)
    figure, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / len(servers)
    for index, server in enumerate(servers):
        xs = [c + (index - (len(servers) - 1) / 2) * width for c in range(len(cells))]
        heights = [rate.get((server, clients, size), 0.0) for clients, size in cells]
        ax.bar(xs, heights, width, label=server, color=colour[server])
    ax.set_xticks(
        range(len(cells)),
        [f"{clients} client{'s' if clients > 1 else ''}, {human(size)}" for clients, size in cells],
    )
    ax.set_yscale("log")
    ax.set_ylabel("round trips/s (higher is better)")
    ax.set_title("Echo servers over loopback: lock-step round trips per second, per cell")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    load = " ".join(f"{v:.1f}" for v in report.get("load_average_before", [])[:1])
    how = f"{report['seconds_per_cell']} s a cell, median of {report['repeat']}"
    footer = f"{caption(report)}; {how}; load average before: {load or '?'}"
    figure.text(0.5, 0.005, footer, ha="center", fontsize=8, color="0.35")
    figure.tight_layout(rect=(0, 0.02, 1, 1))
    return _save(plt, figure, directory / "server")


def _save(plt: Any, figure: Any, stem: Path) -> List[Path]:
    written = []
    for extension in FORMATS:
        path = stem.with_suffix(f".{extension}")
        figure.savefig(path, dpi=110, metadata={"Date": None} if extension == "svg" else None)
        written.append(path)
    plt.close(figure)
    return written


def plot(directory: Path, results: Path = RESULTS) -> List[Path]:
    """Write every chart whose recorded report exists; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    codec = load("codec", results)
    if codec is not None:
        written += plot_kernels(codec, directory)
    server = load("server", results)
    if server is not None:
        written += plot_server(server, directory)
    return written
