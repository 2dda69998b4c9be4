"""autobahn's frame writer with wscodec installed: the same bytes, counters and mask source."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from tests.peers import installed, require

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("autobahn", "autobahn")


class _Sender:
    """Just what ``WebSocketProtocol.sendFrame`` reads and writes on ``self``."""

    def __init__(self, server, mask_frames, apply_mask=True):
        self.factory = SimpleNamespace(isServer=server)
        self.maskClientFrames = mask_frames
        self.maskServerFrames = mask_frames
        self.applyMask = apply_mask
        self.trafficStats = SimpleNamespace(outgoingWebSocketFrames=0)
        self.logFrames = False
        self.sent = []

    def sendData(self, data, sync=False, chopsize=None):
        self.sent.append((bytes(data), sync, chopsize))


def _frames(monkeypatch):
    import random

    from autobahn.websocket.protocol import WebSocketProtocol

    bits = itertools.count(0x01020304, 0x11111111)
    monkeypatch.setattr(random, "getrandbits", lambda n: next(bits) % (1 << n))
    out = []
    cases = itertools.product(
        (False, True),  # server
        (False, True),  # mask frames
        (0, 1, 2, 8, 9, 10),
        (True, False),
        (0, 1, 125, 126, 65535, 65536, 70000),
        (0, 4),
    )
    for server, mask_frames, opcode, fin, size, rsv in cases:
        if opcode >= 8 and (size > 125 or not fin or rsv):
            continue
        sender = _Sender(server, mask_frames)
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        WebSocketProtocol.sendFrame(sender, opcode, data, fin, rsv, sync=size == 1, chopsize=None)
        out.append((sender.sent, sender.trafficStats.outgoingWebSocketFrames))
    # autobahn's own odd cases, which go to its method.
    odd = [
        dict(opcode=2, payload=b"abc", mask=b"\1\2\3\4"),
        dict(opcode=2, payload=b"ab", payload_len=7),
        dict(opcode=3, payload=b"x"),
        dict(opcode=9, payload=b"p" * 126),
        dict(opcode=8, payload=b"", fin=False),
        dict(opcode=2, payload=b"xyz", rsv=9),
    ]
    for kwargs in odd:
        sender = _Sender(False, True)
        WebSocketProtocol.sendFrame(sender, **kwargs)
        out.append((sender.sent, sender.trafficStats.outgoingWebSocketFrames))
    sender = _Sender(False, True, apply_mask=False)
    WebSocketProtocol.sendFrame(sender, 2, b"unmasked payload")
    out.append((sender.sent, sender.trafficStats.outgoingWebSocketFrames))
    return out


def test_send_frame_same_bytes_and_mask_source(monkeypatch):
    without = _frames(monkeypatch)
    with installed("autobahn") as adapter:
        with_adapter = _frames(monkeypatch)
        assert adapter.calls["WebSocketProtocol.sendFrame"] == len(with_adapter)
    assert with_adapter == without
    mask_bits = {sent[0][0][1] & 0x80 for sent, _ in without}
    assert mask_bits == {0, 0x80}  # both masked and unmasked frames were compared
