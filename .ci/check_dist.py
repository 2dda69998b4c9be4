"""Checks behind .ci/wheels: the cibuildwheel matrix, the contents of the sdist
and of the wheels, and running the configured cibuildwheel commands here.

Each subcommand prints what it found and exits non-zero on the first mismatch.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tools venv may run on 3.9/3.10
    import tomli as tomllib

NAME = "wscodec"
PYTHONS = ["cp39", "cp310", "cp311", "cp312", "cp313", "cp314", "cp314t"]
PLATFORMS = {
    "linux": ["manylinux_x86_64", "manylinux_aarch64", "musllinux_x86_64"],
    "macos": ["macosx_x86_64", "macosx_arm64"],
    "windows": ["win_amd64", "win_arm64"],
}
STATIC = ("*.html", "*.js", "*.css")


class Mismatch(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def config(root: Path) -> dict[str, Any]:
    with open(root / "pyproject.toml", "rb") as file:
        options: dict[str, Any] = tomllib.load(file)["tool"]["cibuildwheel"]
    return options


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def git_files(root: Path) -> list[str]:
    """The source tree's files (tracked or not, minus ignored ones)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(path for path in out.splitlines() if (root / path).is_file())


def static_files(files: list[str]) -> list[str]:
    """The demo's static files in the source tree (none until the demo lands)."""
    prefix = f"{NAME}/demo/static/"
    return [p for p in files if p.startswith(prefix) and any(fnmatch(p, s) for s in STATIC)]


def compiled_modules(root: Path) -> list[str]:
    """The compiled modules' dotted names: the codec and each twin of
    ``TWINS`` in wscodec/_backend.py (what setup.py builds)."""
    tree = ast.parse((root / NAME / "_backend.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TWINS":
            return [f"{NAME}._codec", *ast.literal_eval(node.value).values()]
    raise SystemExit(f"FAIL: no TWINS in {NAME}/_backend.py")


def package_files(files: list[str]) -> set[str]:
    """What the wheel must carry from the source tree, compiled module aside."""
    wanted = {p for p in files if p.startswith(f"{NAME}/") and p.endswith((".py", ".pyi"))}
    wanted.add(f"{NAME}/py.typed")
    wanted.update(static_files(files))
    return wanted


# Subcommands -------------------------------------------------------------------


def identifiers(args: argparse.Namespace) -> None:
    total = 0
    for platform, listing in zip(("linux", "macos", "windows"), args.listings):
        found = Path(listing).read_text().split()
        expected = [f"{py}-{tag}" for tag in PLATFORMS[platform] for py in PYTHONS]
        check(len(found) == len(set(found)), f"{platform}: duplicate identifiers: {found}")
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        check(not missing and not extra, f"{platform}: missing {missing}, unexpected {extra}")
        print(f"  {platform}: {len(found)} builds ({', '.join(PLATFORMS[platform])})")
        total += len(found)
    print(f"  total: {total} builds, CPython 3.9-3.14 + 3.14t on each")


def freethreading(args: argparse.Namespace) -> None:
    source = Path(args.c_file).read_text()
    # Cython's default for a module declared freethreading_compatible: the
    # module slot says it does not need the GIL.
    check(
        re.search(
            r"#else\s*#define __Pyx_FREETHREADING_COMPATIBLE Py_MOD_GIL_NOT_USED\s*#endif", source
        )
        is not None,
        "the generated C does not declare Py_MOD_GIL_NOT_USED",
    )
    check("{Py_mod_gil, __Pyx_FREETHREADING_COMPATIBLE}" in source, "no Py_mod_gil slot")
    print("  the generated C declares Py_mod_gil = Py_MOD_GIL_NOT_USED")


def sdist(args: argparse.Namespace) -> None:
    root = Path(args.root)
    files = git_files(root)
    path = Path(args.sdist)
    with tarfile.open(path) as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
    top = f"{NAME}-{args.version}/"
    check(all(n.startswith(top) for n in names), f"entries outside {top}")
    inside = {n[len(top) :] for n in names}
    needed = {
        "pyproject.toml",
        "setup.py",
        "README.md",
        "MANIFEST.in",
        "PKG-INFO",
    }
    needed.update(p for p in files if p.startswith("src/") and p.endswith((".pyx", ".pxd", ".h")))
    needed.update(p for p in files if p.startswith("tests/") and p.endswith((".py", ".c")))
    needed.update(package_files(files))
    missing = sorted(needed - inside)
    check(not missing, f"sdist lacks {missing}")
    leftovers = sorted(
        n
        for n in inside
        if (
            n.endswith((".c", ".so", ".pyd", ".pyc", ".o", ".html"))
            and not any(fnmatch(n, f"{NAME}/demo/static/{s}") for s in STATIC)
            and n not in files  # tracked sources, e.g. the tests' C harness
        )
        or n.startswith(("build/", "dist/", ".venv"))
        or "__pycache__" in n
    )
    check(not leftovers, f"sdist carries build leftovers: {leftovers}")
    sources = sorted(n for n in inside if n.startswith("src/"))
    print(f"  {path.name}: {path.stat().st_size} bytes, {len(inside)} files")
    print(f"  Cython sources and headers: {', '.join(sources)}")
    print(f"  tests: {len([n for n in inside if n.startswith('tests/')])} files")


def wheel(args: argparse.Namespace) -> None:
    root = Path(args.root)
    files = git_files(root)
    path = Path(args.wheel)
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        wheel_meta = archive.read(f"{NAME}-{args.version}.dist-info/WHEEL").decode()
    dist_info = f"{NAME}-{args.version}.dist-info/"
    payload = {n for n in names if not n.startswith(dist_info)}
    meta = {n[len(dist_info) :] for n in names if n.startswith(dist_info)}
    expected = package_files(files)
    modules = "|".join(re.escape(m.replace(".", "/")) for m in compiled_modules(root))
    compiled = sorted(n for n in payload if re.fullmatch(rf"(?:{modules})\..+\.(so|pyd)", n))
    if args.kind == "compiled":
        check(
            re.fullmatch(rf"{NAME}-{args.version}-cp3\d+-cp3\d+t?-.+\.whl", path.name) is not None,
            f"not a CPython-specific wheel name: {path.name}",
        )
        wanted = len(compiled_modules(root))
        check(len(compiled) == wanted, f"expected {wanted} compiled modules, found {compiled}")
        check("Root-Is-Purelib: false" in wheel_meta, "a compiled wheel must be platlib")
        expected.update(compiled)
    else:
        check(
            path.name == f"{NAME}-{args.version}-py3-none-any.whl",
            f"the pure wheel is tagged {path.name}, not py3-none-any",
        )
        check(not compiled, f"the pure wheel carries compiled modules: {compiled}")
        check("Root-Is-Purelib: true" in wheel_meta, "the pure wheel must be purelib")
        check("Tag: py3-none-any" in wheel_meta, "WHEEL metadata lacks Tag: py3-none-any")
        expected.add(f"{NAME}/_build_note.txt")
    missing = sorted(expected - payload)
    unexpected = sorted(payload - expected)
    check(not missing, f"the wheel lacks {missing}")
    check(not unexpected, f"the wheel carries files it does not need: {unexpected}")
    check(
        {"METADATA", "WHEEL", "RECORD", "entry_points.txt"} <= meta,
        f"incomplete dist-info: {sorted(meta)}",
    )
    check(not any(n.startswith(f"{NAME}.libs/") for n in names), "libraries were grafted in")
    statics = static_files(files)
    size = path.stat().st_size
    print(f"  {path.name}: {size} bytes, {len(names)} files")
    with zipfile.ZipFile(path) as archive:
        for name in sorted(payload):
            print(f"    {archive.getinfo(name).file_size:>8}  {name}")
    print(f"    dist-info: {', '.join(sorted(meta))}")
    print(
        f"  demo static files: {len(statics)} in the source tree, all in the wheel"
        if statics
        else "  demo static files: none in the source tree yet (package-data patterns ready)"
    )


def repair(args: argparse.Namespace) -> None:
    """Run the configured Linux repair-wheel-command on a wheel."""
    root = Path(args.root)
    command = config(root)["linux"]["repair-wheel-command"]
    command = command.format(wheel=shlex.quote(args.wheel), dest_dir=shlex.quote(args.dest))
    print(f"  $ {command}")
    subprocess.run(command, shell=True, check=True)


def run_tests(args: argparse.Namespace) -> None:
    """Run cibuildwheel's configured test step against a venv with the wheel installed:
    test-sources copied into a scratch directory, test-environment set, each
    test-command run there by the shell."""
    root = Path(args.root)
    options = config(root)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=False)
    for source in as_list(options.get("test-sources", [])):
        check("{" not in source, f"placeholders are not supported here: {source}")
        target = workdir / source
        if (root / source).is_dir():
            shutil.copytree(root / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(root / source, target)
    venv = Path(args.venv).resolve()
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONPATH", None)
    env.update(options.get("test-environment", {}))
    where = subprocess.run(
        ["python", "-c", "import wscodec; print(wscodec.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    check(where.startswith(str(venv)), f"wscodec imported from {where}, not the venv")
    print(f"  wscodec imported from {where}")
    commands = as_list(options["test-command"])
    output = []
    for command in commands:
        check("{" not in command, f"placeholders are not supported here: {command}")
        print(f"  $ {command}", flush=True)
        result = subprocess.run(
            command, shell=True, cwd=workdir, env=env, capture_output=True, text=True
        )
        sys.stdout.write(result.stdout[-3000:])
        sys.stderr.write(result.stderr[-3000:])
        check(result.returncode == 0, f"test command failed ({result.returncode}): {command}")
        output.append(result.stdout)
    summary = [line for line in output[-1].splitlines() if " passed" in line]
    check(bool(summary), "no pytest summary line")
    # Skips are allowed only for the peer libraries of the adapter tests (the
    # wheel venv installs the test extra, not the peers extra); nothing fails.
    check("failed" not in summary[-1], f"the compiled wheel's suite failed: {summary[-1]}")


def pin(args: argparse.Namespace) -> None:
    tools = Path(args.requirements).read_text()
    workflow = Path(args.workflow).read_text()
    found = re.search(r"^cibuildwheel==(\S+)", tools, re.M)
    check(found is not None, "no cibuildwheel pin in the tool requirements")
    assert found is not None
    check(
        f"cibuildwheel=={found.group(1)}" in workflow,
        f"{args.workflow} does not use cibuildwheel=={found.group(1)}",
    )
    print(f"  cibuildwheel=={found.group(1)} here and in {Path(args.workflow).name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("identifiers")
    sub.add_argument("listings", nargs=3, help="linux, macos and windows listings")
    sub.set_defaults(run=identifiers)
    sub = commands.add_parser("freethreading")
    sub.add_argument("c_file")
    sub.set_defaults(run=freethreading)
    sub = commands.add_parser("sdist")
    sub.add_argument("root")
    sub.add_argument("sdist")
    sub.add_argument("version")
    sub.set_defaults(run=sdist)
    sub = commands.add_parser("wheel")
    sub.add_argument("root")
    sub.add_argument("wheel")
    sub.add_argument("version")
    sub.add_argument("kind", choices=["compiled", "pure"])
    sub.set_defaults(run=wheel)
    sub = commands.add_parser("repair")
    sub.add_argument("root")
    sub.add_argument("wheel")
    sub.add_argument("dest")
    sub.set_defaults(run=repair)
    sub = commands.add_parser("run-tests")
    sub.add_argument("root")
    sub.add_argument("venv")
    sub.add_argument("workdir")
    sub.set_defaults(run=run_tests)
    sub = commands.add_parser("pin")
    sub.add_argument("requirements")
    sub.add_argument("workflow")
    sub.set_defaults(run=pin)
    args = parser.parse_args()
    try:
        args.run(args)
    except Mismatch as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
