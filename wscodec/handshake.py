"""The opening handshake of RFC 6455 section 4, sans I/O.

Both sides take bytes and give back parsed messages or bytes to send; nothing
here touches a socket.

Both sides, with the bytes each would send over TCP::

    >>> from wscodec.handshake import HTTPReader, accept, build_request, check_response
    >>> request, key = build_request("127.0.0.1", 8765, "/", subprotocols=["chat"])  # client
    >>> reader = HTTPReader(kind="request")  # server
    >>> received = reader.feed(request.serialize())  # None until the head is complete
    >>> response, subprotocol, extension = accept(received, subprotocols=["chat"])
    >>> response.status, subprotocol  # a bad request raises InvalidRequest instead
    (101, 'chat')
    >>> answer = HTTPReader(kind="response").feed(response.serialize())  # client
    >>> check_response(answer, key, subprotocols=["chat"])
    ('chat', None)

Every size read from the wire is bounded: request line and each header at most
8 KiB, at most 128 headers, the whole head at most 64 KiB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import (
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import deflate
from .exceptions import InvalidRequest, InvalidResponse, InvalidStatus

__all__ = [
    "GUID",
    "Accepted",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "MAX_LINE",
    "HTTPReader",
    "Headers",
    "Request",
    "Response",
    "accept",
    "accept_key",
    "build_request",
    "check_response",
    "reject",
]

#: The GUID RFC 6455 appends to the client's key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Limits on what a peer may send before the handshake completes.
MAX_LINE = 8192
MAX_HEADERS = 128
MAX_HEAD_SIZE = 65536

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(rb"[\x09\x20-\x7e\x80-\xff]*")
_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/(\d\.\d)")
_STATUS_LINE = re.compile(rb"HTTP/(\d\.\d) ([1-5]\d\d)(?: (.*))?")  # 100-599 (RFC 9110)

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

HeaderItems = Union["Headers", Iterable[Tuple[str, str]], None]

# Header lines that are the same on most connections (every client of a
# server sends the same Host, Upgrade and Connection lines) are parsed once
# and their (name, value) pair shared: an idle connection keeps its request,
# and ten such pairs cost about 1 KiB each time. Only headers without secrets
# (no cookies, no credentials, no keys) are shared, and the table is emptied
# when it fills, so a peer that varies them can't grow it.
_SHAREABLE = frozenset(
    (
        b"host",
        b"upgrade",
        b"connection",
        b"origin",
        b"user-agent",
        b"pragma",
        b"cache-control",
        b"accept-encoding",
        b"accept-language",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"server",
    )
)
_SHARED_LINES: Dict[bytes, Tuple[str, str]] = {}
_SHARED_MAX = 256


class Headers:
    """HTTP headers: an ordered list of (name, value) with case-insensitive lookup."""

    __slots__ = ("_items",)

    def __init__(self, items: HeaderItems = None) -> None:
        self._items: List[Tuple[str, str]] = []
        if items is not None:
            for name, value in items.items() if isinstance(items, Headers) else items:
                self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header, keeping any others of the same name."""
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"line break in header {name!r}")
        self._items.append((name, value))

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every header called ``name`` with one."""
        del self[name]
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        lower = name.lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != lower]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``name``; several headers of that name are joined with ", "."""
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get_all(self, name: str) -> List[str]:
        lower = name.lower()
        return [v for n, v in self._items if n.lower() == lower]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def items(self) -> List[Tuple[str, str]]:
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def tokens(self, name: str) -> List[str]:
        """The comma-separated tokens of every ``name`` header, lower-cased."""
        return [
            token.strip().lower()
            for value in self.get_all(name)
            for token in value.split(",")
            if token.strip()
        ]

    def serialize(self) -> bytes:
        return b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in self._items)


@dataclass
class Request:
    """An HTTP request head."""

    path: str
    headers: Headers = field(default_factory=Headers)
    method: str = "GET"
    version: str = "1.1"

    def serialize(self) -> bytes:
        line = f"{self.method} {self.path} HTTP/{self.version}\r\n".encode("latin-1")
        return line + self.headers.serialize() + b"\r\n"


@dataclass
class Response:
    """An HTTP response: status, headers and an optional small body."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.reason:
            self.reason = REASONS.get(self.status, "Unknown")

    def serialize(self) -> bytes:
        line = f"HTTP/1.1 {self.status} {self.reason}\r\n".encode("latin-1")
        return line + self.headers.serialize() + b"\r\n" + self.body


class HTTPReader:
    """Incremental, bounded parser of one HTTP head (request or response).

    :meth:`feed` returns ``None`` until the blank line that ends the head has
    arrived, then the parsed :class:`Request` or :class:`Response`; bytes that
    came after the head are in :attr:`leftover`. A head that breaks a limit or
    the syntax raises :class:`InvalidRequest` with status 431 or 400 (on the
    client side, reading a response, :class:`InvalidResponse`).
    """

    def __init__(
        self,
        kind: str = "request",
        *,
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
        max_size: int = MAX_HEAD_SIZE,
    ) -> None:
        if kind not in ("request", "response"):
            raise ValueError("kind must be 'request' or 'response'")
        self.kind = kind
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_size = max_size
        self._buffer = bytearray()
        self._start = 0  # where the current line starts
        self._scanned = 0  # where the search for its line break resumes
        self._lines: List[bytes] = []
        self.leftover = b""
        self.done = False

    def _error(self, status: int, message: str) -> Exception:
        if self.kind == "request":
            return InvalidRequest(status, message)
        return InvalidResponse(f"invalid HTTP response: {message}")

    def feed(self, data: bytes) -> Optional[Union[Request, Response]]:
        if self.done:
            raise RuntimeError("the HTTP head was already complete")
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n", self._scanned)
            if end < 0:
                # A trailing CR may be the first half of the line break: the
                # line itself is one byte shorter (so where the input is cut
                # does not change which heads are accepted).
                pending = len(buffer) - self._start - buffer.endswith(b"\r")
                if pending > self.max_line:
                    raise self._too_long()
                self._scanned = max(self._scanned, len(buffer) - 1)
                if len(buffer) > self.max_size:
                    raise self._error(431, "request head too large")
                return None
            line = bytes(buffer[self._start : end])
            if len(line) > self.max_line:
                raise self._too_long()
            self._start = self._scanned = end + 2
            if end + 2 > self.max_size:
                raise self._error(431, "request head too large")
            if not line:
                self.done = True
                self.leftover = bytes(buffer[end + 2 :])
                self._buffer = bytearray()
                return self._parse()
            self._lines.append(line)
            if len(self._lines) > self.max_headers + 1:
                raise self._error(431, "too many headers")

    def _too_long(self) -> Exception:
        if not self._lines:
            return self._error(400, "request line too long")
        return self._error(431, "header line too long")

    def _parse(self) -> Union[Request, Response]:
        if not self._lines:
            raise self._error(400, "empty request")
        first, *header_lines = self._lines
        headers = Headers()
        items = headers._items
        shared = _SHARED_LINES
        for line in header_lines:
            pair = shared.get(line)
            if pair is not None:
                items.append(pair)
                continue
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise self._error(400, f"invalid header line {line[:40]!r}")
            value = value.strip(b" \t")
            if not _VALUE.fullmatch(value):
                raise self._error(400, f"invalid value in header {name.decode()!r}")
            pair = (name.decode("ascii"), value.decode("latin-1"))
            items.append(pair)  # no CR or LF: the line was split at them
            if name.lower() in _SHAREABLE:
                if len(shared) >= _SHARED_MAX:
                    shared.clear()
                shared[line] = pair
        if self.kind == "request":
            match = _REQUEST_LINE.fullmatch(first)
            if match is None:
                raise self._error(400, f"invalid request line {first[:40]!r}")
            method, path, version = (part.decode("latin-1") for part in match.groups())
            return Request(path=path, headers=headers, method=method, version=version)
        status_match = _STATUS_LINE.fullmatch(first)
        if status_match is None:
            raise self._error(400, f"invalid status line {first[:40]!r}")
        version, status, reason = status_match.groups()
        return Response(
            status=int(status),
            headers=headers,
            reason=(reason or b"").decode("latin-1") or REASONS.get(int(status), "Unknown"),
        )


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``: base64(SHA-1(key + GUID))."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _valid_key(key: Optional[str]) -> bool:
    if key is None or "," in key:
        return False
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    return len(raw) == 16


SubprotocolSelector = Callable[[Request, Sequence[str]], Optional[str]]


class Accepted(NamedTuple):
    """What the server agreed to: the 101 response, subprotocol and compression."""

    response: Response
    subprotocol: Optional[str]
    deflate: Optional[deflate.PerMessageDeflate]


def accept(
    request: Request,
    *,
    subprotocols: Optional[Sequence[str]] = None,
    select_subprotocol: Optional[SubprotocolSelector] = None,
    origins: Optional[Sequence[Optional[str]]] = None,
    extra_headers: HeaderItems = None,
    compression: Optional[deflate.DeflateOptions] = None,
) -> Accepted:
    """Check a handshake request; the 101 response and what it agreed to.

    Raises :class:`InvalidRequest` with the status to answer: 405 for a method
    other than GET, 400 for a missing or malformed header, 426 (with
    ``Sec-WebSocket-Version: 13``) for a missing upgrade or another version,
    403 for an origin not in ``origins``. The subprotocol is the first of
    ``subprotocols`` (the server's order of preference) that the client
    offered, unless ``select_subprotocol(request, offered)`` decides.
    """
    headers = request.headers
    if request.method != "GET":
        raise InvalidRequest(405, f"method {request.method} not allowed", [("Allow", "GET")])
    if request.version != "1.1":
        raise InvalidRequest(400, f"HTTP/{request.version} is not supported; use HTTP/1.1")
    if len(headers.get_all("Host")) != 1:
        raise InvalidRequest(400, "missing or repeated Host header")
    upgrade_headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if "websocket" not in headers.tokens("Upgrade"):
        raise InvalidRequest(426, "missing Upgrade: websocket header", upgrade_headers)
    if "upgrade" not in headers.tokens("Connection"):
        raise InvalidRequest(426, "missing Connection: Upgrade header", upgrade_headers)
    keys = headers.get_all("Sec-WebSocket-Key")
    if not keys:
        raise InvalidRequest(400, "missing Sec-WebSocket-Key header")
    if len(keys) != 1 or not _valid_key(keys[0]):
        raise InvalidRequest(400, "invalid Sec-WebSocket-Key header")
    if headers.get_all("Sec-WebSocket-Version") != ["13"]:
        raise InvalidRequest(
            426, "unsupported WebSocket version; expected 13", [("Sec-WebSocket-Version", "13")]
        )
    if origins is not None and headers.get("Origin") not in origins:
        raise InvalidRequest(403, f"origin {headers.get('Origin')!r} not allowed")

    negotiated = None
    if compression is not None:
        try:
            negotiated = deflate.accept_offers(
                headers.get_all("Sec-WebSocket-Extensions"), compression
            )
        except ValueError as error:
            raise InvalidRequest(400, f"invalid Sec-WebSocket-Extensions: {error}") from None

    offered = _split(headers.get_all("Sec-WebSocket-Protocol"))
    chosen: Optional[str] = None
    if select_subprotocol is not None:
        chosen = select_subprotocol(request, offered)
        if chosen is not None and chosen not in offered:
            raise ValueError(f"select_subprotocol returned {chosen!r}, which was not offered")
    elif subprotocols:
        chosen = next((p for p in subprotocols if p in offered), None)

    response_headers = Headers(
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(keys[0])),
        ]
    )
    if chosen is not None:
        response_headers.add("Sec-WebSocket-Protocol", chosen)
    if negotiated is not None:
        response_headers.add("Sec-WebSocket-Extensions", negotiated[0])
    for name, value in Headers(extra_headers).items():
        response_headers.add(name, value)
    return Accepted(
        Response(101, response_headers), chosen, None if negotiated is None else negotiated[1]
    )


def reject(status: int, message: str, headers: HeaderItems = None) -> Response:
    """A plain-text HTTP error response that closes the connection.

    The response has one ``Connection`` header, which lists ``close``: when
    ``headers`` bring one already (a 426 names ``Upgrade`` there, as RFC 9110
    asks of a response that carries ``Upgrade``), ``close`` joins its options
    instead of a second, contradictory ``Connection`` header.
    """
    body = f"{message}\n".encode()
    response_headers = Headers(headers)
    response_headers.add("Content-Type", "text/plain; charset=utf-8")
    response_headers.add("Content-Length", str(len(body)))
    options = _split(response_headers.get_all("Connection"))
    if "close" not in (token.lower() for token in options):
        options.append("close")
    response_headers["Connection"] = ", ".join(options)
    return Response(status, response_headers, body)


def _split(values: Iterable[str]) -> List[str]:
    return [token.strip() for value in values for token in value.split(",") if token.strip()]


def build_request(
    host: str,
    port: int,
    path: str = "/",
    *,
    secure: bool = False,
    origin: Optional[str] = None,
    subprotocols: Optional[Sequence[str]] = None,
    extra_headers: HeaderItems = None,
    user_agent: Optional[str] = "wscodec",
    compression: Optional[deflate.DeflateOptions] = None,
) -> Tuple[Request, str]:
    """A client handshake request and the random key it carries."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    default_port = 443 if secure else 80
    host_header = host if ":" not in host else f"[{host}]"
    if port != default_port:
        host_header = f"{host_header}:{port}"
    headers = Headers(
        [
            ("Host", host_header),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    if origin is not None:
        headers.add("Origin", origin)
    if subprotocols:
        headers.add("Sec-WebSocket-Protocol", ", ".join(subprotocols))
    if compression is not None:
        headers.add("Sec-WebSocket-Extensions", deflate.client_offer(compression))
    if user_agent:
        headers.add("User-Agent", user_agent)
    for name, value in Headers(extra_headers).items():
        headers.add(name, value)
    return Request(path=path, headers=headers), key


def check_response(
    response: Response,
    key: str,
    subprotocols: Optional[Sequence[str]] = None,
    compression: Optional[deflate.DeflateOptions] = None,
) -> Tuple[Optional[str], Optional[deflate.PerMessageDeflate]]:
    """Check the server's answer to our handshake; the subprotocol and compression it chose.

    Raises :class:`InvalidStatus` for a status other than 101 and
    :class:`InvalidResponse` for a 101 that breaks RFC 6455.
    """
    if response.status != 101:
        raise InvalidStatus(response)
    headers = response.headers
    if "websocket" not in headers.tokens("Upgrade"):
        raise InvalidResponse("missing Upgrade: websocket in the 101 response")
    if "upgrade" not in headers.tokens("Connection"):
        raise InvalidResponse("missing Connection: Upgrade in the 101 response")
    accepts = headers.get_all("Sec-WebSocket-Accept")
    if accepts != [accept_key(key)]:
        raise InvalidResponse(f"wrong Sec-WebSocket-Accept: {accepts!r}")
    extensions = headers.get_all("Sec-WebSocket-Extensions")
    negotiated = None
    if compression is not None:
        negotiated = deflate.accept_response(extensions, compression)
    elif extensions:
        raise InvalidResponse("the server accepted an extension that was not offered")
    chosen = _split(headers.get_all("Sec-WebSocket-Protocol"))
    if not chosen:
        return None, negotiated
    if len(chosen) > 1 or chosen[0] not in (subprotocols or ()):
        raise InvalidResponse(f"the server chose a subprotocol that was not offered: {chosen!r}")
    return chosen[0], negotiated
