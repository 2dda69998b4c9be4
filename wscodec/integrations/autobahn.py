"""wscodec inside autobahn: masking and UTF-8 validation.

Patched in ``autobahn.websocket.protocol``, where autobahn looks them up:

* ``create_xor_masker(mask, length=None)``: a masker with autobahn's
  ``process`` / ``pointer`` / ``reset`` contract (the position carries across
  calls), on :func:`wscodec.apply_mask_into`;
* ``Utf8Validator``: ``validate(buf)`` returns ``(valid, ends_on_codepoint,
  consumed_now, consumed_total)`` like autobahn's, on wscodec's incremental
  validator. autobahn makes one per connection, so connections opened before
  ``install()`` keep the validator they have;
* ``WebSocketProtocol.sendFrame``: the frame in one :func:`wscodec.encode_frame`
  call instead of a masked copy joined behind the header
  (``wscodec/integrations/_autobahn_frames.py``).
"""

from __future__ import annotations

from typing import Any, Callable, List

from ._autobahn_frames import make_send_frame
from ._compat import QuadUtf8Validator, StatefulMasker
from ._patching import Adapter, Patch

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    module = "autobahn.websocket.protocol"
    send_frame = "WebSocketProtocol.sendFrame"
    return [
        Patch(module, "create_xor_masker", _make_create),
        Patch(module, "Utf8Validator", _make_validator),
        Patch(module, send_frame, lambda original: make_send_frame(original, _calls, send_frame)),
    ]


ADAPTER = Adapter("autobahn", "autobahn", ("26.0", "27"), _patches)
_calls = ADAPTER.calls


def _make_create(original: Any) -> Callable[..., Any]:
    def create_xor_masker(mask: Any, length: Any = None) -> StatefulMasker:
        """autobahn's masker factory on wscodec's kernel."""
        _calls["create_xor_masker"] += 1
        return StatefulMasker(mask)

    return create_xor_masker


def _make_validator(original: Any) -> type:
    class Utf8Validator(QuadUtf8Validator):
        """autobahn's incremental validator contract on wscodec's kernel."""

        __slots__ = ()

        def validate(self, ba: Any) -> Any:
            _calls["Utf8Validator"] += 1
            return super().validate(ba)

    Utf8Validator.__module__ = __name__
    return Utf8Validator


def install(*, force: bool = False) -> bool:
    """Patch autobahn; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore autobahn's originals; False if not patched."""
    return ADAPTER.uninstall()
