"""How websocket-client's frame reader asks its socket for bytes, with wscodec installed.

recv(n) allocates n bytes before it reads, so the adapter's reader must never
ask for a whole large payload at once, and must hand a large payload over
without copying the frame around it.
"""

from __future__ import annotations

import pytest

from tests.peers import installed, require

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("websocket_client", "websocket")


@pytest.mark.parametrize("masked", [False, True])
def test_large_frame_read_in_bounded_exact_reads(masked):
    from websocket import _abnf

    from wscodec import Opcode, encode_frame

    payload = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4
    small = encode_frame(Opcode.TEXT, b"after", mask=b"\1\2\3\4" if masked else None)
    wire = encode_frame(Opcode.BINARY, payload, mask=b"\x37\xfa\x21\x3d" if masked else None)
    wire += small
    asked = []
    position = 0

    def recv(bufsize):
        nonlocal position
        asked.append(bufsize)
        chunk = wire[position : position + min(bufsize, 50000)]
        position += len(chunk)
        return chunk

    with installed("websocket_client") as adapter:
        buffer = _abnf.frame_buffer(recv, skip_utf8_validation=False)
        first = buffer.recv_frame()
        assert position == len(wire) - len(small)  # nothing read beyond the large frame
        second = buffer.recv_frame()
        assert adapter.calls["frame_buffer.recv_frame"] == 2
    assert (first.opcode, first.fin, first.data) == (Opcode.BINARY, 1, payload)
    assert (second.opcode, second.data) == (Opcode.TEXT, b"after")
    assert max(asked) <= 65536
