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
  125 bytes or fragmented, str payloads, a non-bytes mask key);
* ``frame_buffer.recv_frame``: websocket-client asks the socket for exactly
  the bytes it needs next (header, length, mask, payload: up to four reads a
  frame); the replacement reads ahead in 16 KiB blocks, keeps what it read in
  ``frame_buffer.recv_buffer`` (so a timeout loses nothing and the next call
  resumes), decodes the header in one go and unmasks with wscodec. The frame
  is then checked by websocket-client's own ``ABNF.validate``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, List, Optional

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
        Patch(module, "frame_buffer.recv_frame", _make_recv_frame),
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


_READ_AHEAD = 16384
# The most one recv() asks for: recv(n) allocates n bytes before it reads and
# shrinks them after, so asking for a whole large payload at once (for 1 MiB,
# a fresh mmap each call, of which the socket fills 64 KiB) is what made 1 MiB
# echoes slower with the adapter than without it.
_READ_MOST = 65536


def _make_recv_frame(original: Any) -> Callable[[Any], Any]:
    abnf = importlib.import_module("websocket._abnf").ABNF
    apply_mask: Callable[[Any, Any], bytes] = codec.apply_mask

    def fast(self: Any) -> Any:
        """Decode the next frame; None if ``recv`` returned something odd."""
        data = b"".join(self.recv_buffer)
        self.recv_buffer = [data] if data else []

        def fill(size: int) -> bool:
            nonlocal data
            have = len(data)
            if have >= size:
                return True
            chunks = [data]
            while have < size:
                chunk = self.recv(min(max(size - have, _READ_AHEAD), _READ_MOST))
                if not isinstance(chunk, bytes):
                    return False
                chunks.append(chunk)
                self.recv_buffer.append(chunk)  # kept if a later recv raises
                have += len(chunk)
            data = b"".join(chunks)
            self.recv_buffer = [data]
            return True

        def read_payload(start: int, end: int) -> Optional[bytes]:
            have = len(data)
            chunks = [data]
            while have < end:
                chunk = self.recv(min(end - have, _READ_MOST))
                if not isinstance(chunk, bytes):
                    return None
                chunks.append(chunk)
                self.recv_buffer.append(chunk)  # kept if a later recv raises
                have += len(chunk)
            chunks[0] = data[start:]
            return b"".join(chunks)

        if not fill(2):
            return None
        head1 = data[0]
        head2 = data[1]
        length = head2 & 0x7F
        start = 2
        if length == 126:
            if not fill(4):
                return None
            length = int.from_bytes(data[2:4], "big")
            start = 4
        elif length == 127:
            if not fill(10):
                return None
            length = int.from_bytes(data[2:10], "big")
            start = 10
        has_mask = head2 >> 7
        if has_mask:
            start += 4
        end = start + length
        if not fill(start):
            return None
        if length > _READ_MOST and len(data) < end:
            # A large payload is read exactly and joined once: no copy of the
            # whole frame to slice it out, no read beyond the frame.
            payload = read_payload(start, end)
            if payload is None:
                return None
            rest = b""
        else:
            if not fill(end):
                return None
            payload = data[start:end]
            rest = data[end:]
        if has_mask:
            payload = apply_mask(payload, data[start - 4 : start])
        self.recv_buffer = [rest] if rest else []
        self.clear()
        return abnf(
            head1 >> 7 & 1,
            head1 >> 6 & 1,
            head1 >> 5 & 1,
            head1 >> 4 & 1,
            head1 & 0xF,
            has_mask,
            payload,
        )

    def recv_frame(self: Any) -> Any:
        """``frame_buffer.recv_frame`` reading ahead; the same frames and errors."""
        _calls["frame_buffer.recv_frame"] += 1
        if self.header is None and self.length is None and self.mask_value is None:
            with self.lock:
                frame = fast(self)
            if frame is not None:
                frame.validate(self.skip_utf8_validation)
                return frame
        return original(self)

    return recv_frame


def install(*, force: bool = False) -> bool:
    """Patch websocket-client; False if already patched. See :meth:`Adapter.install`."""
    return ADAPTER.install(force=force)


def uninstall() -> bool:
    """Restore websocket-client's originals; False if not patched."""
    return ADAPTER.uninstall()
