"""wscodec inside aiohttp: masking on send.

Patched: ``aiohttp._websocket.writer.websocket_mask(mask, data)``, which masks
a client's outgoing payload in place (a ``bytearray``), on
:func:`wscodec.apply_mask_into`.

Not replaced: the reader. aiohttp's compiled ``WebSocketReader`` binds its
mask function at C level, so receiving could only change by swapping
``WebSocketReader`` and ``WebSocketDataQueue`` together at every import site.
``benchmarks/adapters.py`` measures aiohttp's compiled reader against
wscodec's bare ``FrameParser`` (a lower bound on any replacement's cost, which
would still have to assemble messages in Python): see the adapters page of
the documentation (docs/adapters/) for the figures and the decision.
"""

from __future__ import annotations

from typing import Any, Callable, List

from .._backend import codec
from ._patching import Adapter, Patch

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    return [Patch("aiohttp._websocket.writer", "websocket_mask", _make_mask)]


ADAPTER = Adapter("aiohttp", "aiohttp", ("3.12", "4"), _patches)
_calls = ADAPTER.calls


def _make_mask(original: Any) -> Callable[[bytes, bytearray], None]:
    apply_mask_into = codec.apply_mask_into

    def websocket_mask(mask: bytes, data: bytearray) -> None:
        """aiohttp's ``websocket_mask(mask, data)``: XOR ``data`` in place."""
        _calls["websocket_mask"] += 1
        apply_mask_into(data, mask)

    return websocket_mask


def install(*, force: bool = False) -> bool:
    """Patch aiohttp; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore aiohttp's original; False if not patched."""
    return ADAPTER.uninstall()
