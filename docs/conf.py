"""Sphinx configuration of the wscodec documentation (``bash .ci/docs`` builds it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wscodec  # noqa: E402

project = "wscodec"
author = "wscodec developers"
copyright = "wscodec developers"
release = wscodec.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "check_links.py"]
myst_enable_extensions = ["colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3


def _recorded_run(kind: str) -> str:
    """Machine and date of the last recorded benchmark run (benchmarks/results/)."""
    import json

    path = ROOT / "benchmarks" / "results" / f"{kind}.json"
    if not path.exists():
        return "no recorded run"
    report = json.loads(path.read_text(encoding="utf-8"))
    info = report["machine"]
    kernels = info.get("kernels") or {}
    simd = ", ".join(f"{name} {level}" for name, level in kernels.items()) or "none"
    return (
        f"{report.get('recorded', 'date not recorded')}; CPU: {info['cpu']}; "
        f"{info['platform']}; Python {info['python']}; kernels: {simd}"
    )


myst_substitutions = {
    "codec_run": _recorded_run("codec"),
    "server_run": _recorded_run("server"),
}

html_theme = "furo"
html_title = f"wscodec {release}"
html_static_path = ["_static"]

# The API reference: signatures with their type hints, members in source order.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True
# Inherited docstrings come from the standard library, with references into its docs.
autodoc_inherit_docstrings = False

# Warnings are errors (-W) and every cross-reference must resolve (-n), so a
# renamed or removed wscodec name breaks the build. Names outside wscodec
# (the standard library, peers) have no inventory offline: they are not checked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!wscodec\b).*"),
    # Private helpers (a leading underscore) and type variables are not documented.
    (r"py:.*", r"wscodec\..*\._\w+(\..*)?"),
    (r"py:.*", r"wscodec\.keepalive\.Waiter"),
]


def resolve_public_alias(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """``wscodec.serve`` and the other top-level names link to where they are defined."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("wscodec."):
        return None
    parts = target.split(".")
    obj: object = wscodec
    try:
        for part in parts[1:]:
            obj = getattr(obj, part)
    except AttributeError:
        return None
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or f"{module}.{qualname}" == target:
        return None
    if module == "wscodec._codec":  # the compiled twin: documented as wscodec.codec
        module = "wscodec.codec"
    domain = env.get_domain("py")
    node["reftarget"] = f"{module}.{qualname}"
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], node, contnode
    )


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", resolve_public_alias)


def _git_version() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h, %cs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


html_context = {"commit": _git_version()}
