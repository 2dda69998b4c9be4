"""tornado's frame writer on wscodec's encoder (used by ``wscodec.integrations.tornado``).

tornado's ``WebSocketProtocol13._write_frame`` builds a frame by concatenation:
the masked payload is made, then copied behind the mask, then copied again
behind the header, three copies of every byte a client sends (two on a
server). The replacement writes the same bytes with one
:func:`wscodec.encode_frame` call: the header, and the payload masked as it
is copied. The mask still comes from ``os.urandom(4)``, looked up at call
time as tornado does, and control frames tornado would refuse go to its own
method so its errors stay its own.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

from .._backend import codec

__all__ = ["make_write_frame"]

_RSV1, _RSV2, _RSV3 = 0x40, 0x20, 0x10


def make_write_frame(original: Any, calls: Dict[str, int], key: str) -> Callable[..., Any]:
    """The replacement of ``WebSocketProtocol13._write_frame``; ``calls[key]`` counts it."""
    encode_frame: Callable[..., bytes] = codec.encode_frame

    def _write_frame(self: Any, fin: bool, opcode: int, data: bytes, flags: int = 0) -> Any:
        """tornado's ``_write_frame``: the same frame, encoded in one step."""
        calls[key] += 1
        if (opcode & 0x8 and (not fin or len(data) > 125)) or flags & ~0x70:
            return original(self, fin, opcode, data, flags)
        mask = os.urandom(4) if self.mask_outgoing else None
        frame = encode_frame(
            opcode,
            data,
            fin=bool(fin),
            mask=mask,
            rsv1=bool(flags & _RSV1),
            rsv2=bool(flags & _RSV2),
            rsv3=bool(flags & _RSV3),
        )
        self._wire_bytes_out += len(frame)
        return self.stream.write(frame)

    return _write_frame
