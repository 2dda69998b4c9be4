"""``python -m benchmarks``: wscodec next to its peers, as ratios to memcpy.

    python -m benchmarks [codec] [--quick] [--json] [--only mask,utf8,parse,encode]
    python -m benchmarks server [--quick] [--json] [--seconds S] [--repeat N] [--servers ...]
    python -m benchmarks --plot DIR     (charts of the last --record'ed runs; the bench extra)
    python -m benchmarks connections [--quick] [--connections N] [--json FILE]
    python -m benchmarks adapters [--quick] [--json] [--part app|kernels|all] [--libraries ...]

Installs nothing: the peers (websockets, aiohttp, wsproto, wsaccel, autobahn,
picows) are compared when they import and listed as missing otherwise. Every
figure is the best of 5 timed repeats; memcpy of the same number of bytes is
timed in the same process just before each group of rows, and ratios to it
are what compare across machines.
A progress line on stderr says what is running.

Subcommands: ``codec`` (the default) times the kernels, parser and encoder.
``server`` runs echo servers (wscodec's threaded server on both backends and
the installed peers) each in its own process and drives them all with the
same load generator process: see ``benchmarks/server_bench.py``.
``adapters`` runs each library with an adapter in ``wscodec.integrations``
with and without it: its own server and client echoing over loopback
(``benchmarks/app_bench.py``) and its kernels (``benchmarks/adapters.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional

from . import peers as peer_module
from .codec_suite import all_cases, human
from .machine import machine
from .timing import Memcpy, best_time


class Progress:
    """One line on stderr, rewritten in place on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def show(self, index: int, label: str) -> None:
        elapsed = time.monotonic() - self.started
        line = f"[{index}/{self.total} {elapsed:5.1f}s] {label}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:120])
        elif index == 1 or index % 20 == 0:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        sys.stderr.write(f"done: {self.total} timings in {time.monotonic() - self.started:.1f}s\n")


def run_codec(args: argparse.Namespace) -> int:
    budget = 0.01 if args.quick else args.budget
    found, notes = peer_module.detect()
    only = args.only.split(",") if args.only else None
    cases = all_cases(found, args.quick, only)
    memcpy = Memcpy(budget)
    progress = Progress(len(cases))
    rows: List[Dict[str, Any]] = []
    for index, case in enumerate(cases, 1):
        progress.show(index, f"{case.section} {case.case} {human(case.size)}: {case.contender}")
        group = (case.section, case.case, case.size)
        reference = memcpy.rate(case.nbytes, group)
        seconds = best_time(case.call, budget)
        rate = case.nbytes / seconds
        rows.append(
            {
                "section": case.section,
                "case": case.case,
                "size": case.size,
                "contender": case.contender,
                "bytes_per_call": case.nbytes,
                "seconds_per_call": seconds,
                "gb_per_s": rate / 1e9,
                "ratio_to_memcpy": rate / reference,
                "memcpy_gb_per_s": reference / 1e9,
                "m_frames_per_s": case.frames / seconds / 1e6 if case.frames else None,
            }
        )
    progress.done()
    report = {"machine": machine(), "peers": notes, "budget_s": budget, "rows": rows}
    if args.record:
        from .plot import record, recorded_now

        report["recorded"] = recorded_now()
        print(f"recorded: {record('codec', report)}", file=sys.stderr)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_table(report)
    return 0


def print_table(report: Dict[str, Any]) -> None:
    info = report["machine"]
    print(f"Python {info['python']} on {info['platform']}; CPU: {info['cpu']}")
    print(f"wscodec kernels: {info['kernels']}; GIL released from: {info['nogil_thresholds']}")
    print("peers: " + "; ".join(f"{name} {note}" for name, note in report["peers"].items()))
    print("ratio = throughput / memcpy throughput of the same bytes, same run (higher is better)")
    header = f"{'section':7} {'case':30} {'size':>7}  {'contender':24} {'GB/s':>8} {'ratio':>8}"
    header += f" {'Mframe/s':>9}"
    previous = None
    for row in report["rows"]:
        group = (row["section"], row["case"], row["size"])
        if group != previous:
            if previous is None or previous[0] != row["section"]:
                print()
                print(header)
                print("-" * len(header))
            previous = group
            memcpy = f"{'memcpy':24} {row['memcpy_gb_per_s']:8.2f} {1.0:7.3f}x"
            print(f"{row['section']:7} {row['case']:30} {human(row['size']):>7}  {memcpy}")
        frames = f"{row['m_frames_per_s']:9.2f}" if row["m_frames_per_s"] is not None else ""
        print(
            f"{'':7} {'':30} {'':>7}  {row['contender']:24} {row['gb_per_s']:8.2f} "
            f"{row['ratio_to_memcpy']:7.3f}x {frames}"
        )


def run_server(args: argparse.Namespace) -> int:
    from . import server_bench

    return server_bench.run(args)


def run_adapters(args: argparse.Namespace) -> int:
    from . import adapters, app_bench

    app_bench.resolve(args)
    report: Dict[str, Any] = {}
    if args.part in ("app", "all"):
        report["application"] = app_bench.run(args)
        if args.markdown:
            print(app_bench.markdown_table(report["application"]))
        elif not args.json:
            app_bench.print_table(report["application"])
            print()
    if args.part in ("kernels", "all"):
        only = args.libraries or []
        names = [name.replace("-", "_") for name in only]
        rows = adapters.kernel_rows(0.03 if args.quick else args.budget, names)
        report["kernels"] = [
            {"library": r[0], "workload": r[1], "without": r[2], "with": r[3], "unit": r[4]}
            for r in rows
        ]
        if not args.json:
            adapters.print_kernel_rows(rows)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command")
    for name in ("codec", None):
        target = (
            commands.add_parser("codec", help="kernels, parser and encoder (default)")
            if name
            else parser
        )
        target.add_argument(
            "--quick", action="store_true", help="a few seconds: fewer sizes, short timings"
        )
        target.add_argument("--json", action="store_true", help="print JSON instead of the table")
        target.add_argument("--only", help="comma-separated sections: mask,utf8,parse,encode")
        target.add_argument(
            "--budget", type=float, default=0.2, help="seconds per timing (default 0.2)"
        )
        target.add_argument(
            "--record",
            action="store_true",
            help="also save the report as benchmarks/results/codec.json (what --plot draws)",
        )
    parser.add_argument(
        "--plot",
        metavar="DIR",
        help="write SVG and PNG charts of the recorded runs into DIR (needs matplotlib)",
    )
    from .server_bench import add_arguments

    add_arguments(
        commands.add_parser(
            "server", help="echo servers over loopback: round trips/s, one load generator"
        )
    )
    from . import memory

    memory.add_arguments(
        commands.add_parser(
            "memory", help="memory per connection of the asyncio servers (tracemalloc, RSS)"
        )
    )
    from . import app_bench

    adapter_parser = commands.add_parser(
        "adapters", help="each library with and without its wscodec adapter"
    )
    adapter_parser.add_argument(
        "--part",
        choices=("app", "kernels", "all"),
        default="all",
        help="app: the library's own server and client; kernels: its hooks alone",
    )
    adapter_parser.add_argument("--quick", action="store_true", help="smoke: one cell, short")
    adapter_parser.add_argument("--json", action="store_true", help="print JSON")
    adapter_parser.add_argument(
        "--budget", type=float, default=0.3, help="seconds per kernel figure"
    )
    app_bench.add_arguments(adapter_parser)
    from . import connections

    connections.add_arguments(
        commands.add_parser(
            "connections",
            help="many connections: memory each, broadcast, latency, the chat under load",
        )
    )
    args = parser.parse_args(argv)
    if args.plot:
        from pathlib import Path

        from .plot import plot

        written = plot(Path(args.plot))
        if not written:
            print("nothing recorded yet: run with --record first", file=sys.stderr)
            return 1
        for path in written:
            print(path)
        return 0
    if args.command == "connections":
        return connections.run(args)
    if args.command == "adapters":
        return run_adapters(args)
    if args.command == "server":
        return run_server(args)
    if args.command == "memory":
        return memory.run(args)
    return run_codec(args)


if __name__ == "__main__":
    sys.exit(main())
