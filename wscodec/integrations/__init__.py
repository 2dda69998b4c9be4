"""Make wscodec the fast backend of other WebSocket libraries.

Each supported library has a module here, ``wscodec.integrations.<name>``,
with ``install()`` and ``uninstall()``; :func:`install` installs several at
once and :func:`autopatch` does it from the ``WSCODEC_AUTOPATCH`` environment
variable. Nothing is patched on import: importing wscodec never imports a
peer library.

Here: one adapter module per library, and the patching they share.
May import the sans-I/O core only (the codec); never a flavour, the CLI or the demo.

====================  =========================================================
name                  library
====================  =========================================================
``websockets``        websockets (frame parse/serialise, masking)
``wsproto``           wsproto, and simple-websocket / flask-sock on top of it
``websocket_client``  websocket-client (masking, UTF-8, frame parse/serialise)
``tornado``           tornado (masking)
``aiohttp``           aiohttp (masking on send)
``autobahn``          autobahn (masking, UTF-8)
``ws4py``             ws4py (masking, UTF-8)
====================  =========================================================
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Dict, List, Optional

from ._patching import Adapter, IntegrationError

__all__ = ["ADAPTERS", "IntegrationError", "adapter", "autopatch", "install", "uninstall"]

#: Adapter name -> the top-level module of the peer it patches.
ADAPTERS: Dict[str, str] = {
    "websockets": "websockets",
    "wsproto": "wsproto",
    "websocket_client": "websocket",
    "tornado": "tornado",
    "aiohttp": "aiohttp",
    "autobahn": "autobahn",
    "ws4py": "ws4py",
}

_ALIASES = {"websocket-client": "websocket_client", "websocket": "websocket_client"}


def _canonical(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ADAPTERS:
        raise ValueError(f"no wscodec adapter for {name!r}; known: {', '.join(ADAPTERS)}")
    return key


def adapter(name: str) -> Adapter:
    """The :class:`~wscodec.integrations._patching.Adapter` of one library."""
    module = importlib.import_module(f"{__name__}.{_canonical(name)}")
    result: Adapter = module.ADAPTER
    return result


def _importable(name: str) -> bool:
    return importlib.util.find_spec(ADAPTERS[name]) is not None


def install(*libs: str, force: bool = False) -> List[str]:
    """Install the adapters of ``libs`` (all importable peers when none given).

    Returns the names of the adapters this call patched (already installed
    ones are not repeated). Naming a library that is not installed, or whose
    version or layout the adapter does not support, raises
    :class:`IntegrationError`; with no names, peers that are not importable
    are skipped but a present peer that cannot be patched still raises.
    """
    names = [_canonical(lib) for lib in libs] if libs else [n for n in ADAPTERS if _importable(n)]
    patched = []
    for name in names:
        if not _importable(name):
            raise IntegrationError(f"{name}: the module {ADAPTERS[name]!r} is not importable")
        if adapter(name).install(force=force):
            patched.append(name)
    return patched


def uninstall(*libs: str) -> List[str]:
    """Uninstall the adapters of ``libs`` (every installed one when none given)."""
    names = [_canonical(lib) for lib in libs] if libs else list(ADAPTERS)
    restored = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        if module.ADAPTER.uninstall():
            restored.append(name)
    return restored


def autopatch(value: Optional[str] = None) -> List[str]:
    """Install the adapters named in ``WSCODEC_AUTOPATCH`` (or in ``value``).

    The variable is a comma-separated list of adapter names, or ``all`` for
    every importable peer; unset or empty patches nothing. Call this once at
    start-up (for example at the top of your ``main`` or in ``sitecustomize``):
    wscodec installs no ``.pth`` hook, so nothing happens unless you call it.
    Returns what was patched.
    """
    if value is None:
        value = os.environ.get("WSCODEC_AUTOPATCH", "")
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        return []
    if any(name.lower() == "all" for name in names):
        return install()
    return install(*names)
