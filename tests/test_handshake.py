"""The opening handshake, sans I/O: parsing with limits, validation, negotiation."""

from __future__ import annotations

import pytest

from wscodec import InvalidRequest, InvalidResponse, InvalidStatus
from wscodec.handshake import (
    MAX_HEADERS,
    MAX_LINE,
    Headers,
    HTTPReader,
    Request,
    Response,
    accept,
    accept_key,
    build_request,
    check_response,
    reject,
)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def parse(data: bytes) -> Request:
    request = HTTPReader("request").feed(data)
    assert isinstance(request, Request)
    return request


def without(name: bytes) -> bytes:
    return b"".join(line for line in GOOD.splitlines(keepends=True) if not line.startswith(name))


def replace(name: bytes, value: bytes) -> bytes:
    return b"".join(
        name + b": " + value + b"\r\n" if line.startswith(name + b":") else line
        for line in GOOD.splitlines(keepends=True)
    )


def test_rfc_accept_key():
    assert accept_key(RFC_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_accepts_the_rfc_request():
    request = parse(GOOD)
    assert request.path == "/chat?room=1"
    response, subprotocol, _ = accept(request, subprotocols=["superchat", "chat"])
    assert response.status == 101
    assert response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert response.headers.tokens("Upgrade") == ["websocket"]
    assert response.headers.tokens("Connection") == ["upgrade"]
    assert subprotocol == "superchat"  # the server's preference
    wire = response.serialize()
    assert wire.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Protocol: superchat\r\n" in wire
    assert wire.endswith(b"\r\n\r\n")


def test_the_accept_value_is_not_the_key():
    # An example we were given echoes the key as the accept value: wrong.
    response, _, _ = accept(parse(GOOD))
    assert response.headers["Sec-WebSocket-Accept"] != RFC_KEY


@pytest.mark.parametrize(
    "data, status",
    [
        (GOOD.replace(b"GET ", b"POST ", 1), 405),
        (GOOD.replace(b"HTTP/1.1", b"HTTP/1.0", 1), 400),
        (without(b"Host"), 400),
        (GOOD.replace(b"Host: server.example.com\r\n", b"Host: a\r\nHost: b\r\n"), 400),
        (without(b"Upgrade"), 426),
        (replace(b"Upgrade", b"h2c"), 426),
        (without(b"Connection"), 426),
        (replace(b"Connection", b"keep-alive"), 426),
        (without(b"Sec-WebSocket-Key"), 400),
        (replace(b"Sec-WebSocket-Key", b"not base64!"), 400),
        (replace(b"Sec-WebSocket-Key", b"c2hvcnQ="), 400),  # 5 bytes, not 16
        (
            GOOD.replace(
                b"Sec-WebSocket-Key: ",
                b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Key: ",
            ),
            400,
        ),
        (without(b"Sec-WebSocket-Version"), 426),
        (replace(b"Sec-WebSocket-Version", b"8"), 426),
    ],
)
def test_bad_requests_get_the_right_status(data, status):
    with pytest.raises(InvalidRequest) as caught:
        accept(parse(data))
    assert caught.value.status == status
    if status == 426 and b"Version" in data and b"Sec-WebSocket-Version: 13" not in data:
        assert ("Sec-WebSocket-Version", "13") in caught.value.headers


def test_header_tokens_are_case_insensitive():
    data = replace(b"Upgrade", b"WebSocket").replace(b"keep-alive, Upgrade", b"UPGRADE")
    assert accept(parse(data))[0].status == 101


def test_origin_check():
    request = parse(GOOD)
    assert accept(request, origins=["http://example.com"])[0].status == 101
    with pytest.raises(InvalidRequest) as caught:
        accept(request, origins=["https://other.example"])
    assert caught.value.status == 403
    with pytest.raises(InvalidRequest):
        accept(parse(without(b"Origin")), origins=["http://example.com"])
    assert accept(parse(without(b"Origin")), origins=[None])[0].status == 101


def test_subprotocol_negotiation():
    request = parse(GOOD)
    assert accept(request, subprotocols=["chat"])[1] == "chat"
    assert accept(request, subprotocols=["other"])[1] is None
    response, chosen, _ = accept(request, select_subprotocol=lambda req, offered: offered[-1])
    assert chosen == "superchat" and response.headers["Sec-WebSocket-Protocol"] == "superchat"
    with pytest.raises(ValueError):
        accept(request, select_subprotocol=lambda req, offered: "nope")


def test_extra_headers():
    response, _, _ = accept(parse(GOOD), extra_headers=[("Server", "wscodec")])
    assert response.headers["Server"] == "wscodec"


def test_reader_byte_at_a_time_and_leftover():
    reader = HTTPReader("request")
    data = GOOD + b"\x81\x85after"
    results = [reader.feed(data[i : i + 1]) for i in range(len(GOOD))]
    assert all(r is None for r in results[:-1]) and isinstance(results[-1], Request)
    reader = HTTPReader("request")
    assert reader.feed(data) is not None
    assert reader.leftover == b"\x81\x85after"


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * MAX_LINE + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + (b"X-Big: " + b"a" * 8000 + b"\r\n") * 9 + b"\r\n", 431),
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
    ],
)
def test_reader_limits_and_syntax(data, status):
    with pytest.raises(InvalidRequest) as caught:
        reader = HTTPReader("request")
        for start in range(0, len(data), 1000):
            reader.feed(data[start : start + 1000])
    assert caught.value.status == status


def test_reader_never_buffers_an_endless_line():
    reader = HTTPReader("request")
    with pytest.raises(InvalidRequest):
        for _ in range(100):
            reader.feed(b"x" * 1000)  # no line break ever comes
    assert len(reader._buffer) <= MAX_LINE + 1000


def test_client_request_and_response_round_trip():
    request, key = build_request(
        "example.com",
        8080,
        "/ws?x=1",
        subprotocols=["chat"],
        origin="http://example.com",
        extra_headers=[("X-Token", "t")],
    )
    wire = request.serialize()
    assert wire.startswith(b"GET /ws?x=1 HTTP/1.1\r\n")
    parsed = parse(wire)
    assert parsed.headers["Host"] == "example.com:8080"
    assert parsed.headers["X-Token"] == "t"
    response, chosen, _ = accept(parsed, subprotocols=["chat"])
    reply = HTTPReader("response").feed(response.serialize())
    assert isinstance(reply, Response)
    assert check_response(reply, key, ["chat"]) == ("chat", None)
    assert chosen == "chat"


def test_client_keys_are_random():
    keys = {build_request("h", 80)[1] for _ in range(20)}
    assert len(keys) == 20


def test_default_ports_are_not_in_host():
    assert build_request("h", 80)[0].headers["Host"] == "h"
    assert build_request("h", 443, secure=True)[0].headers["Host"] == "h"
    assert build_request("::1", 8000)[0].headers["Host"] == "[::1]:8000"


def response_for(key: str, **changes: str) -> Response:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(key),
    }
    headers.update(changes)
    return Response(101, Headers((k, v) for k, v in headers.items() if v))


def test_client_rejects_bad_101():
    key = build_request("h", 80)[1]
    assert check_response(response_for(key), key) == (None, None)
    for changes in (
        {"Sec-WebSocket-Accept": accept_key("x" + key)},
        {"Upgrade": ""},
        {"Connection": ""},
        {"Sec-WebSocket-Protocol": "chat"},
        {"Sec-WebSocket-Extensions": "permessage-deflate"},
    ):
        with pytest.raises(InvalidResponse):
            check_response(response_for(key, **changes), key)


def test_client_non_101_carries_the_response():
    response = Response(403, Headers([("X-Why", "auth")]), b"go away")
    with pytest.raises(InvalidStatus) as caught:
        check_response(response, "key")
    assert caught.value.response.status == 403
    assert caught.value.response.headers["X-Why"] == "auth"


def test_response_reader():
    reader = HTTPReader("response")
    response = reader.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc")
    assert isinstance(response, Response)
    assert response.status == 404 and reader.leftover == b"abc"
    with pytest.raises(InvalidResponse):
        HTTPReader("response").feed(b"HTCPCP/1.0 418\r\n\r\n")


def test_headers_refuse_line_breaks():
    with pytest.raises(ValueError):
        Headers([("X", "a\r\nInjected: yes")])


@pytest.mark.parametrize(
    "header, value",
    [
        (b"Upgrade", None),
        (b"Upgrade", b"h2c"),
        (b"Connection", None),
        (b"Connection", b"keep-alive"),
    ],
)
def test_426_has_one_connection_header_with_upgrade_and_close(header, value):
    """Issue 21, item 12: a 426 carried ``Connection: Upgrade`` and ``Connection: close``
    as two headers that contradict each other. It carries one: ``Upgrade, close``
    (RFC 9110 asks for the ``upgrade`` option next to an ``Upgrade`` header)."""
    data = without(header) if value is None else replace(header, value)
    try:
        accept(parse(data))
    except InvalidRequest as error:
        response = reject(error.status, error.message, error.headers)
    else:
        raise AssertionError("accepted")
    assert response.status == 426
    connection = response.headers.get_all("Connection")
    assert len(connection) == 1, connection
    assert [t.strip().lower() for t in connection[0].split(",")] == ["upgrade", "close"]
    assert response.headers.get_all("Upgrade") == ["websocket"]
    serialized = response.serialize()
    assert serialized.count(b"\r\nConnection:") == 1, serialized


def test_reject_adds_connection_close_once():
    assert reject(400, "bad").headers.get_all("Connection") == ["close"]
    response = reject(503, "busy", [("Connection", "close"), ("Retry-After", "1")])
    assert response.headers.get_all("Connection") == ["close"]


def _request_with(host: str, key: str) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Authorization: Basic c2VjcmV0\r\n\r\n"
    ).encode()


def test_common_header_lines_are_shared_between_requests_but_not_secrets():
    first = HTTPReader("request").feed(_request_with("example.com", "a2V5MWtleTFrZXkxa2V5MQ=="))
    second = HTTPReader("request").feed(_request_with("example.com", "a2V5Mmtl2V5MmtleTJrZXky"))
    pairs = list(zip(first.headers.items(), second.headers.items()))
    shared = [a[0] for a, b in pairs if a is b]
    assert shared == ["Host", "Upgrade", "Connection", "Sec-WebSocket-Version"]
    assert first.headers.items() != second.headers.items()  # the keys differ
    assert first.headers["Host"] == second.headers["Host"] == "example.com"


def test_the_shared_header_lines_table_stays_bounded():
    from wscodec import handshake

    for index in range(3 * handshake._SHARED_MAX):
        HTTPReader("request").feed(
            _request_with(f"host-{index}.example", "a2V5MWtleTFrZXkxa2V5MQ==")
        )
        assert len(handshake._SHARED_LINES) <= handshake._SHARED_MAX
    assert not any(b"Authorization" in line for line in handshake._SHARED_LINES)
