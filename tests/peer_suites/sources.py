"""Where a peer suite's tests come from: the installed version's sdist, or a checkout.

The sdist is downloaded with pip (``pip download --no-deps --no-binary :all:``)
once per version into the cache directory (``$WSCODEC_PEER_SUITES_CACHE``,
default ``~/.cache/wscodec-peer-suites``) and extracted there; each run copies
the files the suite needs into a fresh staging directory.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterable, Optional, Tuple

__all__ = [
    "cache_dir",
    "checkout_commit",
    "download_sdist",
    "extract_sdist",
    "installed_version",
    "sdist_tree",
    "stage",
]


def cache_dir() -> Path:
    """The cache: sdists, their extracted trees and the staging directories."""
    default = Path.home() / ".cache" / "wscodec-peer-suites"
    path = Path(os.environ.get("WSCODEC_PEER_SUITES_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def installed_version(distribution: str) -> str:
    """The version of ``distribution`` in this interpreter, or SystemExit."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"{distribution} is not installed (pip install -e '.[peers]')") from None


def _normalised(distribution: str) -> str:
    return distribution.lower().replace("-", "_").replace(".", "_")


def download_sdist(distribution: str, version: str) -> Path:
    """The sdist of ``distribution==version``, downloaded by pip into the cache once."""
    where = cache_dir() / "sdists"
    where.mkdir(exist_ok=True)
    prefix = _normalised(f"{distribution}-{version}") + "_"
    found = [p for p in where.iterdir() if _normalised(p.name).startswith(prefix)]
    if not found:
        command = [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
            *("--no-binary", ":all:", "--dest", str(where), f"{distribution}=={version}"),
        ]
        print(f"   downloading the {distribution} {version} sdist", flush=True)
        subprocess.run(command, check=True)
        found = [p for p in where.iterdir() if _normalised(p.name).startswith(prefix)]
    archives = [p for p in found if p.name.endswith((".tar.gz", ".zip"))]
    if not archives:
        raise SystemExit(f"pip downloaded no sdist for {distribution}=={version}")
    return archives[0]


def extract_sdist(archive: Path) -> Path:
    """The sdist's top directory, extracted into the cache once."""
    where = cache_dir() / "trees"
    where.mkdir(exist_ok=True)
    name = archive.name.removesuffix(".tar.gz").removesuffix(".zip")
    tree = where / name
    if not tree.is_dir():
        partial = where / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        if archive.name.endswith(".zip"):
            shutil.unpack_archive(str(archive), str(partial))
        else:
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(partial, filter="data")
                else:  # Python < 3.12 without the backported filter
                    tar.extractall(partial)  # a PyPI sdist of a pinned version
        (top,) = list(partial.iterdir())
        top.rename(tree)
        partial.rmdir()
    return tree


def sdist_tree(distribution: str, version: str) -> Path:
    """The extracted sdist of the installed version."""
    return extract_sdist(download_sdist(distribution, version))


def checkout_commit(path: Path) -> Optional[str]:
    """The commit a checkout is at (None if ``path`` is not a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def stage(
    source: Path, name: str, copies: Iterable[Tuple[str, str]], ini: str, conftest: str = ""
) -> Path:
    """A fresh staging directory with the suite's files, its ``pytest.ini`` and ``conftest.py``."""
    target = cache_dir() / "stage" / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for inside, outside in copies:
        src = source / inside
        dst = target / outside
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, dst)
        else:
            raise SystemExit(f"{inside} is not in {source}: not the tree this suite expects")
    (target / "pytest.ini").write_text(ini)
    if conftest:
        (target / "conftest.py").write_text(conftest)
    return target
