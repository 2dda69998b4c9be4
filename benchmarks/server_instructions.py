"""``python -m benchmarks.server_instructions``: each echo server's instructions per round trip.

The server's CPU per round trip is the steadiest timed figure of ``python -m
benchmarks server``, and still moves by 10% and more with the load of a
shared machine. How many instructions the server executes for one round trip
does not: this runs each echo server of ``benchmarks/echo_servers.py`` (the
same servers, options and handlers) under ``valgrind --tool=callgrind`` with
instrumentation off; one client connects, makes ``WARMUP`` round trips of
``--size`` bytes (the interpreter specialises, caches fill), turns
instrumentation on with ``callgrind_control``, makes ``--round-trips`` more,
turns it off and has the profile dumped. Instructions / round trips is the
figure.

What it counts: everything the server process runs in user space (the
interpreter, the event loop, the library, the handler, libc), not the
kernel's work (the system calls, a third to a half of a small round trip's
time): two servers that make the same system calls differ by their user-space
instructions. It is one client, lock-step, so every round trip also pays one
turn of the event loop. Slow: valgrind runs the server ~50x slower (about ten
seconds a server). Needs valgrind (``callgrind_control`` comes with it).

    python -m benchmarks.server_instructions [--servers wscodec-asyncio,picows]
                                             [--size 256] [--round-trips 2000] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from .echo_servers import KINDS
from .memory import Client

DEFAULT_SERVERS = ("wscodec-asyncio", "picows-websockets", "picows", "websockets-asyncio")
WARMUP = 200
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def _control(option: str, pid: int) -> None:
    subprocess.run(
        ["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=60
    )


def _dumped_instructions(directory: str) -> int:
    """The instructions recorded in the dumps (the file written at exit holds none)."""
    total = 0
    for path in glob.glob(os.path.join(directory, "callgrind.out*")):
        with open(path, encoding="utf-8", errors="replace") as profile:
            match = _TOTALS.search(profile.read())
        if match:
            total += int(match.group(1))
    return total


def count(kind: str, size: int, round_trips: int) -> float:
    """User-space instructions the ``kind`` echo server runs per round trip."""
    with tempfile.TemporaryDirectory(prefix="wscodec-callgrind-") as directory:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={directory}/callgrind.out",
            sys.executable,
            "-m",
            "benchmarks.echo_servers",
            kind,
            "--lifetime",
            "600",
        ]
        server = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=_ROOT,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"{kind} did not start under valgrind")
            client = Client(int(line.split()[1]), compression=False, message=b"x" * size)
            for _ in range(WARMUP):
                client.round_trip()
            _control("--instr=on", server.pid)
            for _ in range(round_trips):
                client.round_trip()
            _control("--instr=off", server.pid)
            _control("--dump", server.pid)
            client.close()
            instructions = _dumped_instructions(directory)
        finally:
            server.kill()
            server.wait()
    if not instructions:
        raise RuntimeError(f"callgrind recorded nothing for {kind}")
    return instructions / round_trips


def report(results: Dict[str, float], size: int, round_trips: int) -> str:
    floor = results.get("picows")
    lines = [
        f"user-space instructions per round trip (callgrind), 1 client x {size} B,"
        f" {round_trips} round trips after {WARMUP}",
        "",
        "| server | instructions | vs picows |",
        "| --- | ---: | ---: |",
    ]
    for kind, value in results.items():
        ratio = f"{value / floor:.2f}x" if floor else "-"
        lines.append(f"| {kind} | {value:,.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.server_instructions",
        description="Each echo server's user-space instructions per round trip, by callgrind.",
    )
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS))
    parser.add_argument("--size", type=int, default=256, help="message size in bytes (256)")
    parser.add_argument("--round-trips", type=int, default=2000, help="counted (2000)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("valgrind (with callgrind_control) must be on the PATH")
    kinds = [kind for kind in args.servers.split(",") if kind]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        parser.error(f"unknown servers: {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    results: Dict[str, float] = {}
    for index, kind in enumerate(kinds, 1):
        print(f"  [{index}/{len(kinds)}] {kind} under callgrind", file=sys.stderr, flush=True)
        results[kind] = count(kind, args.size, args.round_trips)
    if args.json:
        print(json.dumps({"size": args.size, "round_trips": args.round_trips, "servers": results}))
    else:
        print(report(results, args.size, args.round_trips))
    return 0


if __name__ == "__main__":
    sys.exit(main())
