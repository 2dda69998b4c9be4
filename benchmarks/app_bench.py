"""Application echo over loopback, each library with and without its wscodec adapter.

Part of ``python -m benchmarks adapters`` (see ``benchmarks/README.md``). For
every library with an adapter (and the two stacks that reach wsproto through
other packages: uvicorn ``--ws wsproto`` and flask-sock / simple-websocket)
two copies of the library's own echo server run, each in its own process
(``benchmarks/app_servers.py``): one as shipped, one with the adapter
installed before the library is imported. Each cell (connections x message
size) then runs the library's own client (``benchmarks/app_clients.py``)
against each, again in a fresh process with or without the adapter; the two
server stacks are driven by ``benchmarks/loadgen.py``, which no adapter
touches. The two sides of a cell run back to back, in alternating order,
and the median of the repeats is reported, with the CPU that server and
client used per round trip.
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
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any, Dict, List, Optional, Tuple

import wscodec

from .codec_suite import human
from .machine import machine

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Library:
    """A benchmarked stack: what it needs installed and how its client runs."""

    def __init__(self, name: str, needs: Tuple[str, ...], pure: bool, loadgen: bool = False):
        self.name = name
        self.needs = needs  # distributions whose versions are printed (and must import)
        self.pure = pure  # pure Python: the 1.3x target at 1 MiB applies
        self.loadgen = loadgen  # a server stack: driven by benchmarks.loadgen


LIBRARIES = (
    Library("websockets", ("websockets",), pure=False),
    Library("wsproto", ("wsproto",), pure=True),
    Library("websocket-client", ("websocket-client",), pure=True),
    Library("tornado", ("tornado",), pure=True),
    Library("aiohttp", ("aiohttp",), pure=False),
    Library("autobahn", ("autobahn",), pure=True),
    Library("ws4py", ("ws4py",), pure=True),
    Library("uvicorn-wsproto", ("uvicorn", "wsproto", "httptools", "uvloop"), True, True),
    Library("flask-sock", ("flask-sock", "simple-websocket", "wsproto", "flask"), True, True),
)
_MODULES = {
    "websocket-client": "websocket",
    "flask-sock": "flask_sock",
    "simple-websocket": "simple_websocket",
}
SIZES = (256, 65536, 1 << 20)
CLIENTS = (1, 50)


def available() -> Tuple[List[Library], Dict[str, str]]:
    """The stacks whose packages are installed, and the versions (or why not)."""
    found: List[Library] = []
    notes: Dict[str, str] = {}
    for library in LIBRARIES:
        versions = []
        for distribution in library.needs:
            module = _MODULES.get(distribution, distribution)
            try:
                if importlib.util.find_spec(module) is None:
                    raise PackageNotFoundError(distribution)
                versions.append(f"{distribution} {version(distribution)}")
            except PackageNotFoundError:
                versions = []
                notes[library.name] = f"not measured: {distribution} is not installed"
                break
        if versions:
            found.append(library)
            notes[library.name] = ", ".join(versions)
    return found, notes


BLOCKED = ""  # set by run(): "wsaccel" unless --wsaccel


def environment() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WSCODEC_AUTOPATCH", None)
    env["WSCODEC_BENCH_BLOCK"] = BLOCKED
    return env


class Server:
    """One library echo server process, with or without the adapter."""

    def __init__(self, library: str, adapter: bool, lifetime: float) -> None:
        self.library = library
        self.log: IO[bytes] = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "benchmarks.app_servers", library]
        command += ["--lifetime", f"{lifetime:.0f}"] + (["--adapter"] if adapter else [])
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=environment(),
            cwd=_ROOT,
        )
        self.port = 0

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"{self.library} server did not start: {self.errors()}")
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


def run_cell(
    library: Library,
    server: Server,
    adapter: bool,
    clients: int,
    size: int,
    seconds: float,
    warmup: float,
) -> Dict[str, Any]:
    if library.loadgen:
        command = [sys.executable, "-m", "benchmarks.loadgen"]
    else:
        command = [sys.executable, "-m", "benchmarks.app_clients", library.name]
        command += ["--adapter"] if adapter else []
    command += ["--port", str(server.port), "--clients", str(clients), "--size", str(size)]
    command += ["--seconds", str(seconds), "--warmup", str(warmup)]
    command += ["--server-pid", str(server.process.pid)]
    done = subprocess.run(
        command,
        capture_output=True,
        env=environment(),
        cwd=_ROOT,
        timeout=seconds + warmup + 90,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{library.name} {'with' if adapter else 'without'} adapter, {clients} x "
            f"{human(size)}: {done.stderr.decode(errors='replace')[-1500:]}\n"
            f"server: {server.errors()}"
        )
    result: Dict[str, Any] = json.loads(done.stdout)
    return result


def cpu_per_round_trip(result: Dict[str, Any]) -> Optional[float]:
    """Microseconds of CPU (server + client processes) per round trip."""
    server, client = result.get("server_cpu_cores"), result.get("loadgen_cpu_cores")
    if server is None or client is None or not result["round_trips_per_s"]:
        return None
    return float((server + client) / result["round_trips_per_s"] * 1e6)


def median_result(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    ordered = sorted(results, key=lambda r: r["round_trips_per_s"])
    middle = dict(ordered[(len(ordered) - 1) // 2])  # the lower median of an even count
    middle["trials"] = [r["round_trips_per_s"] for r in results]
    cpu = [c for c in (cpu_per_round_trip(r) for r in results) if c is not None]
    middle["cpu_us_per_round_trip"] = statistics.median(cpu) if cpu else None
    return middle


def measure(library: Library, args: argparse.Namespace, log: Any) -> List[Dict[str, Any]]:
    """Every cell of one library, both sides, ``args.repeat`` times; the medians."""
    cells = [(c, s) for c in args.clients for s in args.sizes]
    lifetime = (args.seconds + args.warmup + 5) * len(cells) * 2 * args.repeat + 120
    servers = {side: Server(library.name, side, lifetime) for side in (False, True)}
    try:
        for server in servers.values():
            server.wait_ready()
        trials: Dict[Tuple[int, int, bool], List[Dict[str, Any]]] = {}
        for repeat in range(args.repeat):
            for index, (clients, size) in enumerate(cells):
                sides = (False, True) if (index + repeat) % 2 == 0 else (True, False)
                for side in sides:
                    log(f"{library.name}: {clients} x {human(size)}, adapter {side}")
                    result = run_cell(
                        library, servers[side], side, clients, size, args.seconds, args.warmup
                    )
                    trials.setdefault((clients, size, side), []).append(result)
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for clients, size in cells:
        without = median_result(trials[(clients, size, False)])
        with_ = median_result(trials[(clients, size, True)])
        rows.append(
            {
                "library": library.name,
                "pure_python": library.pure,
                "clients": clients,
                "size": size,
                "without": without,
                "with": with_,
                "speedup": with_["round_trips_per_s"] / without["round_trips_per_s"],
            }
        )
    return rows


def run(args: argparse.Namespace) -> Dict[str, Any]:
    global BLOCKED
    BLOCKED = "" if args.wsaccel else "wsaccel"
    found, notes = available()
    if args.libraries:
        wanted = set(args.libraries)
        unknown = wanted - {library.name for library in LIBRARIES}
        if unknown:
            raise SystemExit(f"unknown libraries: {', '.join(sorted(unknown))}")
        found = [library for library in found if library.name in wanted]

    def log(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    load_before = os.getloadavg()
    rows: List[Dict[str, Any]] = []
    for library in found:
        try:
            rows.extend(measure(library, args, log))
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            if args.strict:
                raise
            notes[library.name] = f"failed: {error}"
            log(f"{library.name} failed: {error}")
    return {
        "machine": machine(),
        "backend": wscodec.BACKEND,
        "libraries": notes,
        "wsaccel": bool(args.wsaccel),
        "seconds": args.seconds,
        "repeat": args.repeat,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rows": rows,
    }


def print_table(report: Dict[str, Any]) -> None:
    info = report["machine"]
    print(f"Python {info['python']} on {info['platform']}; CPU: {info['cpu']}")
    wsaccel = "importable" if report.get("wsaccel") else "blocked (as pip installs the libraries)"
    print(f"wscodec backend: {report['backend']}; wsaccel {wsaccel}")
    for name, note in report["libraries"].items():
        print(f"  {name}: {note}")
    before = " ".join(f"{x:.1f}" for x in report["load_before"])
    after = " ".join(f"{x:.1f}" for x in report["load_after"])
    print(
        f"load average before: {before}; after: {after}; {report['seconds']} s per cell and "
        f"side, median of {report['repeat']}; lock-step binary echo, no compression"
    )
    print("rt/s = round trips per second; CPU = server + client CPU per round trip\n")
    header = (
        f"{'library':18} {'clients':>7} {'size':>7} {'rt/s without':>13} {'rt/s with':>11} "
        f"{'speedup':>8} {'CPU us without':>15} {'CPU us with':>12}"
    )
    print(header)
    print("-" * len(header))
    previous = None
    for row in report["rows"]:
        if previous is not None and previous != row["library"]:
            print()
        previous = row["library"]

        def cpu(side: str, row: Dict[str, Any] = row) -> str:
            value = row[side]["cpu_us_per_round_trip"]
            return f"{value:,.0f}" if value is not None else "?"

        print(
            f"{row['library']:18} {row['clients']:>7} {human(row['size']):>7} "
            f"{row['without']['round_trips_per_s']:>13,.0f} "
            f"{row['with']['round_trips_per_s']:>11,.0f} {row['speedup']:>7.2f}x "
            f"{cpu('without'):>15} {cpu('with'):>12}"
        )


def markdown_table(report: Dict[str, Any]) -> str:
    """The rows as the Markdown table of ``benchmarks/README.md``."""
    lines = [
        "| library | clients x size | rt/s without | rt/s with | speedup "
        "| CPU us/rt without | CPU us/rt with |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        cpu = [row[side]["cpu_us_per_round_trip"] for side in ("without", "with")]
        cells = [f"{value:,.0f}" if value is not None else "?" for value in cpu]
        lines.append(
            f"| {row['library']} | {row['clients']} x {human(row['size'])} "
            f"| {row['without']['round_trips_per_s']:,.0f} "
            f"| {row['with']['round_trips_per_s']:,.0f} | {row['speedup']:.2f}x "
            f"| {cells[0]} | {cells[1]} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ",".join(library.name for library in LIBRARIES)
    parser.add_argument("--libraries", type=lambda v: v.split(","), help=f"subset of {names}")
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--clients", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed window per cell")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--repeat", type=int, default=1, help="median of this many trials")
    parser.add_argument(
        "--wsaccel",
        action="store_true",
        help="let the libraries import wsaccel (blocked by default: none of them installs it)",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--strict", action="store_true", help="a failing library fails the run")


def resolve(args: argparse.Namespace) -> None:
    """Fill in the defaults that depend on ``--quick``."""
    if args.sizes is None:
        args.sizes = [256] if args.quick else list(SIZES)
    if args.clients is None:
        args.clients = [1] if args.quick else list(CLIENTS)
    if args.quick:
        args.seconds = min(args.seconds, 0.2)
        args.warmup = min(args.warmup, 0.1)
