"""``python -m benchmarks.instructions``: instructions per call, counted by callgrind.

On a shared machine two timings of the same call differ by 10% and more,
too much to rank two pure-Python implementations a few percent apart. How
many instructions a call executes does not depend on the load, so this runs
each selected case of the codec suite (``benchmarks/codec_suite.py``) under
``valgrind --tool=callgrind`` and reports the instructions per call. It is
slow (valgrind runs Python ~50x slower; one to two minutes a case) and, like
the timings, installs nothing: valgrind must be on the PATH.

    python -m benchmarks.instructions [--only parse,encode,roundtrip] [--contenders "(python),(py)"]
                                      [--sizes 16,1024] [--no-peers] [--json]

Each case runs in two processes that build the same cases, with the same
hash seed: one makes ``WARMUP`` calls, the other ``WARMUP + N``; the
difference divided by N is one call in the steady state (the warm-up absorbs
the interpreter's specialisation and the first allocations). Instructions are not time: a
memory-bound pass runs fewer instructions per second than a call-bound one,
so compare contenders on the same line, not lines with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List

from . import peers as peer_module
from .codec_suite import Case, all_cases, human
from .roundtrip import roundtrip_cases

WARMUP = 10
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REFS = re.compile(r"refs:\s+([\d,]+)")


def cases(with_peers: bool) -> List[Case]:
    """Every case of the codec suite (with the peers installed here), in a fixed order.

    Then the threaded server's round trip (``benchmarks/roundtrip.py``),
    which has no timed twin: its time is the scheduler's as much as ours.
    """
    found = peer_module.detect()[0] if with_peers else []
    return all_cases(found, quick=False) + roundtrip_cases()


def calls_for(case: Case) -> int:
    """Calls per count: ~16 MiB of input, at least 20, at most 3000.

    Whatever still differs between two processes is spread over that many calls.
    """
    return max(20, min(3000, (16 << 20) // max(case.nbytes, 1)))


def count(index: int, calls: int, with_peers: bool) -> int:
    """Instructions executed by a process that runs case ``index`` ``calls`` times."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        str(index),
        str(calls),
    ] + ([] if with_peers else ["--no-peers"])
    # One hash seed for every count: with a random one, dictionaries lay out
    # differently in each process and the counts of two runs differ by
    # thousands of instructions that have nothing to do with the case.
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, cwd=_ROOT, env=env, capture_output=True, text=True, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind failed on case {index}:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def select(all_of: List[Case], args: argparse.Namespace) -> List[int]:
    sections = args.only.split(",") if args.only else None
    contenders = args.contenders.split(",") if args.contenders else None
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None
    chosen = []
    for index, case in enumerate(all_of):
        if sections and case.section not in sections:
            continue
        if contenders and not any(part in case.contender for part in contenders):
            continue
        if sizes and case.size not in sizes:
            continue
        chosen.append(index)
    return chosen


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--only", help="comma-separated sections: mask,utf8,parse,encode,roundtrip")
    parser.add_argument(
        "--contenders",
        default="(python),(py)",
        help="comma-separated parts of contender names (default: the pure-Python ones)",
    )
    parser.add_argument("--sizes", help="comma-separated sizes in bytes")
    parser.add_argument(
        "--no-peers", action="store_true", help="wscodec's own cases only (faster start-up)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    all_of = cases(not args.no_peers)
    if args.child:
        index, calls = args.child
        call = all_of[index].call
        for _ in range(calls):
            call()
        return 0
    if shutil.which("valgrind") is None:
        sys.stderr.write("valgrind is not installed\n")
        return 2
    chosen = select(all_of, args)
    if not chosen:
        sys.stderr.write("no case matches\n")
        return 2
    rows: List[Dict[str, Any]] = []
    for number, index in enumerate(chosen, 1):
        case = all_of[index]
        calls = calls_for(case)
        label = f"{case.section} {case.case} {human(case.size)}: {case.contender}"
        sys.stderr.write(f"[{number}/{len(chosen)}] {label} ({calls} calls)\n")
        sys.stderr.flush()
        with_peers = not args.no_peers
        extra = count(index, WARMUP + calls, with_peers) - count(index, WARMUP, with_peers)
        rows.append(
            {
                "section": case.section,
                "case": case.case,
                "size": case.size,
                "contender": case.contender,
                "calls": calls,
                "instructions_per_call": extra / calls,
            }
        )
    if args.json:
        json.dump({"python": sys.version.split()[0], "rows": rows}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"{'section':9} {'case':32} {'size':>6}  {'contender':24} {'instr/call':>14}")
    print("-" * 90)
    for row in rows:
        print(
            f"{row['section']:9} {row['case']:32} {human(row['size']):>6}  "
            f"{row['contender']:24} {row['instructions_per_call']:14,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
