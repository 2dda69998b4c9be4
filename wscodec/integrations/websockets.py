"""wscodec inside websockets: frame parsing, serialising and masking.

Patched (where websockets looks them up at call time):

* ``websockets.frames.apply_mask``, and ``websockets.legacy.framing.apply_mask``
  when the application has imported the (deprecated) legacy module;
* ``websockets.frames.Frame.parse``: when the whole frame is already in the
  connection's buffer (the usual case), it is decoded in one step and
  unmasked by wscodec, without the generator round trips of ``read_exact``;
  anything else (a frame still arriving, any header websockets would reject)
  goes to websockets' own ``Frame.parse``, so its exceptions and messages are
  exactly its own;
* ``websockets.frames.Frame.serialize``: header and masking by
  :func:`wscodec.encode_frame`, after websockets' own ``check()`` and
  extensions. The mask comes from where websockets takes it,
  ``secrets.token_bytes(4)`` looked up through ``websockets.frames`` at each
  call, so whoever patches that source (websockets' own tests, a user who
  wants repeatable frames) gets the same bytes on the wire as without wscodec.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Generator, List, Optional, Sequence

from .._backend import codec
from ._patching import Adapter, Patch

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    patches = [
        Patch("websockets.frames", "apply_mask", _make_apply_mask),
        Patch("websockets.frames", "Frame.parse", _make_parse),
        Patch("websockets.frames", "Frame.serialize", _make_serialize),
    ]
    # Importing websockets.legacy warns (deprecated): patch it only when the
    # application already uses it, never import it on its behalf.
    if "websockets.legacy.framing" in sys.modules:
        patches.append(Patch("websockets.legacy.framing", "apply_mask", _make_apply_mask))
    return patches


ADAPTER = Adapter("websockets", "websockets", ("17.0", "18"), _patches)
_calls = ADAPTER.calls


def _make_apply_mask(original: Any) -> Callable[[Any, Any], bytes]:
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def apply_mask_wscodec(data: Any, mask: Any) -> bytes:
        """websockets' ``apply_mask(data, mask)`` on wscodec's kernel."""
        _calls["apply_mask"] += 1
        return apply_mask(data, mask)

    return apply_mask_wscodec


def _make_parse(original: Any) -> Any:
    slow = original.__func__
    frames = importlib.import_module("websockets.frames")
    by_value = [None] * 16
    for opcode in frames.Opcode:
        by_value[opcode] = opcode
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def parse(
        cls: Any,
        read_exact: Any,
        *,
        mask: bool,
        max_size: Optional[int] = None,
        extensions: Optional[Sequence[Any]] = None,
    ) -> Generator[None, None, Any]:
        """websockets' ``Frame.parse``: one step when the frame is buffered."""
        _calls["Frame.parse"] += 1
        buf = getattr(getattr(read_exact, "__self__", None), "buffer", None)
        if type(buf) is bytearray and len(buf) >= 2:
            head1 = buf[0]
            head2 = buf[1]
            opcode = by_value[head1 & 0x0F]
            length = head2 & 0x7F
            if opcode is not None and (head2 >= 0x80) is mask:
                start = 2
                if length == 126:
                    start = 4
                    length = int.from_bytes(buf[2:4], "big") if len(buf) >= 4 else -1
                elif length == 127:
                    start = 10
                    length = int.from_bytes(buf[2:10], "big") if len(buf) >= 10 else -1
                if length >= 0 and (max_size is None or length <= max_size):
                    end = start + length + (4 if mask else 0)
                    if len(buf) >= end:
                        if mask:
                            data: Any = apply_mask(
                                memoryview(buf)[start + 4 : end], buf[start : start + 4]
                            )
                        else:
                            data = buf[start:end]
                        del buf[:end]
                        frame = cls(
                            opcode,
                            data,
                            head1 >= 0x80,
                            bool(head1 & 0x40),
                            bool(head1 & 0x20),
                            bool(head1 & 0x10),
                        )
                        if extensions:
                            for extension in reversed(extensions):
                                frame = extension.decode(frame, max_size=max_size)
                        frame.check()
                        return frame
        result = yield from slow(
            cls, read_exact, mask=mask, max_size=max_size, extensions=extensions
        )
        return result

    return classmethod(parse)


def _make_serialize(original: Any) -> Callable[..., bytes]:
    encode_frame: Callable[..., bytes] = codec.encode_frame
    frames = importlib.import_module("websockets.frames")

    def serialize(self: Any, *, mask: bool, extensions: Optional[Sequence[Any]] = None) -> bytes:
        """websockets' ``Frame.serialize`` with wscodec's encoder."""
        _calls["Frame.serialize"] += 1
        self.check()
        if extensions:
            for extension in extensions:
                self = extension.encode(self)
        return encode_frame(
            self.opcode,
            self.data,
            fin=self.fin,
            mask=frames.secrets.token_bytes(4) if mask else None,
            rsv1=self.rsv1,
            rsv2=self.rsv2,
            rsv3=self.rsv3,
        )

    return serialize


def install(*, force: bool = False) -> bool:
    """Patch websockets; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore websockets' originals; False if not patched."""
    return ADAPTER.uninstall()
