"""Adapters for the peer libraries the benchmarks compare against.

Nothing is installed: each peer is used when it imports, and listed as
missing otherwise. Every adapter exposes the same shape of call as wscodec's
own function, so the suite times like against like:

* ``mask_new(data, key) -> bytes`` and ``mask_into(bytearray, key)``
* ``validate(data) -> bool``
* ``parser() -> feed`` where ``feed(chunk)`` parses masked client frames
* ``encode(payload) -> bytes`` for an unmasked server frame
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, Callable, Dict, List, Tuple

Adapter = Dict[str, Any]


def _version(module_name: str) -> str:
    try:
        from importlib.metadata import version

        return version(module_name)
    except Exception:
        return "?"


def websockets_peers() -> List[Tuple[str, Adapter]]:
    peers: List[Tuple[str, Adapter]] = []
    from websockets.frames import Frame, Opcode

    try:
        from websockets.speedups import apply_mask as c_mask

        peers.append(("websockets (C)", {"mask_new": c_mask}))
    except ImportError:
        pass
    from websockets.utils import apply_mask as py_mask

    def encode(payload: bytes) -> bytes:
        return Frame(Opcode.BINARY, payload).serialize(mask=False)

    peers.append(("websockets (py)", {"mask_new": py_mask, "encode": encode}))
    return peers


def aiohttp_peers() -> List[Tuple[str, Adapter]]:
    peers: List[Tuple[str, Adapter]] = []
    from aiohttp._websocket import helpers
    from aiohttp._websocket import reader_py as rpy
    from aiohttp._websocket.writer import WebSocketWriter

    class Protocol:
        _reading_paused = False

        def pause_reading(self) -> None:  # never reached: the limit is huge
            pass

    class Transport:
        def write(self, data: bytes) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    loop = asyncio.new_event_loop()

    def reader_factory(module: Any) -> Callable[[], Callable[[bytes], object]]:
        def make() -> Callable[[bytes], object]:
            queue = module.WebSocketDataQueue(Protocol(), 2**30, loop=loop)
            try:
                reader = module.WebSocketReader(queue, 0, compress=False, decode_text=False)
            except TypeError:  # aiohttp before 3.14 (Python 3.9 gets 3.13) decodes text always
                reader = module.WebSocketReader(queue, 0, compress=False)
            return reader.feed_data

        return make

    writer = WebSocketWriter(Protocol(), Transport())  # type: ignore[arg-type]

    def encode(payload: bytes) -> bytes:
        writer._write_websocket_frame(payload, 2, 0)
        return b""

    try:
        from aiohttp._websocket import mask as cmask
        from aiohttp._websocket import reader_c as rc

        def c_mask_into(buffer: bytearray, key: bytes) -> None:
            cmask._websocket_mask_cython(key, buffer)

        peers.append(("aiohttp (C)", {"mask_into": c_mask_into, "parser": reader_factory(rc)}))
    except ImportError:
        pass

    def py_mask_into(buffer: bytearray, key: bytes) -> None:
        helpers._websocket_mask_python(key, buffer)

    # aiohttp's pure-Python reader as it runs without its extensions
    # (AIOHTTP_NO_EXTENSIONS=1): with the translate-based mask too.
    rpy.websocket_mask = helpers._websocket_mask_python
    peers.append(
        (
            "aiohttp (py)",
            {"mask_into": py_mask_into, "parser": reader_factory(rpy), "encode": encode},
        )
    )
    return peers


def wsproto_peers() -> List[Tuple[str, Adapter]]:
    from wsproto.frame_protocol import FrameProtocol

    def parser() -> Callable[[bytes], object]:
        protocol = FrameProtocol(client=False, extensions=[])

        def feed(chunk: bytes) -> object:
            protocol.receive_bytes(chunk)
            return list(protocol.received_frames())

        return feed

    sender = FrameProtocol(client=False, extensions=[])

    def encode(payload: bytes) -> bytes:
        return sender.send_data(payload, fin=True)

    return [("wsproto (py)", {"parser": parser, "encode": encode})]


def wsaccel_peers() -> List[Tuple[str, Adapter]]:
    from wsaccel.utf8validator import Utf8Validator
    from wsaccel.xormask import XorMaskerSimple

    validator = Utf8Validator()

    def validate(data: bytes) -> bool:
        validator.reset()
        valid, ends_on_code_point, _, _ = validator.validate(data)
        return bool(valid and ends_on_code_point)

    def mask_new(data: bytes, key: bytes) -> bytes:
        return XorMaskerSimple(key).process(data)

    return [("wsaccel (C)", {"validate": validate, "mask_new": mask_new})]


def autobahn_peers() -> List[Tuple[str, Adapter]]:
    from autobahn.websocket.utf8validator import Utf8Validator

    validator = Utf8Validator()
    kind = "NVX" if "nvx" in Utf8Validator.__module__ else "py"

    def validate(data: bytes) -> bool:
        validator.reset()
        valid, ends_on_code_point, _, _ = validator.validate(data)
        return bool(valid and ends_on_code_point)

    return [(f"autobahn ({kind})", {"validate": validate})]


def picows_peers() -> List[Tuple[str, Adapter]]:
    importlib.import_module("picows")
    # picows parses only inside its asyncio protocol (WSProtocol fed through
    # a transport), with no standalone parser or mask function to call.
    return []


FINDERS = {
    "websockets": websockets_peers,
    "aiohttp": aiohttp_peers,
    "wsproto": wsproto_peers,
    "wsaccel": wsaccel_peers,
    "autobahn": autobahn_peers,
    "picows": picows_peers,
}

NOT_TIMED = {"picows": "installed, but its parser is only reachable through its asyncio protocol"}


def detect() -> Tuple[List[Tuple[str, Adapter]], Dict[str, str]]:
    """(name, adapter) for every installed peer, and a note on each other one."""
    found: List[Tuple[str, Adapter]] = []
    notes: Dict[str, str] = {}
    for package, finder in FINDERS.items():
        try:
            adapters = finder()
        except ImportError as error:
            notes[package] = f"not installed ({error.name or error})"
            continue
        except Exception as error:  # a peer whose internals moved
            notes[package] = f"unusable: {type(error).__name__}: {error}"
            continue
        found.extend(adapters)
        notes[package] = f"{_version(package)}" + (
            f"; {NOT_TIMED[package]}" if package in NOT_TIMED else ""
        )
    return found, notes
