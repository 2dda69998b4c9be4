"""websocket-client with wscodec installed, against a server over 127.0.0.1.

websocket-client has no server: the echo peer is wscodec's own server, and
a raw server sends the bad input.
"""

from __future__ import annotations

import pytest

from tests.helpers import echo, running_server
from tests.peers import (
    SERVER_BAD_OPCODE,
    SERVER_INVALID_UTF8,
    SIZES,
    RawServer,
    installed,
    payload,
    require,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("websocket_client", "websocket")


def test_echo_text_binary_fragmented():
    import websocket

    with installed("websocket_client") as ad, running_server(echo, max_size=None) as server:
        port = server.port
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=10)
        try:
            for size in SIZES:
                for text in (True, False):
                    message = payload(size, text)
                    if text:
                        ws.send(message)
                    else:
                        ws.send_binary(message)
                    assert ws.recv() == message
            ws.send("frag", opcode=websocket.ABNF.OPCODE_TEXT)
            ws.send_frame(websocket.ABNF.create_frame("mënted", websocket.ABNF.OPCODE_TEXT, 0))
            ws.send_frame(websocket.ABNF.create_frame("!", websocket.ABNF.OPCODE_CONT, 1))
            assert ws.recv() == "frag"
            assert ws.recv() == "mënted!"
        finally:
            ws.close()
        assert ad.calls["ABNF.format"] >= 2 * len(SIZES)
        assert ad.calls["validate_utf8"] >= len(SIZES)


def client_error(wire):
    import websocket

    raw = RawServer(wire)
    ws = websocket.create_connection(f"ws://127.0.0.1:{raw.port}/", timeout=10)
    try:
        with pytest.raises(websocket.WebSocketException) as caught:
            ws.recv()
        ws.close(status=1007 if "utf" in str(caught.value).lower() else 1002)
    finally:
        ws.shutdown()
    return type(caught.value), str(caught.value), raw.join()


@pytest.mark.parametrize("wire", [SERVER_INVALID_UTF8, SERVER_BAD_OPCODE], ids=["utf8", "opcode"])
def test_client_errors_unchanged(wire):
    without = client_error(wire)
    with installed("websocket_client"):
        with_adapter = client_error(wire)
    assert with_adapter == without


def test_kernels_same_results():
    import array

    from websocket import _abnf

    key, data = b"\1\2\3\4", bytes(range(200))
    cases = [b"", b"ok", "é".encode(), b"\xed\xa0\x80", b"\xff", b"\xf4\x90\x80\x80"]
    frames = [
        _abnf.ABNF(1, 0, 0, 0, op, 1, b"x" * n)
        for op in (1, 2, 9)
        for n in (0, 125, 126, 70000)
        if op < 8 or n < 126
    ]
    for frame in frames:
        frame.get_mask_key = lambda n: b"\1\2\3\4"
    without = (
        [_abnf.validate_utf8(c) for c in cases],
        _abnf.ABNF.mask(key, data),
        _abnf.ABNF.mask("abcd", "text"),
        _abnf._mask(array.array("B", key), array.array("B", data)),
        [f.format() for f in frames],
    )
    with installed("websocket_client") as ad:
        with_adapter = (
            [_abnf.validate_utf8(c) for c in cases],
            _abnf.ABNF.mask(key, data),
            _abnf.ABNF.mask("abcd", "text"),
            _abnf._mask(array.array("B", key), array.array("B", data)),
            [f.format() for f in frames],
        )
        assert ad.calls["ABNF.format"] == len(frames)
        bad = _abnf.ABNF(2, 0, 0, 0, 1, 1, b"")
        with pytest.raises(ValueError, match="not 0 or 1"):
            bad.format()
    assert with_adapter == without
    assert without[0] == [True, True, True, False, False, False]


def test_recv_frame_same_frames_across_chunking_and_timeouts():
    import random

    from websocket import _abnf
    from websocket._exceptions import WebSocketProtocolException, WebSocketTimeoutException

    from wscodec import Opcode, encode_frame

    wire = b"".join(
        [
            encode_frame(Opcode.TEXT, "héllo".encode()),
            encode_frame(Opcode.BINARY, bytes(range(256)) * 300, fin=False),
            encode_frame(Opcode.CONTINUATION, b"", mask=b"\1\2\3\4"),
            encode_frame(Opcode.PING, b"p" * 125),
            encode_frame(Opcode.BINARY, b"z" * 70000, mask=b"\5\6\7\x08"),
            encode_frame(Opcode.CLOSE, b"\x03\xe8bye"),
            bytes([0xC1, 0x01]) + b"x",  # RSV1: websocket-client refuses it
        ]
    )

    def frames(seed):
        rng = random.Random(seed)
        stream = {"pos": 0, "calls": 0}

        def recv(bufsize):
            stream["calls"] += 1
            if stream["calls"] % 3 == 0:
                raise WebSocketTimeoutException("timed out")
            take = min(bufsize, rng.randint(1, 9000))
            chunk = wire[stream["pos"] : stream["pos"] + take]
            stream["pos"] += len(chunk)
            return chunk

        buffer = _abnf.frame_buffer(recv, skip_utf8_validation=False)
        out = []
        while len(out) < 7:
            try:
                frame = buffer.recv_frame()
            except WebSocketTimeoutException:
                continue
            except WebSocketProtocolException as error:
                out.append(("error", str(error)))
                break
            out.append((frame.fin, frame.rsv1, frame.opcode, frame.mask_value, frame.data))
        return out

    without = [frames(seed) for seed in range(5)]
    with installed("websocket_client") as ad:
        with_adapter = [frames(seed) for seed in range(5)]
        assert ad.calls["frame_buffer.recv_frame"] > 7
    assert with_adapter == without
    assert without[0][-1] == ("error", "rsv is not implemented, yet")
    assert without[0][1][4] == bytes(range(256)) * 300
