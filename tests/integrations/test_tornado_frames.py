"""tornado's frame writer with wscodec installed: the same bytes, errors and mask source."""

from __future__ import annotations

import itertools

import pytest

from tests.peers import installed, require

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("tornado", "tornado")


class _Stream:
    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(bytes(data))
        return len(self.written)


class _Writer:
    """Just what ``WebSocketProtocol13._write_frame`` reads and writes on ``self``."""

    FIN = 0x80

    def __init__(self, mask_outgoing):
        self.mask_outgoing = mask_outgoing
        self._wire_bytes_out = 0
        self.stream = _Stream()


def _frames(monkeypatch):
    import os

    from tornado.websocket import WebSocketProtocol13

    keys = itertools.cycle([b"\x01\x02\x03\x04", b"\xff\x00\x7f\x80"])
    monkeypatch.setattr(os, "urandom", lambda n: next(keys)[:n])
    out = []
    for masked, fin, opcode, size, flags in itertools.product(
        (False, True),
        (True, False),
        (0x0, 0x1, 0x2),
        (0, 1, 125, 126, 65535, 65536, 70000),
        (0, 0x40),
    ):
        writer = _Writer(masked)
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        result = WebSocketProtocol13._write_frame(writer, fin, opcode, data, flags)
        out.append((writer.stream.written, writer._wire_bytes_out, result))
    for opcode, fin, size in ((0x9, True, 125), (0x9, False, 1), (0xA, True, 126)):
        writer = _Writer(True)
        try:
            WebSocketProtocol13._write_frame(writer, fin, opcode, b"p" * size)
        except ValueError as error:
            out.append(("error", str(error)))
        else:
            out.append((writer.stream.written, writer._wire_bytes_out))
    return out


def test_write_frame_same_bytes_errors_and_mask_source(monkeypatch):
    without = _frames(monkeypatch)
    with installed("tornado") as adapter:
        with_adapter = _frames(monkeypatch)
        assert adapter.calls["WebSocketProtocol13._write_frame"] == len(with_adapter)
    assert with_adapter == without
    assert without[-2:] == [
        ("error", "control frames may not be fragmented"),
        ("error", "control frame payloads may not exceed 125 bytes"),
    ]
