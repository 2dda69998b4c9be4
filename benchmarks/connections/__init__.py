"""``python -m benchmarks connections``: many connections on one process, side by side.

    python -m benchmarks connections [--connections 20000] [--quick] [--servers ...]
        [--only idle,memory,threaded,chat] [--json FILE]

For the event-driven server (``wscodec-events``), the asyncio one
(``wscodec-asyncio``) and, with the same clients, websockets (asyncio),
aiohttp and picows, each in a process of its own (asyncio ones on uvloop):

- **idle** (compression off): connections opened in steps (1,000, 10,000,
  then ``--connections``) from ``--processes`` load-generator processes, over
  loopback source addresses 127.0.0.2, 127.0.0.3, ... (bind before connect:
  5,000 a source address, so the ephemeral port range is no limit). At each
  step every connection does two round trips (a 64-byte echo, then a ping
  answered by a pong); then the server's RSS, a fresh client's echo latency
  (200 round trips) and two broadcasts: one 64-byte message (time until the
  last receiver has it) and a burst of 10 (deliveries per second). RSS per
  connection is the growth from the first step to the last;
- **memory**: tracemalloc per connection (after two round trips, as in
  websockets' ``docs/topics/memory.rst``; ``--traced`` connections) with
  compression off and on, and RSS per connection with compression on;
- **threaded**: the threaded server (a thread per connection, the stack size
  it sets) through the same idle steps up to ``--threaded-max``;
- **chat**: the demo under ``--chat`` members at the allowed rate, on each
  of ``--chat-servers`` (see :mod:`benchmarks.connections.chat`).

It raises ``RLIMIT_NOFILE`` itself (the hard limit too where allowed; if not,
the run shrinks to what the limit allows and says so). Every wait has a
deadline; every child process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from .limits import raise_nofile
from .report import print_report
from .scale import memory, rss_compressed, scale
from .server import KINDS

PEERS = ("websockets", "aiohttp", "picows")
OURS = ("wscodec-events", "wscodec-asyncio")
SECTIONS = ("idle", "memory", "threaded", "chat")
#: Descriptors a server needs beyond its connections: listener, pipes, libraries.
_SPARE_DESCRIPTORS = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--traced", type=int, default=1000, help="connections for tracemalloc")
    parser.add_argument("--threaded-max", type=int, default=5000)
    parser.add_argument("--chat", default="250,1000", help="members for the overload runs")
    parser.add_argument(
        "--chat-servers", default="asyncio,threaded", help="the demo's servers to overload"
    )
    parser.add_argument("--servers", default=",".join(OURS + PEERS))
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="2,000 connections, small chat")
    parser.add_argument("--json", default=None, help="write the results here too")


def steps(total: int) -> List[int]:
    return sorted({min(1000, total), min(10000, total), total})


def _thirds(total: int) -> List[int]:
    return sorted({max(1, total // 10), total // 2, total})


def _ends(values: List[int]) -> List[int]:
    return [values[0], values[-1]]


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.connections = min(args.connections, 2000)
        args.traced = min(args.traced, 200)
        args.threaded_max = min(args.threaded_max, 1000)
        args.chat = "60"
    nofile = args.connections + _SPARE_DESCRIPTORS
    soft, hard = raise_nofile(nofile)
    notes: List[str] = []
    if soft < nofile:
        held = soft - _SPARE_DESCRIPTORS
        notes.append(
            f"RLIMIT_NOFILE is {soft} (hard {hard}, not raisable here): "
            f"{held} connections instead of {args.connections}"
        )
        args.connections = held
        nofile = soft
    kinds = [k for k in args.servers.split(",") if k in KINDS]
    only = set(args.only.split(","))
    results: Dict[str, Any] = {"connections": args.connections, "notes": notes}
    if "idle" in only:
        results["idle"] = {
            k: _guarded(scale, k, steps(args.connections), args.processes, nofile) for k in kinds
        }
    if "memory" in only:
        traced_steps = [10, 10 + args.traced]
        results["memory"] = {
            k: {
                "traced_off": _guarded(memory, k, "off", traced_steps, nofile),
                "traced_on": _guarded(memory, k, "on", traced_steps, nofile),
                "rss_on": _guarded(
                    rss_compressed, k, _ends(steps(args.connections)), args.processes, nofile
                ),
            }
            for k in kinds
        }
    if "threaded" in only:
        results["threaded"] = _guarded(
            scale, "wscodec-threaded", _thirds(args.threaded_max), args.processes, nofile
        )
    if "chat" in only:
        from .chat import overload

        results["chat"] = [
            _guarded(overload, int(n), nofile, kind)
            for kind in args.chat_servers.split(",")
            for n in args.chat.split(",")
        ]
    print_report(results)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0


def _guarded(function: Any, *args: Any) -> Dict[str, Any]:
    """A step's result, or what went wrong: one server's failure ends only its own row."""
    print(f"  {function.__name__}{args}", file=sys.stderr, flush=True)
    try:
        result: Dict[str, Any] = function(*args)
        return result
    except Exception as error:  # reported in the table
        return {"error": f"{type(error).__name__}: {error}"[:300]}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks connections", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
