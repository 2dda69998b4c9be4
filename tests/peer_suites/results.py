"""What each run of a peer suite recorded, the counts, and the verdict.

The verdict: every test that passed without the adapter passes with it, on
each backend, unless ``excused.toml`` lists it (with its reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - Python 3.9/3.10
    import tomli as tomllib  # type: ignore[no-redef]

EXCUSED_FILE = Path(__file__).with_name("excused.toml")
COLUMNS = ("passed", "failed", "skipped", "errors")
_COUNTED_AS = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "xfailed": "skipped",
    "error": "errors",
}


def load_excused(library: str, path: Path = EXCUSED_FILE) -> Dict[str, str]:
    """``{node id: reason}`` of the tests of ``library`` excused with the adapter."""
    with open(path, "rb") as source:
        table = tomllib.load(source)
    entries = table.get(library, {})
    for nodeid, reason in entries.items():
        if not isinstance(reason, str) or not reason.strip():
            raise SystemExit(f"{path}: [{library}] {nodeid!r} needs a reason")
    return dict(entries)


@dataclass
class Run:
    """One pytest run of a suite: without the adapter, or with it on one backend."""

    label: str
    backend: str
    returncode: Optional[int]
    seconds: float
    report: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls, label: str, backend: str, returncode: Optional[int], seconds: float, path: Path
    ) -> Run:
        report: Dict[str, Any] = {}
        if path.is_file():
            report = json.loads(path.read_text(encoding="utf-8"))
        return cls(label, backend, returncode, seconds, report)

    @property
    def outcomes(self) -> Dict[str, str]:
        result: Dict[str, str] = self.report.get("outcomes", {})
        return result

    def counts(self) -> Dict[str, int]:
        tally = dict.fromkeys(COLUMNS, 0)
        for outcome in self.outcomes.values():
            tally[_COUNTED_AS[outcome]] += 1
        return tally

    def passed(self) -> List[str]:
        return sorted(n for n, o in self.outcomes.items() if o in ("passed", "xpassed"))


def regressions(without: Run, with_adapter: Run, excused: Dict[str, str]) -> List[Tuple[str, str]]:
    """``(node id, outcome with the adapter)`` of each test that passed only without it."""
    after = with_adapter.outcomes
    return [
        (nodeid, after.get(nodeid, "not run"))
        for nodeid in without.passed()
        if after.get(nodeid) not in ("passed", "xpassed") and nodeid not in excused
    ]


def problems(runs: List[Run], stage_dir: Path) -> List[str]:
    """What makes a run unusable as evidence: no report, a crash, the wrong copy, an idle adapter."""
    found = []
    for run in runs:
        where = f"{run.label} ({run.backend})"
        if not run.report:
            found.append(f"{where}: pytest wrote no report (exit {run.returncode}; timeout?)")
            continue
        if run.backend != "none" and run.report["backend"] != run.backend:
            found.append(f"{where}: wscodec ran on the {run.report['backend']} backend")
        library_file = run.report.get("library_file") or ""
        if library_file and Path(library_file).resolve().is_relative_to(stage_dir.resolve()):
            found.append(
                f"{where}: imported the library from the staged tests, not the installed one"
            )
        if not run.outcomes:
            found.append(f"{where}: no test ran")
        if run.report.get("adapter"):
            if not run.report.get("adapter_installed_at_end"):
                found.append(f"{where}: the adapter was not installed at the end of the run")
            if not sum(run.report.get("adapter_calls", {}).values()):
                found.append(f"{where}: the adapter's replacements never ran")
    return found


def table(library: str, version: str, runs: List[Run]) -> str:
    """The counts side by side, one row per run."""
    lines = [
        f"{library} {version}",
        f"   {'run':<28} {'backend':<8} " + " ".join(f"{c:>8}" for c in COLUMNS) + "  seconds",
    ]
    for run in runs:
        counts = run.counts()
        lines.append(
            f"   {run.label:<28} {run.backend:<8} "
            + " ".join(f"{counts[c]:>8}" for c in COLUMNS)
            + f"  {run.seconds:7.1f}"
        )
    return "\n".join(lines)
