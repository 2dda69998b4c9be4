"""autobahn's frame writer on wscodec's encoder (used by ``wscodec.integrations.autobahn``).

autobahn's ``WebSocketProtocol.sendFrame`` masks a client payload into a new
buffer and then joins it behind the header into another: two copies of every
byte a client sends. The replacement makes the same bytes with one
:func:`wscodec.encode_frame` call. The mask still comes from
``random.getrandbits(32)`` in autobahn's module, looked up at call time as
autobahn does; the traffic counters, frame logging and ``sendData`` are
autobahn's own. Whatever is unusual goes to autobahn's method unchanged: an
explicit ``mask`` or ``payload_len`` (its fuzzing features), masking turned
off, reserved opcodes, control frames wscodec would refuse, and ``rsv`` bits
beyond the three.
"""

from __future__ import annotations

import importlib
import struct
from typing import Any, Callable, Dict, Optional

from .._backend import codec

__all__ = ["make_send_frame"]


def make_send_frame(original: Any, calls: Dict[str, int], key: str) -> Callable[..., None]:
    """The replacement of ``WebSocketProtocol.sendFrame``; ``calls[key]`` counts it."""
    protocol = importlib.import_module("autobahn.websocket.protocol")
    frame_header = protocol.FrameHeader
    encode_frame: Callable[..., bytes] = codec.encode_frame
    pack_mask = struct.Struct("!I").pack

    def sendFrame(
        self: Any,
        opcode: int,
        payload: bytes = b"",
        fin: bool = True,
        rsv: int = 0,
        mask: Optional[bytes] = None,
        payload_len: Optional[int] = None,
        chopsize: Optional[int] = None,
        sync: bool = False,
    ) -> None:
        """autobahn's ``sendFrame``: the same frame, encoded in one step."""
        calls[key] += 1
        length = len(payload)
        if (
            mask
            or payload_len is not None
            or opcode not in (0, 1, 2, 8, 9, 10)
            or (opcode >= 8 and (not fin or length > 125))
            or not 0 <= rsv < 8
        ):
            return original(  # type: ignore[no-any-return]
                self, opcode, payload, fin, rsv, mask, payload_len, chopsize, sync
            )
        masked = self.maskServerFrames if self.factory.isServer else self.maskClientFrames
        if masked and not self.applyMask:  # a mask key on an unmasked payload: autobahn's
            return original(  # type: ignore[no-any-return]
                self, opcode, payload, fin, rsv, mask, payload_len, chopsize, sync
            )
        key_bytes = pack_mask(protocol.random.getrandbits(32)) if masked else None
        raw = encode_frame(
            opcode,
            payload,
            fin=bool(fin),
            mask=key_bytes,
            rsv1=bool(rsv & 4),
            rsv2=bool(rsv & 2),
            rsv3=bool(rsv & 1),
        )
        if opcode in (0, 1, 2):
            self.trafficStats.outgoingWebSocketFrames += 1
        if self.logFrames:
            header = frame_header(opcode, fin, rsv, length, key_bytes)
            self.logTxFrame(header, payload, payload_len, chopsize, sync)
        self.sendData(raw, sync, chopsize)
        return None

    return sendFrame
