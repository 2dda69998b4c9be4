"""wscodec inside websocket-client: masking, UTF-8 validation, frame serialising.

Patched in ``websocket._abnf``, where websocket-client looks them up:

* ``_mask(mask, data)`` (called with ``array('B')`` arguments) and the static
  ``ABNF.mask(mask_key, data)`` (str or bytes), both on
  :func:`wscodec.apply_mask`;
* ``validate_utf8`` (the name ``_abnf`` imported from ``websocket._utils``) on
  :func:`wscodec.validate_utf8`: websocket-client's fallback is a Python DFA
  loop over every byte;
* ``ABNF.format``: websocket-client's own argument checks, then
  :func:`wscodec.encode_frame` for the header and masking (its own method for
  the odd cases it allows and wscodec does not encode: control frames over
  125 bytes or fragmented, str payloads, a non-bytes mask key).

Not patched: ``frame_buffer.recv_frame``. Its payload unmasking goes through
``ABNF.mask`` (patched); the rest of its time is socket reads.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, List

from .._backend import codec
from ._patching import Adapter, Patch

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    module = "websocket._abnf"
    return [
        Patch(module, "_mask", _make_mask),
        Patch(module, "ABNF.mask", _make_abnf_mask),
        Patch(module, "validate_utf8", _make_validate_utf8),
        Patch(module, "ABNF.format", _make_format),
    ]


ADAPTER = Adapter("websocket_client", "websocket-client", ("1.9", "2"), _patches)
_calls = ADAPTER.calls


def _make_mask(original: Any) -> Callable[[Any, Any], bytes]:
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def _mask(mask_value: Any, data_value: Any) -> bytes:
        """websocket-client's ``_mask(mask, data)`` on wscodec's kernel."""
        _calls["_mask"] += 1
        return apply_mask(data_value, mask_value)

    return _mask


def _make_abnf_mask(original: Any) -> staticmethod:  # type: ignore[type-arg]
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def mask(mask_key: Any, data: Any) -> bytes:
        """``ABNF.mask``: str arguments are taken as latin-1, like websocket-client."""
        _calls["ABNF.mask"] += 1
        if data is None:
            data = b""
        if isinstance(mask_key, str):
            mask_key = mask_key.encode("latin-1")
        if isinstance(data, str):
            data = data.encode("latin-1")
        return apply_mask(data, mask_key)

    return staticmethod(mask)


def _make_validate_utf8(original: Any) -> Callable[[Any], bool]:
    validate_utf8: Callable[[Any], bool] = codec.validate_utf8

    def validate(utfbytes: Any) -> bool:
        """websocket-client's ``validate_utf8`` (str is encoded with surrogatepass first)."""
        _calls["validate_utf8"] += 1
        if isinstance(utfbytes, str):
            utfbytes = utfbytes.encode("utf-8", "surrogatepass")
        return validate_utf8(utfbytes)

    return validate


def _make_format(original: Any) -> Callable[[Any], bytes]:
    abnf = importlib.import_module("websocket._abnf").ABNF
    opcodes = frozenset(abnf.OPCODES)
    encode_frame: Callable[..., bytes] = codec.encode_frame

    def format(self: Any) -> bytes:
        """``ABNF.format`` with wscodec's encoder; the same checks and errors."""
        _calls["ABNF.format"] += 1
        fin = self.fin
        rsv1, rsv2, rsv3 = self.rsv1, self.rsv2, self.rsv3
        if any(x not in (0, 1) for x in (fin, rsv1, rsv2, rsv3)):
            raise ValueError("not 0 or 1")
        opcode = self.opcode
        if opcode not in opcodes:
            raise ValueError("Invalid OPCODE")
        data = self.data
        if (
            isinstance(data, str)
            or self.mask_value not in (0, 1)
            or (opcode >= 8 and (not fin or len(data) > 125))
        ):
            return original(self)  # type: ignore[no-any-return]
        if len(data) >= 1 << 63:
            raise ValueError("data is too long")
        key = None
        if self.mask_value:
            key = self.get_mask_key(4)
            if not isinstance(key, (bytes, bytearray)) or len(key) != 4:
                # A str or odd key: websocket-client's own masking after our header.
                framed = encode_frame(
                    opcode,
                    data,
                    fin=bool(fin),
                    mask=b"\0\0\0\0",
                    rsv1=bool(rsv1),
                    rsv2=bool(rsv2),
                    rsv3=bool(rsv3),
                )
                header = framed[: len(framed) - len(data) - 4]
                return header + self._get_masked(key)  # type: ignore[no-any-return]
        return encode_frame(
            opcode, data, fin=bool(fin), mask=key, rsv1=bool(rsv1), rsv2=bool(rsv2), rsv3=bool(rsv3)
        )

    return format


def install(*, force: bool = False) -> bool:
    """Patch websocket-client; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore websocket-client's originals; False if not patched."""
    return ADAPTER.uninstall()
