"""Client masks come from each library's own source, looked up at each call.

For every library whose adapter touches the masking of outgoing frames, the
test patches the source that library takes its masks from (the way its own
tests and users wanting repeatable frames do), makes the same frames without
and with the adapter, and compares them byte for byte; a fixed mask also gives
the frame we work out independently with wscodec's encoder.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Callable, List
from unittest import mock

import pytest

from tests.peers import installed, require
from wscodec import Opcode, encode_frame

MASK = b"\x12\x34\x56\x78"
PAYLOADS = [b"", b"hello", bytes(range(256)) * 2, b"\xa5" * 70000]


def same_frames(name: str, make: Callable[[], List[bytes]], counter: str) -> List[bytes]:
    """The frames ``make`` returns without the adapter; asserts the adapter's are identical."""
    without = make()
    with installed(name) as ad:
        with_adapter = make()
        assert ad.calls[counter] > 0, "the adapter's replacement did not run"
    assert [bytes(f) for f in with_adapter] == [bytes(f) for f in without]
    return without


def expected(opcode: Opcode, data: bytes) -> bytes:
    return encode_frame(opcode, data, mask=MASK)


def test_websockets_mask_from_secrets_token_bytes():
    require("websockets", "websockets.frames")
    from websockets.frames import Frame
    from websockets.frames import Opcode as WsOpcode

    def make():
        with mock.patch("secrets.token_bytes", return_value=MASK) as source:
            frames = [Frame(WsOpcode.BINARY, data).serialize(mask=True) for data in PAYLOADS]
        assert source.call_count == len(PAYLOADS)
        return frames

    frames = same_frames("websockets", make, "Frame.serialize")
    assert frames == [expected(Opcode.BINARY, data) for data in PAYLOADS]


def test_websockets_mask_source_patched_on_the_library_module():
    require("websockets", "websockets.frames")
    import websockets.frames
    from websockets.frames import Frame
    from websockets.frames import Opcode as WsOpcode

    def make():
        with mock.patch.object(websockets.frames.secrets, "token_bytes", return_value=MASK):
            return [Frame(WsOpcode.TEXT, b"caf\xc3\xa9").serialize(mask=True)]

    assert same_frames("websockets", make, "Frame.serialize") == [
        expected(Opcode.TEXT, b"caf\xc3\xa9")
    ]


def test_wsproto_mask_from_os_urandom():
    require("wsproto", "wsproto.frame_protocol")
    from wsproto.frame_protocol import CloseReason, FrameProtocol

    def make():
        with mock.patch("os.urandom", return_value=MASK) as source:
            protocol = FrameProtocol(client=True, extensions=[])
            frames = [protocol.send_data(data, fin=True) for data in PAYLOADS]
            frames.append(protocol.send_data("text é", fin=True))
            frames.append(protocol.ping(b"ping"))
            frames.append(protocol.close(CloseReason.NORMAL_CLOSURE, "bye"))
        assert source.call_count == len(frames)
        return frames

    frames = same_frames("wsproto", make, "FrameProtocol._serialize_frame")
    assert frames[0] == expected(Opcode.BINARY, PAYLOADS[0])
    assert frames[len(PAYLOADS)] == expected(Opcode.TEXT, "text é".encode())


def test_websocket_client_mask_from_os_urandom():
    require("websocket_client", "websocket._abnf")
    from websocket._abnf import ABNF

    def make():
        with mock.patch("os.urandom", return_value=MASK):
            return [ABNF.create_frame(data, ABNF.OPCODE_BINARY).format() for data in PAYLOADS] + [
                ABNF.create_frame("text é", ABNF.OPCODE_TEXT).format()
            ]

    frames = same_frames("websocket_client", make, "ABNF.format")
    assert frames[:-1] == [expected(Opcode.BINARY, data) for data in PAYLOADS]
    assert frames[-1] == expected(Opcode.TEXT, "text é".encode())


def test_ws4py_mask_from_os_urandom():
    require("ws4py", "ws4py.messaging", "ws4py.framing")
    from ws4py.messaging import BinaryMessage, TextMessage

    def make():
        with mock.patch("os.urandom", return_value=MASK):
            frames = [BinaryMessage(data).single(mask=True) for data in PAYLOADS]
            frames.append(TextMessage("text é").single(mask=True))
        return frames

    frames = same_frames("ws4py", make, "Frame.mask")
    assert frames[:-1] == [expected(Opcode.BINARY, data) for data in PAYLOADS]


def test_tornado_mask_from_os_urandom():
    require("tornado", "tornado.websocket")
    from tornado.websocket import WebSocketProtocol13

    class Stream:
        def __init__(self) -> None:
            self.written: List[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(bytes(data))

    def make():
        protocol: Any = WebSocketProtocol13.__new__(WebSocketProtocol13)
        protocol.mask_outgoing = True
        protocol.stream = Stream()
        protocol._wire_bytes_out = 0
        with mock.patch("os.urandom", return_value=MASK):
            for data in PAYLOADS:
                protocol._write_frame(True, 0x2, data)
        written: List[bytes] = protocol.stream.written
        return written

    frames = same_frames("tornado", make, "WebSocketProtocol13._write_frame")
    assert frames == [expected(Opcode.BINARY, data) for data in PAYLOADS]


def test_aiohttp_mask_from_its_random_source():
    require("aiohttp", "aiohttp._websocket.writer")
    from aiohttp._websocket.writer import WebSocketWriter

    class Transport:
        def __init__(self) -> None:
            self.written: List[bytes] = []

        def is_closing(self) -> bool:
            return False

        def write(self, data: bytes) -> None:
            self.written.append(bytes(data))

    async def write():
        transport = Transport()
        # aiohttp's source: the random.Random it is given, getrandbits(32).
        writer = WebSocketWriter(mock.Mock(), transport, use_mask=True, random=random.Random(1234))
        for data in PAYLOADS:
            writer._write_websocket_frame(data, 0x2, 0)
        return transport.written

    def make():
        # In a running loop: before Python 3.10 the writer's asyncio.Lock() needs one.
        return asyncio.run(write())

    frames = same_frames("aiohttp", make, "websocket_mask")
    mask = random.Random(1234).getrandbits(32).to_bytes(4, "big")
    assert frames[0] == encode_frame(Opcode.BINARY, PAYLOADS[0], mask=mask)


@pytest.mark.parametrize("name", ["websockets", "wsproto"])
def test_masks_still_differ_frame_to_frame(name):
    """Unpatched, the library's source gives a fresh mask to every frame."""
    if name == "websockets":
        require("websockets", "websockets.frames")
        from websockets.frames import Frame
        from websockets.frames import Opcode as WsOpcode

        def frame() -> bytes:
            return Frame(WsOpcode.BINARY, b"x" * 8).serialize(mask=True)
    else:
        require("wsproto", "wsproto.frame_protocol")
        from wsproto.frame_protocol import FrameProtocol

        protocol = FrameProtocol(client=True, extensions=[])

        def frame() -> bytes:
            return bytes(protocol.send_data(b"x" * 8, fin=True))

    with installed(name):
        masks = {frame()[2:6] for _ in range(20)}
    assert len(masks) > 1
