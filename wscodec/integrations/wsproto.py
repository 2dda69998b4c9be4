"""wscodec inside wsproto (and simple-websocket / flask-sock, which use it).

Patched in ``wsproto.frame_protocol``, where wsproto looks the names up:

* ``XorMaskerSimple``: stateful like wsproto's (the mask position carries
  across the chunks of one frame), on :func:`wscodec.apply_mask_into`;
* ``FrameDecoder.process_buffer``: a frame that is wholly buffered, with no
  extension in use and a header wsproto accepts, is decoded and unmasked in
  one step; everything else (partial frames, extensions, any header wsproto
  would reject) goes to wsproto's own method, so its ``ParseFailed`` errors,
  messages and close codes are exactly its own;
* ``FrameProtocol._serialize_frame``: :func:`wscodec.encode_frame` when no
  extension is in use (wsproto's own method otherwise). A client's mask comes
  from where wsproto takes it, ``os.urandom(4)`` looked up through
  ``wsproto.frame_protocol`` at each call, so a patched source gives the same
  bytes on the wire as without wscodec.

Not patched: ``getincrementaldecoder``. wsproto needs the decoded ``str``, and
CPython's incremental UTF-8 decoder already validates and decodes in one C
pass; validating with wscodec first would only add a second pass.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, List

from .._backend import codec
from ._patching import Adapter, Patch

__all__ = ["ADAPTER", "install", "uninstall"]


def _patches() -> List[Patch]:
    module = "wsproto.frame_protocol"
    return [
        Patch(module, "XorMaskerSimple", _make_masker),
        Patch(module, "FrameDecoder.process_buffer", _make_process_buffer),
        Patch(module, "FrameProtocol._serialize_frame", _make_serialize_frame),
    ]


ADAPTER = Adapter("wsproto", "wsproto", ("1.2", "2"), _patches)
_calls = ADAPTER.calls


def _make_masker(original: Any) -> type:
    apply_mask_into = codec.apply_mask_into

    class XorMaskerSimple:
        """wsproto's masker contract on wscodec: ``process`` returns a new bytearray."""

        __slots__ = ("_masking_key", "_offset")

        def __init__(self, masking_key: Any) -> None:
            self._masking_key = bytes(masking_key)
            self._offset = 0

        def process(self, data: Any) -> bytearray:
            _calls["XorMaskerSimple"] += 1
            out = bytearray(data)
            if out:
                apply_mask_into(out, self._masking_key, self._offset)
                self._offset += len(out)
            return out

    XorMaskerSimple.__module__ = __name__
    return XorMaskerSimple


def _make_process_buffer(original: Any) -> Callable[[Any], Any]:
    fp = importlib.import_module("wsproto.frame_protocol")
    frame_type = fp.Frame
    by_value: List[Any] = [None] * 16
    for opcode in fp.Opcode:
        by_value[opcode] = opcode
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def process_buffer(self: Any) -> Any:
        """wsproto's ``FrameDecoder.process_buffer``: one step when the frame is buffered."""
        _calls["FrameDecoder.process_buffer"] += 1
        wrapper = self.buffer
        buf = wrapper.buffer
        if self.header is None and not self.extensions and not wrapper.bytes_used:
            size = len(buf)
            if size >= 2:
                head1 = buf[0]
                head2 = buf[1]
                opcode = by_value[head1 & 0x0F]
                length = head2 & 0x7F
                masked = head2 >= 0x80
                # No RSV bits, a known opcode, masking as this side expects,
                # control frames final and short: what wsproto accepts.
                if (
                    opcode is not None
                    and not head1 & 0x70
                    and masked is not self.client
                    and (opcode < 8 or (head1 >= 0x80 and length < 126))
                ):
                    start = 2
                    if length == 126:
                        start = 4
                        length = int.from_bytes(buf[2:4], "big") if size >= 4 else 0
                        ok = length > 125
                    elif length == 127:
                        start = 10
                        length = int.from_bytes(buf[2:10], "big") if size >= 10 else 0
                        ok = 65535 < length < 2**63
                    else:
                        ok = True
                    end = start + length + (4 if masked else 0)
                    if ok and size >= end:
                        if masked:
                            payload = apply_mask(
                                memoryview(buf)[start + 4 : end], buf[start : start + 4]
                            )
                        else:
                            payload = bytes(buf[start:end])
                        del buf[:end]
                        return frame_type(opcode, payload, True, head1 >= 0x80)
        return original(self)

    return process_buffer


def _make_serialize_frame(original: Any) -> Callable[..., bytearray]:
    encode_frame: Callable[..., bytes] = codec.encode_frame
    fp = importlib.import_module("wsproto.frame_protocol")

    def _serialize_frame(self: Any, opcode: Any, payload: Any = b"", fin: bool = True) -> bytearray:
        """wsproto's ``FrameProtocol._serialize_frame`` with wscodec's encoder."""
        _calls["FrameProtocol._serialize_frame"] += 1
        if self.extensions or (opcode >= 8 and (not fin or len(payload) > 125)):
            return original(self, opcode, payload, fin)  # type: ignore[no-any-return]
        return bytearray(
            encode_frame(opcode, payload, fin=fin, mask=fp.os.urandom(4) if self.client else None)
        )

    return _serialize_frame


def install(*, force: bool = False) -> bool:
    """Patch wsproto; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore wsproto's originals; False if not patched."""
    return ADAPTER.uninstall()
