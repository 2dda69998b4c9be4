"""The package's layering holds by itself, and every documented name imports.

The layers, lowest first (docs/development.md, "Layout"): the sans-I/O core; what the I/O
flavours share, and the adapters (which need only the codec); the flavours,
each on its own; the public API (``wscodec/__init__.py``); scale-out and the
demo; the command line. A module may import from its own group or from a
lower layer; never upward, never a sibling flavour, and no module-level
import cycles. Imports inside functions and under ``if TYPE_CHECKING:``
count for the layering (they run, or they are a dependency all the same)
but not for cycles (they are how a cycle is broken at import time).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

import wscodec

# The package as imported (the source tree, or an installed wheel under test).
PACKAGE = Path(wscodec.__file__).resolve().parent
ROOT = PACKAGE.parent
# The README beside the tests; a wheel's test run copies tests/ alone.
README = Path(__file__).resolve().parents[1] / "README.md"
NO_README = "no README.md beside tests/ (a wheel's test run copies tests/ alone)"

# (group, rank, module prefixes). The longest matching prefix decides.
GROUPS: List[Tuple[str, int, Tuple[str, ...]]] = [
    (
        "core",
        0,
        (
            "wscodec._backend",
            "wscodec._codec",
            "wscodec._version",
            "wscodec.codec",
            "wscodec.connection",
            "wscodec.deflate",
            "wscodec.exceptions",
            "wscodec.handshake",
            "wscodec.keepalive",
            "wscodec.masking",
            "wscodec.protocol",
            "wscodec.received",
            "wscodec.uri",
            "wscodec.utf8",
        ),
    ),
    ("shared", 1, ("wscodec.serving", "wscodec.sockets", "wscodec.receive_buffer")),
    ("adapters", 1, ("wscodec.integrations", "wscodec.wsaccel")),
    ("sync", 2, ("wscodec.sync",)),
    ("events", 2, ("wscodec.events",)),
    ("asyncio", 2, ("wscodec.asyncio",)),
    ("api", 3, ("wscodec",)),
    ("applications", 4, ("wscodec.brokers", "wscodec.workers", "wscodec.apps", "wscodec.demo")),
    ("commands", 5, ("wscodec.cli", "wscodec.__main__")),
]


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int
    module_level: bool  # False inside a function or under TYPE_CHECKING


def group_of(module: str) -> Tuple[str, int]:
    best: Optional[Tuple[int, str, int]] = None
    for name, rank, prefixes in GROUPS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), name, rank)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to GROUPS in {__file__}")
    return best[1], best[2]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> Dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(importer: str, is_package: bool, node: ast.AST, known: Set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(importer, is_package, node)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            # ``from . import codec`` imports a module; ``from . import BACKEND`` a name.
            yield submodule if submodule in known else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, known: Set[str]) -> List[Edge]:
    """Every import of a wscodec module in ``path``, with where it sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    edges: List[Edge] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, is_package, child, known):
                    if target == "wscodec" or target.startswith("wscodec."):
                        edges.append(Edge(module, target, child.lineno, module_level))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                visit(child, False)
            else:
                visit(child, module_level)

    visit(tree, True)
    return edges


def all_edges() -> List[Edge]:
    modules = package_modules()
    known = set(modules) | {"wscodec._codec"}
    return [edge for name, path in modules.items() for edge in imports_of(name, path, known)]


def layering_violations(edges: List[Edge]) -> List[str]:
    """Imports that go up a layer, or across to a sibling group of the same rank."""
    problems = []
    for edge in edges:
        if edge.importer == edge.imported:
            continue
        (source, source_rank), (target, target_rank) = (
            group_of(edge.importer),
            group_of(edge.imported),
        )
        if source == target or target_rank < source_rank:
            continue
        direction = "up" if target_rank > source_rank else "across"
        problems.append(
            f"{edge.importer}:{edge.line} imports {edge.imported}"
            f" ({direction}: {source} -> {target})"
        )
    return problems


def import_cycles(edges: List[Edge]) -> List[List[str]]:
    """The cycles among module-level imports (each found once, from its first module)."""
    graph: Dict[str, Set[str]] = {}
    for edge in edges:
        if edge.module_level and edge.importer != edge.imported:
            graph.setdefault(edge.importer, set()).add(edge.imported)
    cycles: List[List[str]] = []
    seen_cycles: Set[frozenset] = set()
    done: Set[str] = set()

    def walk(node: str, path: List[str], on_path: Set[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                cycle = [*path[path.index(target) :], target]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    cycles.append(cycle)
            elif target not in done:
                on_path.add(target)
                walk(target, [*path, target], on_path)
                on_path.discard(target)
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            walk(start, [start], {start})
    return cycles


def test_every_module_is_in_a_layer():
    for name in package_modules():
        group_of(name)  # raises for a module nobody placed


def test_no_module_imports_upward_or_across_flavours():
    assert layering_violations(all_edges()) == []


def test_no_import_cycles():
    assert import_cycles(all_edges()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle():
    """The checks themselves fail on the mistakes they exist for."""
    edges = all_edges()
    upward = Edge("wscodec.protocol", "wscodec.sync.server", 1, True)
    across = Edge("wscodec.sync.connection", "wscodec.events.loop", 1, False)
    assert layering_violations([*edges, upward, across]) == [
        "wscodec.protocol:1 imports wscodec.sync.server (up: core -> sync)",
        "wscodec.sync.connection:1 imports wscodec.events.loop (across: sync -> events)",
    ]
    back = Edge("wscodec.protocol", "wscodec.codec", 1, True)  # codec imports protocol
    cycles = import_cycles([*edges, back])
    assert any({"wscodec.codec", "wscodec.protocol"} <= set(cycle) for cycle in cycles)
    lazy = Edge("wscodec.protocol", "wscodec.codec", 1, False)  # inside a function
    assert import_cycles([*edges, lazy]) == []


def test_the_checks_read_an_upward_import_written_in_a_file(tmp_path, monkeypatch):
    """An import statement added to a core module's source is found and refused."""
    source = (PACKAGE / "protocol.py").read_text(encoding="utf-8")
    planted = tmp_path / "protocol.py"
    planted.write_text(source + "\nfrom .sync.server import serve\n", encoding="utf-8")
    modules = package_modules()
    known = set(modules) | {"wscodec._codec"}
    edges = [e for e in all_edges() if e.importer != "wscodec.protocol"]
    edges += imports_of("wscodec.protocol", planted, known)
    problems = layering_violations(edges)
    assert len(problems) == 1 and "imports wscodec.sync.server (up: core -> sync)" in problems[0]


# Documented names ----------------------------------------------------------------

_FROM_IMPORT = re.compile(r"^\s*(?:>>> )?from (wscodec[\w.]*) import ([\w, ()]+)$", re.M)
_DOTTED = re.compile(r"`(wscodec(?:\.\w+)+)")


# The documentation pages beside the README (docs/**/*.md): their names are checked too.
DOCS = README.parent / "docs"


def readme() -> str:
    """The README and every documentation page, as one text ("" in a wheel's test run)."""
    if not README.exists():
        return ""
    pages = sorted(DOCS.rglob("*.md")) if DOCS.is_dir() else []
    return "\n".join(path.read_text(encoding="utf-8") for path in [README, *pages])


def documented_imports() -> List[Tuple[str, str]]:
    """(module, name) for every ``from wscodec... import name`` in the README and docs."""
    text = readme()
    found = []
    for module, names in _FROM_IMPORT.findall(text):
        for name in names.replace("(", "").replace(")", "").split(","):
            name = name.strip().split(" as ")[0]
            if name:
                found.append((module, name))
    return sorted(set(found))


def documented_paths() -> List[str]:
    """Every `wscodec.x.y` the README and docs name in code spans or blocks."""
    text = readme()
    return sorted(set(_DOTTED.findall(text)))


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted``, then follow attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as error:
            if error.name and not ".".join(parts[:cut]).startswith(error.name):
                raise  # a dependency of the module is missing, not the module
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


@pytest.mark.skipif(not README.exists() or not DOCS.is_dir(), reason=NO_README + " (or docs/)")
def test_the_readme_documents_names_to_check():
    assert len(documented_imports()) >= 8
    assert len(documented_paths()) >= 10


@pytest.mark.parametrize("module, name", documented_imports())
def test_a_documented_import_works(module, name):
    if module == "wscodec.brokers.redis":
        pytest.importorskip("redis")
    if module.startswith("wscodec.asgi.uvicorn"):
        _need_uvicorn()
    resolve(f"{module}.{name}")


def _need_uvicorn() -> None:
    if sys.version_info < (3, 10):
        pytest.skip("uvicorn 0.50+, which wscodec.asgi.uvicorn targets, needs Python 3.10")


@pytest.mark.parametrize("dotted", documented_paths())
def test_a_documented_dotted_name_resolves(dotted):
    if dotted.startswith("wscodec.brokers.redis"):
        pytest.importorskip("redis")
    if dotted.startswith("wscodec.asgi.uvicorn"):
        _need_uvicorn()
    if dotted == "wscodec._codec" and wscodec.BACKEND != "cython":
        pytest.skip("the compiled module is not loaded on the fallback")
    resolve(dotted)


@pytest.mark.parametrize("name", wscodec.__all__)
def test_every_public_name_imports_from_the_top_level(name):
    namespace: Dict[str, object] = {}
    exec(f"from wscodec import {name}", namespace)
    assert namespace[name] is getattr(wscodec, name)


@pytest.mark.parametrize(
    "name",
    ["serve", "connect", "serve_events", "broadcast", "CallbackClient", "install"],
)
def test_the_flavours_entry_points_stay_at_the_top_level(name):
    assert callable(getattr(wscodec, name))
