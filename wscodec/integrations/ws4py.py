"""wscodec inside ws4py: masking and UTF-8 validation.

Patched:

* ``ws4py.framing.Frame.mask`` and ``Frame.unmask`` (``unmask = mask`` was
  bound when the class was created, so both names are replaced), on
  :func:`wscodec.apply_mask_into`; like ws4py's they return a ``bytearray``;
* ``ws4py.streaming.Utf8Validator`` (the name the stream uses): the
  ``validate(chunk)`` quad on wscodec's incremental validator. ws4py reads
  only its first two items.
"""

from __future__ import annotations

from typing import Any, Callable, List

from .._backend import codec
from ._compat import QuadUtf8Validator
from ._patching import Adapter, Patch

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    return [
        Patch("ws4py.framing", "Frame.mask", _make_mask("Frame.mask")),
        Patch("ws4py.framing", "Frame.unmask", _make_mask("Frame.unmask")),
        Patch("ws4py.streaming", "Utf8Validator", _make_validator),
    ]


ADAPTER = Adapter("ws4py", "ws4py", ("0.6", "0.7"), _patches)
_calls = ADAPTER.calls


def _make_mask(key: str) -> Callable[[Any], Callable[[Any, Any], bytearray]]:
    apply_mask_into = codec.apply_mask_into

    def factory(original: Any) -> Callable[[Any, Any], bytearray]:
        def mask(self: Any, data: Any) -> bytearray:
            """ws4py's ``Frame.mask``: XOR with ``self.masking_key``, a new bytearray."""
            _calls[key] += 1
            masking_key = self.masking_key
            # ws4py reads only the first four bytes of the key: its parser
            # leaves payload bytes after them when the key arrives in pieces.
            # A shorter key (or none) takes ws4py's own path, and its error.
            if not isinstance(masking_key, (bytes, bytearray)) or len(masking_key) < 4:
                return original(self, data)  # type: ignore[no-any-return]
            out = bytearray(data)
            if out:
                apply_mask_into(out, masking_key[:4])
            return out

        return mask

    return factory


def _make_validator(original: Any) -> type:
    class Utf8Validator(QuadUtf8Validator):
        """ws4py's incremental validator contract on wscodec's kernel."""

        __slots__ = ()

        def validate(self, ba: Any) -> Any:
            _calls["Utf8Validator"] += 1
            return super().validate(ba)

    Utf8Validator.__module__ = __name__
    return Utf8Validator


def install(*, force: bool = False) -> bool:
    """Patch ws4py; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore ws4py's originals; False if not patched."""
    return ADAPTER.uninstall()
