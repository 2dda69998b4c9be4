"""``python -m tests.peer_suites LIB... [--source PATH] [--backend cython|python|both]``.

Runs each library's own WebSocket tests without wscodec's adapter (once: the
library does not import wscodec then), and with it on each backend asked for;
prints the counts side by side and every test that passed only without the
adapter. Exits 1 when such a test is not excused in ``excused.toml``, or when a
run proves nothing (no report, no test, the adapter never called); 2 when a
library's tests are not available (websockets without ``--source``).

``LIB`` is a name from ``libraries.py`` or ``sdist`` (every library whose sdist
ships its tests).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .libraries import LIBRARIES, Library, library
from .results import Run, load_excused, problems, regressions, table
from .sources import checkout_commit, installed_version, sdist_tree, stage

PLUGIN_DIR = Path(__file__).with_name("plugin")
#: Our own ``[pytest]`` section, the same for both runs: the library's own
#: configuration wants its CI's plugins (coverage, xdist, ...).
BASE_INI = [
    "[pytest]",
    "addopts = -p no:cacheprovider -p wscodec_peer_adapter",
    "timeout = 120",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_echo_server(script: Path, env: Dict[str, str]) -> subprocess.Popen:  # type: ignore[type-arg]
    # Its tracebacks for clients that leave abruptly (the tests do) are noise here.
    server = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        cwd=script.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = int(env["LOCAL_WS_SERVER_PORT"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"{script.name} exited with {server.returncode}") from None
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"{script.name} did not listen on port {port}")


def run_pytest(
    entry: Library,
    staged: Path,
    *,
    label: str,
    backend: str,
    with_adapter: bool,
    timeout: float,
    extra_args: List[str],
    only: Optional[List[str]] = None,
) -> Run:
    """One pytest run in its own process; its outcomes from the plugin's report."""
    report = Path(tempfile.mkstemp(prefix="wscodec-peer-", suffix=".json")[1])
    report.unlink()
    env = dict(os.environ)
    env.update(entry.env)
    env.pop("WSCODEC_NO_EXTENSIONS", None)
    env.pop("WSCODEC_REQUIRE_EXTENSION", None)
    if backend != "none":
        env["WSCODEC_NO_EXTENSIONS" if backend == "python" else "WSCODEC_REQUIRE_EXTENSION"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), env.get("PYTHONPATH")]))
    env["WSCODEC_PEER_ADAPTER"] = entry.adapter if with_adapter else ""
    env["WSCODEC_PEER_MODULE"] = entry.module
    env["WSCODEC_PEER_REPORT"] = str(report)
    env.pop("WSCODEC_AUTOPATCH", None)
    command = [sys.executable, "-m", "pytest", "-c", str(staged / "pytest.ini")]
    command += ["--rootdir", str(staged), "-q", "--no-header", "-rN", "-W", "ignore"]
    for nodeid in entry.deselect:
        command += ["--deselect", nodeid]
    command += [*entry.pytest_args, *extra_args, *(only or entry.run)]
    server = None
    if entry.echo_server:
        env["LOCAL_WS_SERVER_PORT"] = str(_free_port())
        server = _start_echo_server(staged / entry.echo_server, env)
    on = f", {backend} backend" if backend != "none" else ""
    print(f"== {label}{on}: {' '.join(command[1:])}", flush=True)
    began = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=staged,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    returncode: Optional[int]
    try:
        output, _ = proc.communicate(timeout=timeout)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        returncode = None
        output += f"\n(killed after {timeout:.0f} s)\n"
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    seconds = time.monotonic() - began
    tail = output.strip().splitlines()[-1:] if output.strip() else ["(no output)"]
    print(f"   {tail[0]}", flush=True)
    run = Run.load(label, backend, returncode, seconds, report)
    report.unlink(missing_ok=True)
    if not run.report:
        print(output[-4000:], flush=True)
    return run


def _source_for(name: str, entry: Library, source: Optional[Path]) -> tuple:  # type: ignore[type-arg]
    """``(tree, description)`` of the tests' source."""
    version = installed_version(entry.distribution)
    if source is not None:
        commit = checkout_commit(source)
        return source, f"checkout {source}" + (f" at {commit}" if commit else "")
    if not entry.sdist:
        raise SystemExit(
            f"{name}: its sdist ships no tests; pass --source PATH, a checkout of its "
            f"repository at the {version} release tag (or the nearest commit)"
        )
    return sdist_tree(entry.distribution, version), f"sdist {entry.distribution}=={version}"


def run_library(
    name: str, source: Optional[Path], backends: List[str], timeout: float, extra: List[str]
) -> Dict[str, object]:
    """Run one library's suite without and with the adapter; the summary as a dict."""
    entry = library(name)
    version = installed_version(entry.distribution)
    tree, described = _source_for(name, entry, source)
    print(f"== {name} {version}: tests from {described}", flush=True)
    ini = "\n".join([*BASE_INI, *entry.ini]) + "\n"
    staged = stage(Path(tree), f"{name}-{version}", entry.copies, ini, entry.conftest)
    excused = load_excused(name)
    common: Dict[str, Any] = {"timeout": timeout, "extra_args": extra}
    without = run_pytest(
        entry, staged, label="without adapter", backend="none", with_adapter=False, **common
    )
    runs = [without]
    for backend in backends:
        runs.append(
            run_pytest(
                entry, staged, label="with adapter", backend=backend, with_adapter=True, **common
            )
        )
    print(table(name, version, runs), flush=True)
    failures = problems(runs, staged)
    lost: Dict[str, List[List[str]]] = {}
    for run in runs[1:]:
        found = regressions(without, run, excused)
        if found:
            # The suites have timing-bound tests that fail now and then on a
            # loaded machine, with or without the adapter: one more try each.
            again = run_pytest(
                entry,
                staged,
                label="with adapter, rerun",
                backend=run.backend,
                with_adapter=True,
                only=[nodeid for nodeid, _ in found],
                **common,
            )
            for nodeid, outcome in found:
                if again.outcomes.get(nodeid) in ("passed", "xpassed"):
                    print(f"   flaky ({run.backend}): {nodeid}: {outcome}, then passed on a rerun")
            found = [f for f in found if again.outcomes.get(f[0]) not in ("passed", "xpassed")]
        lost[run.backend] = [list(item) for item in found]
        for nodeid, outcome in found:
            failures.append(
                f"{run.backend}: {nodeid} passed without the adapter, {outcome} with it"
            )
        used = [n for n in excused if run.outcomes.get(n) not in ("passed", "xpassed")]
        for nodeid in used:
            print(f"   excused ({run.backend}): {nodeid}: {excused[nodeid]}", flush=True)
    stale = [
        n for n in excused if all(r.outcomes.get(n) in ("passed", "xpassed") for r in runs[1:])
    ]
    for nodeid in stale:
        print(f"   note: excused but passing with the adapter: {nodeid}", flush=True)
    for failure in failures:
        print(f"   FAIL {failure}", flush=True)
    print(f"== {name}: {'FAILED' if failures else 'ok'}", flush=True)
    return {
        "library": name,
        "version": version,
        "source": described,
        "runs": [
            {
                "label": r.label,
                "backend": r.backend,
                "counts": r.counts(),
                "seconds": round(r.seconds, 1),
                "adapter_calls": r.report.get("adapter_calls", {}),
            }
            for r in runs
        ],
        "regressions": lost,
        "failures": failures,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.peer_suites", description=__doc__)
    parser.add_argument("libraries", nargs="+", metavar="LIB", help="a library, or 'sdist'")
    parser.add_argument("--source", type=Path, help="a checkout holding the library's tests")
    parser.add_argument("--backend", choices=("cython", "python", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for one pytest run")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("pytest_args", nargs="*", default=[], help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)
    names: List[str] = []
    for name in args.libraries:
        if name == "sdist":
            names += [n for n, e in LIBRARIES.items() if e.sdist]
        else:
            library(name)  # an unknown name ends the run here
            names.append(name)
    if args.source is not None and len(names) != 1:
        parser.error("--source goes with one library")
    backends = ["cython", "python"] if args.backend == "both" else [args.backend]
    summaries = [run_library(name, args.source, backends, args.timeout, extra) for name in names]
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=1))
    failed = [s["library"] for s in summaries if s["failures"]]
    if failed:
        print(f"== FAILED: {', '.join(map(str, failed))}", flush=True)
        return 1
    print(f"== peer suites ok: {', '.join(names)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
