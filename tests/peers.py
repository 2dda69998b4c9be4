"""Shared pieces of the integration tests (wscodec.integrations).

A peer library that is missing, or outside its adapter's tested range, fails
the test where the peers are required (the CI venv, which installs the
``peers`` extra and sets ``WSCODEC_PEERS_REQUIRED_IN`` to its prefix) and is
skipped, with the reason shown by ``-ra``, everywhere else (for example the
other-Pythons job, which installs only ``.[test]``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import os
import socket
import sys
import threading
from typing import Any, Iterator, List, Optional, Tuple

import pytest

from wscodec import FrameParser, Opcode, ProtocolError, encode_frame
from wscodec.integrations import IntegrationError, adapter

#: The sizes every echo test covers.
SIZES = [0, 125, 64 * 1024, 1024 * 1024]
MASK = b"\x37\xfa\x21\x3d"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def peers_required() -> bool:
    """Whether this interpreter is the one where every peer must be present."""
    where = os.environ.get("WSCODEC_PEERS_REQUIRED_IN", "")
    return bool(where) and os.path.realpath(where) == os.path.realpath(sys.prefix)


def require(name: str, *modules: str) -> None:
    """Import the peer's ``modules`` and check its version, or fail/skip."""
    try:
        for module in modules:
            importlib.import_module(module)
        adapter(name).check_version()
    except (ImportError, IntegrationError) as error:
        message = f"peer for the {name} adapter unavailable: {error}"
        if peers_required():
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def installed(name: str) -> Iterator[Any]:
    """The adapter installed for the block; afterwards the originals are back, by identity."""
    ad = adapter(name)
    assert ad.install() is True
    originals = ad.originals()
    replaced = {label: _lookup(label) for label in originals}
    assert all(replaced[label] is not originals[label] for label in originals)
    try:
        yield ad
    finally:
        assert ad.uninstall() is True
        for label, original in originals.items():
            assert _lookup(label) is original, label


def _lookup(label: str) -> Any:
    """The raw object at ``module.Class.attr`` (``__dict__`` entry, descriptors kept)."""
    parts = label.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:-1]:
            owner = vars(owner)[part]
        return vars(owner)[parts[-1]]
    raise LookupError(label)


def payload(size: int, text: bool) -> Any:
    """A message of ``size`` bytes: str (with multi-byte characters) or bytes."""
    if text:
        unit = "aé€𝄞"  # 1 + 2 + 3 + 4 bytes
        body = (unit * (size // 10 + 1)).encode()[:size]
        text_body = body.decode("utf-8", "ignore")  # drops a cut-off last character
        return text_body + "a" * (size - len(text_body.encode()))
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


# -- a raw peer: frames written by hand, for inputs a library would never send --

INVALID_UTF8 = encode_frame(Opcode.TEXT, b"ok \xff\xfe", mask=MASK)
BAD_OPCODE = bytes([0x83, 0x80]) + MASK  # reserved opcode 3, masked, empty


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def read_http(sock: socket.socket) -> Tuple[bytes, bytes]:
    """Headers up to the blank line, and what followed them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


Close = Optional[Tuple[int, bytes]]


def close_code_from(sock: socket.socket, leftover: bytes, *, mask_expected: bool) -> Close:
    """Read frames until a close frame: ``(code, reason)``; None if TCP just ended."""
    parser = FrameParser(mask_expected=mask_expected, max_frame_size=None)
    data = leftover
    sock.settimeout(10)
    while True:
        try:
            frames = parser.feed(data)
        except ProtocolError:
            return None
        for frame in frames:
            if frame.opcode == Opcode.CLOSE:
                if len(frame.payload) < 2:
                    return (1005, b"")
                return (int.from_bytes(frame.payload[:2], "big"), frame.payload[2:])
        try:
            data = sock.recv(65536)
        except (ConnectionError, socket.timeout):
            return None
        if not data:
            return None


def raw_client_close_code(port: int, wire: bytes, path: str = "/") -> Close:
    """Handshake with a server by hand, send ``wire``, return the server's close code."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head, rest = read_http(sock)
        assert head.split(b" ")[1] == b"101", head
        sock.sendall(wire)
        return close_code_from(sock, rest, mask_expected=False)


class RawServer:
    """Accepts one client, answers its handshake, sends ``wire``, records its close code."""

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.close_code: Close = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        with conn:
            head, rest = read_http(conn)
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
            }
            conn.sendall(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {_accept(headers['sec-websocket-key'])}\r\n\r\n".encode()
            )
            conn.sendall(self.wire)
            self.close_code = close_code_from(conn, rest, mask_expected=True)
        self.listener.close()

    def join(self) -> Close:
        self.thread.join(15)
        return self.close_code


def unmasked(wire: bytes) -> bytes:
    """A client frame made into a server frame: same frame, no mask."""
    frames: List[Any] = FrameParser(mask_expected=True, max_frame_size=None, allowed_rsv=0x70).feed(
        wire
    )
    return b"".join(
        encode_frame(f.opcode, f.payload, fin=f.fin, rsv1=f.rsv1, rsv2=f.rsv2, rsv3=f.rsv3)
        for f in frames
    )


SERVER_INVALID_UTF8 = unmasked(INVALID_UTF8)
SERVER_BAD_OPCODE = bytes([0x83, 0x00])
