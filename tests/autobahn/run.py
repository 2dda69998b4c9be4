"""Run the Autobahn|Testsuite against wscodec, in the server or client role.

    python tests/autobahn/run.py --wstest PATH/wstest --role server --backend cython
    python tests/autobahn/run.py --wstest PATH/wstest --role client --groups 1-10

Server role: ``wstest -m fuzzingclient`` against ``wscodec echo``. Client
role: ``wstest -m fuzzingserver`` driven by ``client_driver.py`` (built on
``wscodec.connect``). wstest exits 0 whatever happens, so this reads its
``index.json``: a case passes when its behaviour is OK and its closing
behaviour is OK or INFORMATIONAL, or when ``allowlist.json`` lists the exact
outcome with a reason. Prints a per-group table and ``N passed, N failed``;
exits 1 on any failure. ``--summary FILE`` appends the table in Markdown.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MAX_SIZE = 64 * 2**20  # group 9 sends messages of up to 16 MiB
PASSING_CLOSE = {"OK", "INFORMATIONAL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def case_patterns(groups: str) -> List[str]:
    if groups == "all":
        return ["*"]
    selected: List[str] = []
    for part in groups.split(","):
        first, _, last = part.partition("-")
        for group in range(int(first), int(last or first) + 1):
            selected.append(f"{group}.*")
    return selected


def backend_env(backend: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("WSCODEC_NO_EXTENSIONS", None)
    if backend == "python":
        env["WSCODEC_NO_EXTENSIONS"] = "1"
    active = subprocess.run(
        [sys.executable, "-c", "import wscodec; print(wscodec.BACKEND)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if active != backend:
        raise SystemExit(f"asked for the {backend} backend but wscodec runs {active}")
    return env


def run_server_role(
    wstest: str,
    cases: List[str],
    outdir: Path,
    agent: str,
    env: Dict[str, str],
    timeout: float,
    flavour: str = "threaded",
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wscodec",
            "echo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-size",
            str(MAX_SIZE),
            *([] if flavour == "threaded" else [f"--{flavour}"]),
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for_port(port, server)
        spec = {
            "outdir": str(outdir),
            "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{port}"}],
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        with tempfile.TemporaryDirectory() as work:
            spec_path = Path(work) / "fuzzingclient.json"
            spec_path.write_text(json.dumps(spec))
            subprocess.run(
                [wstest, "-m", "fuzzingclient", "-s", str(spec_path)],
                cwd=work,
                timeout=timeout,
                check=True,
                stdout=subprocess.DEVNULL,
            )
    finally:
        server.terminate()
        server.wait(30)


def run_client_role(
    wstest: str,
    cases: List[str],
    outdir: Path,
    agent: str,
    env: Dict[str, str],
    timeout: float,
    flavour: str = "sync",
) -> None:
    with tempfile.TemporaryDirectory() as work:
        server, port = start_fuzzing_server(wstest, cases, outdir, Path(work))
        try:
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "client_driver.py"),
                    f"ws://127.0.0.1:{port}",
                    agent,
                    *(["asyncio"] if flavour == "asyncio" else []),
                ],
                env=env,
                cwd=ROOT,
                timeout=timeout,
                check=True,
            )
        finally:
            server.terminate()
            server.wait(30)


def start_fuzzing_server(
    wstest: str, cases: List[str], outdir: Path, work: Path, attempts: int = 3
) -> Tuple[subprocess.Popen, int]:
    """wstest's fuzzing server, listening, and its port.

    The port is one the system had free a moment before; another process
    may take it first (wstest then exits: "Address already in use"), so a
    server that exits at start is tried again on a new port.
    """
    for attempt in range(1, attempts + 1):
        port = free_port()
        spec = {
            "url": f"ws://127.0.0.1:{port}",
            "outdir": str(outdir),
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        spec_path = work / "fuzzingserver.json"
        spec_path.write_text(json.dumps(spec))
        server = subprocess.Popen(
            [wstest, "-m", "fuzzingserver", "-s", str(spec_path), "-u", "0"],
            cwd=work,
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, server)
            return server, port
        except RuntimeError as error:
            exited_at_start = server.poll() is not None
            server.kill()
            server.wait(30)
            if attempt == attempts or not exited_at_start:
                raise
            print(f"{error}; trying another port", file=sys.stderr)
    raise AssertionError("unreachable")


def classify(
    results: Dict[str, Dict[str, object]], allowlist: Dict[str, Dict[str, str]]
) -> List[Tuple[str, str, bool]]:
    """(case, outcome, passed) for every case, in case order."""
    rows = []
    for case in sorted(results, key=lambda c: [int(p) for p in c.split(".")]):
        result = results[case]
        behavior, close = str(result["behavior"]), str(result["behaviorClose"])
        outcome = behavior if close in PASSING_CLOSE else f"{behavior}/{close}"
        allowed = allowlist.get(case, {}).get("outcome")
        passed = (behavior == "OK" and close in PASSING_CLOSE) or outcome == allowed
        rows.append((case, outcome, passed))
    return rows


def table(rows: List[Tuple[str, str, bool]], title: str) -> str:
    groups: Dict[str, collections.Counter] = {}
    for case, outcome, passed in rows:
        group = case.split(".")[0]
        counter = groups.setdefault(group, collections.Counter())
        counter["cases"] += 1
        counter["passed" if passed else "failed"] += 1
        counter[outcome if outcome in ("OK", "NON-STRICT", "INFORMATIONAL") else "other"] += 1
    lines = [
        f"#### {title}",
        "",
        "| group | cases | OK | NON-STRICT | INFORMATIONAL | other | passed | failed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for group in sorted(groups, key=int):
        c = groups[group]
        lines.append(
            f"| {group} | {c['cases']} | {c['OK']} | {c['NON-STRICT']} | "
            f"{c['INFORMATIONAL']} | {c['other']} | {c['passed']} | {c['failed']} |"
        )
    passed = sum(1 for _, _, ok in rows if ok)
    lines += ["", f"{passed} passed, {len(rows) - passed} failed"]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wstest", required=True, help="path to the wstest executable")
    parser.add_argument("--role", choices=["server", "client"], required=True)
    parser.add_argument("--backend", choices=["cython", "python"], default="cython")
    parser.add_argument("--groups", default="all", help='"all", or e.g. "1-10" or "1-4,6"')
    parser.add_argument("--outdir", default=None, help="report folder (deleted first)")
    parser.add_argument("--timeout", type=float, default=2400, help="seconds, at most")
    parser.add_argument("--summary", default=None, help="append the Markdown table here")
    parser.add_argument(
        "--events", action="store_true", help="server role: the event-driven server (--events)"
    )
    parser.add_argument(
        "--asyncio",
        action="store_true",
        help="the asyncio flavour: wscodec echo --asyncio, or the wscodec.asyncio client",
    )
    args = parser.parse_args(argv)
    if args.events and args.role != "server":
        parser.error("--events goes with --role server")
    if args.events and args.asyncio:
        parser.error("--events or --asyncio, not both")
    if not Path(args.wstest).exists():
        raise SystemExit(f"wstest not found at {args.wstest}: run .ci/autobahn-setup first")

    flavour = "events" if args.events else "asyncio" if args.asyncio else ""
    kind = f"{flavour}-" if flavour else ""
    agent = f"wscodec-{kind}{args.backend}"
    outdir = Path(args.outdir or ROOT / "build" / "autobahn" / f"{args.role}-{kind}{args.backend}")
    shutil.rmtree(outdir, ignore_errors=True)  # wstest merges reports: start clean
    outdir.mkdir(parents=True)
    env = backend_env(args.backend)
    cases = case_patterns(args.groups)
    started = time.monotonic()
    role = {
        "": f"{args.role} role",
        "events": "server role (event-driven server)",
        "asyncio": f"{args.role} role (asyncio)",
    }[flavour]
    print(f"Autobahn {role}, {args.backend} backend, cases {args.groups}", flush=True)
    if args.role == "server":
        run_server_role(args.wstest, cases, outdir, agent, env, args.timeout, flavour or "threaded")
    else:
        run_client_role(args.wstest, cases, outdir, agent, env, args.timeout, flavour or "sync")
    elapsed = time.monotonic() - started

    index = json.loads((outdir / "index.json").read_text())
    allowlist = json.loads((HERE / "allowlist.json").read_text())
    rows = classify(index[agent], allowlist)
    title = f"{role}, {args.backend} backend, groups {args.groups} ({elapsed:.0f} s)"
    text = table(rows, title)
    print(text)
    for case, outcome, passed in rows:
        if not passed:
            print(f"FAILED {case}: {outcome}")
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as summary:
            summary.write(text + "\n\n")
    return 0 if all(passed for _, _, passed in rows) and rows else 1


if __name__ == "__main__":
    sys.exit(main())
