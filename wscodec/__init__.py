"""wscodec: a fast and strict WebSocket (RFC 6455) codec.

The kernels (masking, UTF-8 validation, frame parsing and encoding) come in
two backends with identical behaviour: a compiled Cython module and a
pure-Python twin. :data:`BACKEND` says which one is active (``"cython"`` or
``"python"``); set ``WSCODEC_NO_EXTENSIONS=1`` before import to force the
pure-Python one.

Here: the sans-I/O core (codec, protocol, handshake, deflate, connection) and the public names.
May import the core and the flavours (``sync``, ``events``); never the demo, the CLI or scale-out.
"""

from __future__ import annotations

from ._backend import BACKEND, EXTENSION_ERROR
from ._backend import codec as _codec
from ._version import __version__ as __version__
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidRequest,
    InvalidResponse,
    InvalidStatus,
    InvalidURI,
    InvalidUtf8,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
)
from .protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    RSV1,
    RSV2,
    RSV3,
    CloseCode,
    Frame,
    Opcode,
    is_sendable_close_code,
    parse_close_payload,
)

__all__ = [
    "BACKEND",
    "EXTENSION_ERROR",
    "DEFAULT_MAX_FRAME_SIZE",
    "RSV1",
    "RSV2",
    "RSV3",
    "CallbackClient",
    "ClientConnection",
    "CloseCode",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "EventConnection",
    "EventHandler",
    "EventServer",
    "Frame",
    "FrameParser",
    "InvalidHandshake",
    "InvalidRequest",
    "InvalidResponse",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUtf8",
    "Opcode",
    "PayloadTooBig",
    "ProtocolError",
    "Server",
    "ServerConnection",
    "Utf8Validator",
    "WebSocketError",
    "apply_mask",
    "apply_mask_into",
    "broadcast",
    "connect",
    "encode_frame",
    "is_sendable_close_code",
    "parse_close_payload",
    "serve",
    "serve_events",
    "validate_utf8",
    "install",
]

apply_mask = _codec.apply_mask
apply_mask_into = _codec.apply_mask_into
validate_utf8 = _codec.validate_utf8
Utf8Validator = _codec.Utf8Validator
FrameParser = _codec.FrameParser
encode_frame = _codec.encode_frame

# The I/O layers import the codec through _backend, so they come last.
from .events.server import EventConnection, EventHandler, EventServer, serve_events  # noqa: E402
from .sync.broadcast import broadcast  # noqa: E402
from .sync.callbacks import CallbackClient  # noqa: E402
from .sync.client import ClientConnection, connect  # noqa: E402
from .sync.server import Server, ServerConnection, serve  # noqa: E402


def __getattr__(name: str) -> object:
    # Lazy: ``wscodec.install`` imports the integrations (never a peer library)
    # only when first used.
    if name == "install":
        from .integrations import install

        return install
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
