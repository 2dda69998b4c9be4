"""The one patch/restore mechanism that every adapter uses.

An adapter declares a table of :class:`Patch` entries: *where* a name is
looked up at call time (``module`` and a dotted ``target`` such as
``"apply_mask"`` or ``"Frame.parse"``) and a ``factory`` that builds the
replacement from the original. :class:`Adapter` then does the rest, under one
process-wide lock:

* :meth:`Adapter.install` imports the peer, checks its version against the
  range the adapter was tested with, resolves *every* target before touching
  anything (a moved attribute raises :class:`IntegrationError` and leaves the
  peer untouched), then swaps the replacements in. Installing twice is a no-op.
* :meth:`Adapter.uninstall` puts back the exact objects that were there (the
  raw ``__dict__`` entries, so ``classmethod``/``staticmethod`` wrappers come
  back as the very same objects).

Patching happens where a name is *used*: ``from x import y`` copies a name into
the using module, and that copy is what the peer looks up at each call.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["LOCK", "Adapter", "IntegrationError", "Patch", "parse_version"]

#: One lock for every adapter: installs and uninstalls never interleave.
LOCK = threading.RLock()


class IntegrationError(RuntimeError):
    """An adapter cannot be installed: the peer is missing, untested or has moved."""


def parse_version(text: str) -> Tuple[int, ...]:
    """The leading numeric release of a version string: ``"17.4rc1"`` -> ``(17, 4)``."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(0).split("."))


@dataclass(frozen=True)
class Patch:
    """Replace ``module.target`` with ``factory(original)`` while installed.

    ``target`` is an attribute of the module (``"apply_mask"``) or of a class
    in it (``"Frame.parse"``); ``original`` is the raw object found there (for
    class attributes, the ``__dict__`` entry: a ``classmethod`` stays one).
    """

    module: str
    target: str
    factory: Callable[[Any], Any]


@dataclass
class _Applied:
    owner: Any
    name: str
    original: Any
    replacement: Any


@dataclass
class Adapter:
    """A peer library's patch table, with install/uninstall and call counters.

    :param name: the adapter's name (``"websockets"``), used by the registry.
    :param distribution: the peer's distribution name on PyPI, for its version.
    :param tested: ``(lowest, below)``: versions ``lowest <= v < below`` are
        the ones the adapter was tested with; others are refused.
    :param patches: builds the patch table (called at install time, so an
        adapter module imports nothing from its peer at import time).
    """

    name: str
    distribution: str
    tested: Tuple[str, str]
    patches: Callable[[], List[Patch]]
    #: How many times each replacement ran since install (the proof that our
    #: kernels are the ones in use); keys are the patch targets.
    calls: Dict[str, int] = field(default_factory=dict)
    _applied: List[_Applied] = field(default_factory=list)

    @property
    def installed(self) -> bool:
        """Whether the patches are in place."""
        return bool(self._applied)

    def version(self) -> str:
        """The installed peer's version, or :class:`IntegrationError`."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise IntegrationError(f"{self.distribution} is not installed") from None

    def check_version(self) -> str:
        """The peer's version if it is in the tested range; :class:`IntegrationError` otherwise."""
        version = self.version()
        low, high = (parse_version(bound) for bound in self.tested)
        if not low <= parse_version(version) < high:
            raise IntegrationError(
                f"wscodec's {self.name} adapter is tested with {self.distribution} "
                f">={self.tested[0]},<{self.tested[1]}, not {version}; "
                "pass force=True to install it anyway"
            )
        return version

    def install(self, *, force: bool = False) -> bool:
        """Swap the replacements in; False if already installed.

        Raises :class:`IntegrationError`, with the peer untouched, if the peer
        is missing, its version is outside the tested range (unless ``force``)
        or any attribute the adapter needs is not where it expects it.
        """
        with LOCK:
            if self._applied:
                return False
            if not force:
                self.check_version()
            resolved: List[Tuple[Any, str, Any, Patch]] = []
            missing: List[str] = []
            for patch in self.patches():
                try:
                    module = importlib.import_module(patch.module)
                except ImportError as error:
                    missing.append(f"{patch.module} (does not import: {error})")
                    continue
                owner, name, original = _resolve(module, patch.target)
                if owner is None:
                    missing.append(f"{patch.module}.{patch.target}")
                    continue
                resolved.append((owner, name, original, patch))
            if missing:
                raise IntegrationError(
                    f"cannot install wscodec's {self.name} adapter on "
                    f"{self.distribution} {self.version()}: not found where expected: "
                    + ", ".join(missing)
                )
            self.calls.clear()
            for key in {patch.target for _, _, _, patch in resolved}:
                self.calls[key] = 0
            applied: List[_Applied] = []
            try:
                for owner, name, original, patch in resolved:
                    replacement = patch.factory(original)
                    setattr(owner, name, replacement)
                    applied.append(_Applied(owner, name, original, replacement))
            except BaseException:
                for entry in reversed(applied):
                    setattr(entry.owner, entry.name, entry.original)
                raise
            self._applied = applied
            return True

    def uninstall(self) -> bool:
        """Restore every original object exactly; False if not installed."""
        with LOCK:
            if not self._applied:
                return False
            for entry in reversed(self._applied):
                setattr(entry.owner, entry.name, entry.original)
            self._applied = []
            return True

    def originals(self) -> Dict[str, Any]:
        """``{"module.target": original}`` for what is currently replaced."""
        with LOCK:
            return {_label(e.owner, e.name): e.original for e in self._applied}


def _label(owner: Any, name: str) -> str:
    if isinstance(owner, ModuleType):
        return f"{owner.__name__}.{name}"
    return f"{owner.__module__}.{owner.__qualname__}.{name}"


def _resolve(module: ModuleType, target: str) -> Tuple[Optional[Any], str, Any]:
    """``(owner, name, raw original)`` for a dotted target, or ``(None, name, None)``."""
    *path, name = target.split(".")
    owner: Any = module
    for part in path:
        owner = vars(owner).get(part) if hasattr(owner, "__dict__") else None
        if owner is None:
            return None, name, None
    namespace = vars(owner)
    if name not in namespace:
        return None, name, None
    return owner, name, namespace[name]
