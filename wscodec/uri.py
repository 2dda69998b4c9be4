"""``ws://`` and ``wss://`` URIs: what every client flavour connects to."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from .exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]

# What RFC 3986 allows in a URI: unreserved, reserved and "%" (spaces, controls,
# quotes, angle brackets and non-ASCII must be percent-encoded).
_URI_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)


@dataclass(frozen=True)
class WebSocketURI:
    secure: bool
    host: str
    port: int
    path: str  # with the query string


def parse_uri(uri: str) -> WebSocketURI:
    """Split a ``ws://`` or ``wss://`` URI; :class:`InvalidURI` if it is neither,
    or if it holds a character that RFC 3986 does not allow unencoded (a space,
    a control character, non-ASCII text): sent as is, it would not make a valid
    request line."""
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as error:
        raise InvalidURI(f"{uri!r} is not a valid URI: {error}") from None
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(f"{uri!r} is not a ws:// or wss:// URI")
    if not parts.hostname:
        raise InvalidURI(f"{uri!r} has no host")
    if parts.fragment:
        raise InvalidURI(f"{uri!r} has a fragment, which WebSocket URIs may not have")
    bad = next((char for char in uri if char not in _URI_CHARACTERS), None)
    if bad is not None:
        raise InvalidURI(
            f"{uri!r} contains {bad!r}, which a URI may not contain (percent-encode it)"
        )
    secure = parts.scheme == "wss"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return WebSocketURI(secure, parts.hostname, port or (443 if secure else 80), path)
