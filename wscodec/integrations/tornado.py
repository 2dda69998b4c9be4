"""wscodec inside tornado: masking and frame writing.

Patched: ``tornado.websocket._websocket_mask(mask, data)``, the name
``tornado.websocket`` imported from ``tornado.util`` and calls for every
frame it masks (client side) or unmasks (server side), with read-only bytes;
and ``WebSocketProtocol13._write_frame``, which builds each outgoing frame
with one :func:`wscodec.encode_frame` call instead of three concatenations
(``wscodec/integrations/_tornado_frames.py``). tornado's frame parsing is
interleaved with its IOStream reads and is not replaced.
"""

from __future__ import annotations

from typing import Any, Callable, List

from .._backend import codec
from ._patching import Adapter, Patch
from ._tornado_frames import make_write_frame

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    write_frame = "WebSocketProtocol13._write_frame"
    return [
        Patch("tornado.websocket", "_websocket_mask", _make_mask),
        Patch(
            "tornado.websocket",
            write_frame,
            lambda original: make_write_frame(original, _calls, write_frame),
        ),
    ]


ADAPTER = Adapter("tornado", "tornado", ("6.4", "7"), _patches)
_calls = ADAPTER.calls


def _make_mask(original: Any) -> Callable[[bytes, bytes], bytes]:
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def _websocket_mask(mask: bytes, data: bytes) -> bytes:
        """tornado's ``_websocket_mask(mask, data)`` on wscodec's kernel."""
        _calls["_websocket_mask"] += 1
        return apply_mask(data, mask)

    return _websocket_mask


def install(*, force: bool = False) -> bool:
    """Patch tornado; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore tornado's original; False if not patched."""
    return ADAPTER.uninstall()
