"""``python -m benchmarks server``: echo servers over loopback, one load generator.

Every server runs in a process of its own (``benchmarks/echo_servers.py``) on
a free port of 127.0.0.1, started once for the whole run; every cell (server x
clients x size) runs the same load generator (``benchmarks/loadgen.py``) in a
fresh process: N connections doing lock-step echo round trips for a fixed
time. Cells are interleaved (each repeat runs every server for one cell before
the next cell, in a rotated order) and the median of the repeats is reported,
with the CPU use of the server process, of the load generator and of the
whole machine (other users included) over the timed window.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Dict, List, Optional, Tuple

import wscodec

from .asgi_apps import KINDS as ASGI_KINDS
from .codec_suite import human
from .machine import machine

REFERENCE = "websockets-sync"
ORDER = (
    "wscodec",
    "wscodec-events",
    "wscodec-python",
    "websockets-sync",
    "websockets-asyncio",
    "wscodec-asyncio",
    "aiohttp",
    "picows",
    "picows-websockets",
)
# Only when asked for (--servers): the compiled backend with GIL-holding
# kernels, and with its threads under the default scheduling policy.
EXTRA = ("wscodec-gil", "wscodec-nobatch")
# With --asgi instead: ASGI apps under uvicorn, against its default --ws.
ASGI = ASGI_KINDS
ASGI_REFERENCE = "uvicorn-websockets-sansio"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def available() -> Tuple[List[str], Dict[str, str]]:
    """The server kinds this interpreter can run, and why the others are left out."""
    kinds: List[str] = []
    notes: Dict[str, str] = {}
    for kind in ORDER + EXTRA + ASGI:
        if (
            kind in ("wscodec", "wscodec-events", "wscodec-asyncio", *EXTRA)
            and wscodec.BACKEND != "cython"
        ):
            notes[kind] = "compiled backend not built"
            continue
        module = {"websockets-sync": "websockets", "websockets-asyncio": "websockets"}.get(
            kind, kind.split("-")[0]
        )
        if kind in ASGI:
            module = "starlette" if kind.startswith("starlette") else "uvicorn"
        if importlib.util.find_spec(module) is None:
            notes[kind] = "not installed"
            continue
        kinds.append(kind)
        try:
            from importlib.metadata import version

            notes[kind] = version(module)
        except Exception:
            notes[kind] = "?"
    return kinds, notes


def environment(kind: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WSCODEC_NO_EXTENSIONS", None)
    if kind == "wscodec-python":
        env["WSCODEC_NO_EXTENSIONS"] = "1"
    return env


class EchoServer:
    """One echo server process; it exits when its stdin closes or its lifetime ends."""

    def __init__(self, kind: str, lifetime: float) -> None:
        self.kind = kind
        self.log: IO[bytes] = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "benchmarks.echo_servers", kind]
        command += ["--lifetime", f"{lifetime:.0f}"]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=environment(kind),
            cwd=_ROOT,
        )
        self.port = 0

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"{self.kind} did not start: {self.errors()}")
        self.port = int(line.split()[1])

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


def run_cell(server: EchoServer, clients: int, size: int, seconds: float, warmup: float) -> Dict:
    command = [sys.executable, "-m", "benchmarks.loadgen", "--port", str(server.port)]
    command += ["--clients", str(clients), "--size", str(size), "--seconds", str(seconds)]
    command += ["--warmup", str(warmup), "--server-pid", str(server.process.pid)]
    done = subprocess.run(
        command,
        capture_output=True,
        env=environment("loadgen"),
        cwd=_ROOT,
        timeout=seconds + warmup + 60,
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"load generator failed: {tail}")
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def median(values: List[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def run(args: argparse.Namespace) -> int:
    kinds, notes = available()
    reference = ASGI_REFERENCE if args.asgi else REFERENCE
    if args.servers:
        wanted = args.servers.split(",")
        unknown = [k for k in wanted if k not in ORDER + EXTRA + ASGI]
        if unknown:
            choices = ORDER + EXTRA + ASGI
            print(f"unknown servers: {unknown}; choose from {choices}", file=sys.stderr)
            return 2
    else:
        wanted = list(ASGI if args.asgi else ORDER)
    kinds = [k for k in kinds if k in wanted]
    notes = {k: v for k, v in notes.items() if k in wanted}
    if args.quick:
        seconds, warmup, repeat = 0.25, 0.1, 1
        sizes = [256, 1 << 20]
        client_counts = [1, 10]
    else:
        seconds, warmup, repeat = args.seconds, args.warmup, args.repeat
        sizes = [int(s) for s in args.sizes.split(",")]
        client_counts = [int(c) for c in args.clients.split(",")]
    cells = [(c, s) for c in client_counts for s in sizes]
    total = len(cells) * len(kinds) * repeat
    lifetime = total * (seconds + warmup + 30) + 120  # the servers stop by themselves
    load_before = os.getloadavg()
    started = time.monotonic()
    servers: Dict[str, EchoServer] = {}
    failures: List[str] = []
    samples: Dict[Tuple[str, int, int], List[Dict]] = {}
    try:
        for kind in kinds:
            servers[kind] = EchoServer(kind, lifetime)
        for kind in list(kinds):
            try:
                servers[kind].wait_ready()
            except RuntimeError as error:
                print(f"{kind}: {error}", file=sys.stderr)
                failures.append(kind)
                notes[kind] = "failed to start"
                kinds.remove(kind)
                del servers[kind]
        index = 0
        for round_ in range(repeat):
            for clients, size in cells:
                order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
                for kind in order:
                    index += 1
                    elapsed = time.monotonic() - started
                    label = f"{kind} x{clients} {human(size)}"
                    try:
                        result = run_cell(servers[kind], clients, size, seconds, warmup)
                    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                        print(
                            f"[{index}/{total} {elapsed:5.1f}s] {label}: {error}", file=sys.stderr
                        )
                        failures.append(f"{label}: {error}")
                        continue
                    samples.setdefault((kind, clients, size), []).append(result)
                    print(
                        f"[{index}/{total} {elapsed:5.1f}s] {label}: "
                        f"{result['round_trips_per_s']:.0f} rt/s, server "
                        f"{result['server_cpu_cores'] or 0:.2f} cores, load generator "
                        f"{result['loadgen_cpu_cores'] or 0:.2f}",
                        file=sys.stderr,
                    )
    finally:
        for server in servers.values():
            server.stop()
    rows = summarise(samples, kinds, cells, reference)

    report = {
        "machine": machine(),
        "servers": notes,
        "reference": reference,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "seconds_per_cell": seconds,
        "repeat": repeat,
        "wall_seconds": time.monotonic() - started,
        "rows": rows,
        "failures": failures,
    }
    if args.record:
        from .plot import record, recorded_now

        report["recorded"] = recorded_now()
        print(f"recorded: {record('asgi' if args.asgi else 'server', report)}", file=sys.stderr)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_table(report)
    # A peer that misbehaves is reported; wscodec failing fails the command.
    return 1 if any(f.startswith("wscodec") for f in failures) else 0


def summarise(
    samples: Dict[Tuple[str, int, int], List[Dict]],
    kinds: List[str],
    cells: List[Tuple[int, int]],
    reference_kind: str = REFERENCE,
) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for clients, size in cells:
        reference = samples.get((reference_kind, clients, size))
        reference_rate = median([r["round_trips_per_s"] for r in reference]) if reference else None
        for kind in kinds:
            runs = samples.get((kind, clients, size))
            if not runs:
                continue
            rate = median([r["round_trips_per_s"] for r in runs])
            assert rate is not None
            rows.append(
                {
                    "server": kind,
                    "clients": clients,
                    "size": size,
                    "round_trips_per_s": rate,
                    "mb_per_s": rate * size / 1e6,
                    "ratio_to_reference": rate / reference_rate if reference_rate else None,
                    "server_cpu_cores": median([r["server_cpu_cores"] for r in runs]),
                    "loadgen_cpu_cores": median([r["loadgen_cpu_cores"] for r in runs]),
                    "machine_busy_cores": median([r["machine_busy_cores"] for r in runs]),
                    "samples": [r["round_trips_per_s"] for r in runs],
                }
            )
    return rows


def print_table(report: Dict[str, Any]) -> None:
    info = report["machine"]
    cpu = f"CPU: {info['cpu']}, {os.cpu_count()} cores"
    print(f"Python {info['python']} on {info['platform']}; {cpu}")
    print("servers: " + "; ".join(f"{k} {v}" for k, v in report["servers"].items()))
    before = " ".join(f"{v:.1f}" for v in report["load_average_before"])
    after = " ".join(f"{v:.1f}" for v in report["load_average_after"])
    print(
        f"load average before: {before}; after: {after}; {report['seconds_per_cell']} s per cell, "
        f"median of {report['repeat']}; no permessage-deflate"
    )
    print(
        "lock-step echo: each client sends one binary message and waits for its echo; "
        "MB/s = payload one way; CPU in cores (1.00 = one core busy)"
    )
    header = (
        f"{'server':26} {'clients':>7} {'size':>7} {'round trips/s':>13} {'MB/s':>8} "
        f"{'vs ' + report['reference']:>29} {'server CPU':>10} {'loadgen CPU':>11} "
        f"{'machine':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    previous = None
    for row in report["rows"]:
        if previous is not None and previous != (row["clients"], row["size"]):
            print()
        previous = (row["clients"], row["size"])
        ratio = row["ratio_to_reference"]
        print(
            f"{row['server']:26} {row['clients']:7d} {human(row['size']):>7} "
            f"{row['round_trips_per_s']:13.0f} {row['mb_per_s']:8.1f} "
            f"{'' if ratio is None else f'{ratio:.2f}x':>29} "
            f"{cores(row['server_cpu_cores']):>10} {cores(row['loadgen_cpu_cores']):>11} "
            f"{cores(row['machine_busy_cores']):>7}"
        )
    if report["failures"]:
        print()
        print("failures: " + "; ".join(report["failures"]))


def cores(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 0.25 s cells, 1 and 10 clients, 256 B, 1 MiB",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per cell")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved repeats (median)")
    parser.add_argument("--clients", default="1,50", help="client counts (1,50)")
    parser.add_argument("--sizes", default="256,8192,1048576", help="message sizes in bytes")
    parser.add_argument(
        "--asgi",
        action="store_true",
        help="ASGI apps under uvicorn (bare echo, Starlette endpoint) with each --ws, "
        f"against {ASGI_REFERENCE}, instead of the WebSocket servers",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="also save the report as benchmarks/results/server.json (what --plot draws)",
    )
    parser.add_argument(
        "--servers", help="comma-separated subset of: " + ",".join(ORDER + EXTRA + ASGI)
    )
