"""wsproto with wscodec installed: its client and server roles over 127.0.0.1.

wsproto is sans-I/O; a small socket loop drives its own ``WSConnection`` on
both sides (what simple-websocket and flask-sock do in their threads).
"""

from __future__ import annotations

import socket
import threading

import pytest

from tests.peers import (
    BAD_OPCODE,
    INVALID_UTF8,
    SERVER_BAD_OPCODE,
    SERVER_INVALID_UTF8,
    SIZES,
    RawServer,
    installed,
    payload,
    raw_client_close_code,
    require,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _peer():
    require("wsproto", "wsproto")


class Endpoint:
    """One wsproto connection on a socket: send, and receive whole messages."""

    def __init__(self, sock, connection):
        self.sock = sock
        self.ws = connection
        self.parts = []
        self.closed = None

    def flush(self, data):
        if data:
            self.sock.sendall(data)

    def pump(self):
        """Read until one message, a close or EOF; returns the message (or None)."""
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        while True:
            for event in self.ws.events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    self.parts.append(event.data)
                    if event.message_finished:
                        parts, self.parts = self.parts, []
                        return ("" if isinstance(event, TextMessage) else b"").join(parts)
                elif isinstance(event, CloseConnection):
                    self.closed = (event.code, event.reason)
                    try:
                        self.flush(self.ws.send(event.response()))
                    except Exception:
                        pass
                    return None
                elif isinstance(event, Ping):
                    self.flush(self.ws.send(event.response()))
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            if not data:
                return None


def handshake_server(sock):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    ws = WSConnection(ConnectionType.SERVER)
    while True:
        ws.receive_data(sock.recv(65536))
        for event in ws.events():
            if isinstance(event, Request):
                sock.sendall(ws.send(AcceptConnection()))
                return Endpoint(sock, ws)


def handshake_client(port):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host="127.0.0.1", target="/")))
    while True:
        ws.receive_data(sock.recv(65536))
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return Endpoint(sock, ws)


def echo_server():
    from wsproto.events import Message

    listener = socket.create_server(("127.0.0.1", 0))

    def run():
        conn, _ = listener.accept()
        conn.settimeout(10)
        end = handshake_server(conn)
        while True:
            message = end.pump()
            if message is None:
                break
            end.flush(end.ws.send(Message(data=message)))
        conn.close()
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, run


def test_echo_text_binary_fragmented():
    from wsproto.events import CloseConnection, Message

    with installed("wsproto") as ad:
        port, thread, _ = echo_server()
        end = handshake_client(port)
        for size in SIZES:
            for text in (True, False):
                message = payload(size, text)
                end.flush(end.ws.send(Message(data=message)))
                assert end.pump() == message
        end.flush(end.ws.send(Message(data="frag", message_finished=False)))
        end.flush(end.ws.send(Message(data="mënted", message_finished=True)))
        assert end.pump() == "fragmënted"
        end.flush(end.ws.send(CloseConnection(code=1000)))
        assert end.pump() is None
        assert end.closed[0] == 1000
        thread.join(10)
        end.sock.close()
        assert ad.calls["FrameDecoder.process_buffer"] > 0
        assert ad.calls["FrameProtocol._serialize_frame"] > 0


def server_close(wire):
    port, thread, _ = echo_server()
    result = raw_client_close_code(port, wire)
    thread.join(10)
    return result


@pytest.mark.parametrize("wire", [INVALID_UTF8, BAD_OPCODE], ids=["utf8", "opcode"])
def test_server_errors_unchanged(wire):
    without = server_close(wire)
    with installed("wsproto") as ad:
        with_adapter = server_close(wire)
        assert ad.calls["FrameDecoder.process_buffer"] >= 1
    assert with_adapter == without
    assert with_adapter[0] == (1007 if wire is INVALID_UTF8 else 1002)


def client_close(wire):
    raw = RawServer(wire)
    end = handshake_client(raw.port)
    assert end.pump() is None
    end.sock.close()
    return raw.join()


@pytest.mark.parametrize("wire", [SERVER_INVALID_UTF8, SERVER_BAD_OPCODE], ids=["utf8", "opcode"])
def test_client_errors_unchanged(wire):
    without = client_close(wire)
    with installed("wsproto"):
        with_adapter = client_close(wire)
    assert with_adapter == without
    assert with_adapter[0] == (1007 if wire is SERVER_INVALID_UTF8 else 1002)


def test_decoder_errors_are_wsprotos_own():
    from wsproto.frame_protocol import FrameProtocol, ParseFailed

    def parse(data, client=False):
        proto = FrameProtocol(client=client, extensions=[])
        proto.receive_bytes(data)
        try:
            return [
                (f.opcode, f.payload, f.frame_finished, f.message_finished)
                for f in proto.received_frames()
            ]
        except ParseFailed as error:
            return (str(error), error.code)

    cases = [
        (bytes([0x83, 0x80]) + b"\0" * 4, False),
        (bytes([0x81, 0x05]) + b"hello", False),
        (bytes([0x82, 0xFE, 0x00, 0x05]) + b"\0" * 9, False),  # non-minimal length
        (bytes([0xC2, 0x80]) + b"\0" * 4, False),  # RSV1 without extension
        (bytes([0x09, 0x80]) + b"\0" * 4, False),  # fragmented ping
        (bytes([0x02, 0x83]) + b"\1\2\3\4abc" + bytes([0x80, 0x82]) + b"\4\3\2\1de", False),
        (bytes([0x82, 0x03]) + b"abc", True),
        (bytes([0x82, 0x85]) + b"\1\2\3\4ab", False),  # partial payload
        (bytes([0x88, 0x82]) + b"\0\0\0\0" + b"\x03\xe8", False),
    ]
    without = [parse(*case) for case in cases]
    with installed("wsproto"):
        with_adapter = [parse(*case) for case in cases]
    assert with_adapter == without
    assert without[0][1] == 1002 and "opcode" in without[0][0]


def test_masker_carries_position():
    from wsproto import frame_protocol

    with installed("wsproto") as ad:
        masker = frame_protocol.XorMaskerSimple(b"\1\2\3\4")
        out = masker.process(b"abc") + masker.process(b"defgh")
        assert ad.calls["XorMaskerSimple"] == 2
    expected = bytes(c ^ (1, 2, 3, 4)[i % 4] for i, c in enumerate(b"abcdefgh"))
    assert out == expected and isinstance(out, bytearray)
